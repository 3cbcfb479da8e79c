"""Errors the identity server raises to its in-process callers (the gateway), with wire codes.

::

    OAuthError (operators.errors)
    ├── InvalidAccessTokenError     401 invalid_token: signature, typ, time, issuer, audience, shape
    └── TokenContextError      the token verifies but may no longer be honoured
                               (revoked 401; consent revoked / opted out / client disabled 403)
"""

from __future__ import annotations

from ..errors import OAuthError


class InvalidAccessTokenError(OAuthError):
    """The bearer token is not a valid access token of this operator; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid_token", reason, 401)
        self.reason = reason


class TokenContextError(OAuthError):
    """A well-formed token whose grant no longer stands (``kind`` is a stable short code)."""

    def __init__(self, kind: str, description: str) -> None:
        status = 401 if kind in ("revoked", "unknown_token") else 403
        super().__init__("invalid_token", description, status)
        self.kind = kind
