"""An ogsim operator in process as a conformance target: real OAuth flows over ASGI.

The operator's epoch clock can be shifted back for a moment so that the identity server issues
a token that has already expired when the gateway sees it: the only way to get CAMARA's
"expired access token" from a black box without waiting an hour.

Not part of :mod:`loadtests.conformance`'s face, because it imports the operator while the
runner itself works against any implementation.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from joserfc.jwk import ECKey

from federation import ApplicationClient, Endpoints, fetch_operator_token, new_client_key
from operators import (
    Operator,
    OperatorConfig,
    TokenLifetimes,
    create_operator_app,
    example_operator,
)
from operators.camara import BASE_PATHS, OPERATION_SCOPES

from .target import AdminEnvironment, Target, TokenNeed, Unsupported

__all__ = ["OperatorTokens", "conformance_config", "in_process_target", "register_client"]

CLIENTS = ("primary", "secondary")


class ShiftedClock:
    """Wall time plus an offset that a caller may move (only to mint expired tokens)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


PURPOSES = (
    "dpv:FraudPreventionAndDetection",
    "dpv:RequestedServiceProvision",
    "dpv:IdentityVerification",
)
"""The purposes a conformance application declares: those CAMARA's scenarios ask for."""


async def register_client(
    http: httpx.AsyncClient, issuer: str, admin_secret: str, client_id: str, key: ECKey
) -> None:
    """Register a conformance application on an ogsim operator through its admin API.

    Every API scope, the purposes above, private_key_jwt with ``key``'s public half, and the
    enterprise plan on every API so that a run is never throttled by a small plan. ``http``
    has the operator's API root as its base URL (the admin API lives there too).
    """
    scopes = sorted({s for alts in OPERATION_SCOPES.values() for a in alts for s in a})
    admin = {"Authorization": f"Bearer {admin_secret}"}
    response = await http.post(
        f"{issuer}/admin/clients",
        headers=admin,
        json={
            "client_id": client_id,
            "client_name": f"CAMARA conformance ({client_id})",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
            "scope": " ".join(scopes),
            "purposes": list(PURPOSES),
        },
    )
    response.raise_for_status()
    for api in BASE_PATHS:
        subscribed = await http.put(
            f"/admin/subscriptions/{client_id}/{api}", headers=admin, json={"plan": "enterprise"}
        )
        subscribed.raise_for_status()


class OperatorTokens:
    """Registers two applications on an ogsim operator and gets tokens as a client would."""

    def __init__(
        self, http: httpx.AsyncClient, issuer: str, admin_secret: str, clock: ShiftedClock
    ) -> None:
        self.http = http
        self.issuer = issuer
        self.admin_secret = admin_secret
        self.clock = clock
        self.lifetime = 3600
        self._clients: dict[str, ApplicationClient] = {}
        self._cache: dict[TokenNeed, str] = {}

    async def _client(self, name: str) -> ApplicationClient:
        if name in self._clients:
            return self._clients[name]
        key: ECKey = new_client_key()
        client_id = f"conformance-{name}"
        await register_client(self.http, self.issuer, self.admin_secret, client_id, key)
        metadata = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
        client = ApplicationClient(
            client_id, key, Endpoints.from_metadata(metadata.json()), self.http, clock=self.clock
        )
        self._clients[name] = client
        return client

    async def token(self, need: TokenNeed) -> str:
        if need in self._cache:
            return self._cache[need]
        client = await self._client(need.client)
        if need.expired:
            self.clock.offset = -(self.lifetime + 600)
        try:
            if need.phone_number and need.network:
                ts43 = await fetch_operator_token(self.http, self.issuer, self.admin_secret,
                                                  need.phone_number)
                answer = await client.ciba(f"operatortoken:{ts43}", need.scope)
            elif need.phone_number:
                answer = await client.ciba(f"tel:{need.phone_number}", need.scope)
            else:
                answer = await client.client_credentials(need.scope)
        except Exception as error:
            raise Unsupported(f"no token for {need.scope!r}: {error}") from error
        finally:
            self.clock.offset = 0.0
        token = str(answer["access_token"])
        self._cache[need] = token
        return token


def conformance_config() -> OperatorConfig:
    """The built-in operator, with instant CIBA and a fast network core."""
    return example_operator().model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0), "core_time_scale": 0.02}
    )


@asynccontextmanager
async def in_process_target(config: OperatorConfig | None = None) -> AsyncIterator[Target]:
    """A fresh operator served over ASGI, with tokens and an admin environment for it."""
    config = config or conformance_config()
    clock = ShiftedClock()
    operator = Operator.from_config(config, clock=clock)
    app = create_operator_app(operator)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.1", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
            tokens = OperatorTokens(http, operator.issuer, config.admin_secret, clock)
            tokens.lifetime = config.lifetimes.access_token
            environment = AdminEnvironment(http, config.admin_secret, issuer=operator.issuer)
            yield Target(http, tokens, environment, apis=frozenset(BASE_PATHS))
    finally:
        operator.close()
