"""Authorization: the token's grant checked in real time, then its scope and purpose.

``token_context`` reads the operator's database on every call, which is what makes a consent
revocation or an opt-out effective on the very next call even for a cached token.
"""

from __future__ import annotations

from collections.abc import Callable

from operators.camara.context import CallContext
from operators.camara.scopes import scopes_satisfied
from operators.errors import CamaraError
from operators.identity import AccessTokenClaims, IdentityServer, TokenContextError

from .authentication import unauthenticated


class TokenAuthorizer:
    """Decides whether verified claims may call one CAMARA operation now."""

    def __init__(
        self, identity: IdentityServer, client_trusted: Callable[[str], bool] | None = None
    ) -> None:
        self.identity = identity
        self.client_trusted = client_trusted

    def authorize(
        self, claims: AccessTokenClaims, method: str, route: str, correlator: str
    ) -> CallContext:
        try:
            grant = self.identity.token_context(claims)
        except TokenContextError as error:
            if error.status == 401:
                raise unauthenticated(
                    f"The access token is no longer valid: {error.kind}."
                ) from error
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                f"The grant behind this token no longer stands: {error.kind}.",
            ) from error
        if self.client_trusted is not None and not self.client_trusted(grant.client_id):
            raise CamaraError(
                403, "PERMISSION_DENIED", "The party this token was issued to is no longer trusted."
            )
        if not scopes_satisfied(method, route, grant.scopes):
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                "The access token lacks the scope this operation requires.",
            )
        if grant.purpose is None:
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                "The access token names no purpose for processing personal data.",
            )
        return CallContext(
            client_id=grant.client_id,
            msisdn=grant.msisdn,
            scopes=frozenset(grant.scopes),
            purpose=grant.purpose,
            correlator=correlator,
        )
