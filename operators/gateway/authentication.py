"""Authentication: a bearer JWT verified once, then remembered in a bounded cache.

A cache hit skips only the signature check (ES256 costs ~140 µs); the expiry is checked on
every call against the clock, and revocation and consent are the authorization policy's job,
so a cached token never outlives its own validity or its grant.
"""

from __future__ import annotations

from collections import OrderedDict

from operators.errors import CamaraError
from operators.identity import AccessTokenClaims, IdentityServer, InvalidAccessTokenError
from operators.types import Clock

MAX_TOKEN_BYTES = 8 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def unauthenticated(message: str) -> CamaraError:
    return CamaraError(401, "UNAUTHENTICATED", message, headers=dict(_CHALLENGE))


class BearerAuthenticator:
    """Turns an ``Authorization`` header into verified claims of this operator's issuer."""

    def __init__(self, identity: IdentityServer, clock: Clock, cache_size: int = 10_000) -> None:
        self.identity = identity
        self.clock = clock
        self.cache_size = cache_size
        self.skew = identity.config.lifetimes.clock_skew
        self._cache: OrderedDict[str, AccessTokenClaims] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def authenticate(self, authorization: str | None) -> AccessTokenClaims:
        token = _bearer(authorization)
        claims = self._cache.get(token)
        if claims is not None:
            if claims.exp + self.skew <= self.clock():  # as verification: exp <= now - skew
                del self._cache[token]
                raise unauthenticated("The access token has expired.")
            self._cache.move_to_end(token)
            self.hits += 1
            return claims
        self.misses += 1
        try:
            claims = self.identity.verify_access_token(token)
        except InvalidAccessTokenError as error:
            raise unauthenticated(f"Invalid access token: {error.reason}.") from error
        self._cache[token] = claims
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return claims


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise unauthenticated(
            "Request not authenticated due to missing, invalid, or expired credentials."
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("The Authorization header must carry a Bearer token.")
    if len(token) > MAX_TOKEN_BYTES:
        raise unauthenticated("The access token is larger than 8 KiB.")
    return token
