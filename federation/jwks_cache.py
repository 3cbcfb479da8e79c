"""Public keys of trusted issuers: the identity server's :class:`JwksCache`, used here for
federation partners (their discovery document's ``jwks_uri``, same origin as the issuer)."""

from operators.identity import JwksCache, JwksError, parse_jwks

__all__ = ["JwksCache", "JwksError", "parse_jwks"]
