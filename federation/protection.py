"""Access control for the federation's own endpoints: a bearer token of a named server.

Telco Finder, Telco Routing and Network Id are called machine to machine with the client
credentials grant and ``private_key_jwt`` (OPG.10). The caller obtains a token from the
endpoint owner's authorization server (an operator's, or the aggregator's own); the
endpoint's :class:`BearerProtection` dependency verifies it against that server — signature,
issuer, audience, expiry, then whether the grant still stands — and checks the scope.
Failures are CAMARA errors: 401 ``UNAUTHENTICATED`` without a valid token, 403
``PERMISSION_DENIED`` when it lacks the scope, its grant was withdrawn, or it was issued to a
federation party the owner no longer trusts (the gateway's trust gate, asked here too: a
revocation stops the tokens the party obtained before it, not only new ones).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from operators import CamaraError, OAuthError
from operators.gateway import BearerAuthenticator
from operators.identity import IdentityServer, TokenContext

Protection = Callable[[Request], Awaitable[Any]]
"""A FastAPI dependency guarding a route; raises :class:`CamaraError` to refuse."""

TELCO_FINDER_SCOPE = "telco-finder:search"
TELCO_ROUTING_SCOPE = "telco-routing:read"
NETWORK_ID_SCOPE = "network-id:resolve"


def _unauthenticated(message: str) -> CamaraError:
    return CamaraError(401, "UNAUTHENTICATED", message,
                       headers={"WWW-Authenticate": 'Bearer realm="ogsim"'})


class BearerProtection:
    """Requires an access token issued by ``identity`` that carries ``scope``.

    The signature is checked once per token, as the gateway does (:class:`BearerAuthenticator`:
    a bounded cache, the expiry checked on every call): the aggregator calls an operator's
    Telco Finder with one token for every call it routes, and the ES256 check was about 5 % of
    an operator's CPU under the load test. Whether the grant still stands is asked every time.
    """

    def __init__(self, identity: IdentityServer, scope: str, cache_size: int = 1_000, *,
                 party_trusted: Callable[[str], bool] | None = None) -> None:
        self.identity = identity
        self.scope = scope
        self.authenticator = BearerAuthenticator(identity, identity.clock, cache_size)
        self.party_trusted = party_trusted
        """Whether tokens issued to a client id may still be honoured (None: all may)."""

    async def __call__(self, request: Request) -> TokenContext:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("Request not authenticated due to missing credentials.")
        try:
            claims = self.authenticator.authenticate(header)
        except CamaraError as error:
            raise _unauthenticated(
                "Request not authenticated due to invalid or expired credentials.") from error
        try:
            context = self.identity.token_context(claims)
        except OAuthError as error:
            if error.status == 403:
                raise CamaraError(403, "PERMISSION_DENIED", error.description) from error
            raise _unauthenticated(
                "Request not authenticated due to invalid or expired credentials.") from error
        if self.party_trusted is not None and not self.party_trusted(context.client_id):
            raise CamaraError(403, "PERMISSION_DENIED",
                              "The party this token was issued to is no longer trusted.")
        if self.scope not in context.scopes:
            raise CamaraError(403, "PERMISSION_DENIED",
                              f"The access token does not carry the scope {self.scope}.")
        return context


async def open_access(request: Request) -> None:
    """No protection: for a service reachable only inside a trusted network (tests, demos)."""
