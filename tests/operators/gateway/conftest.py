"""An operator behind its gateway, a registered application and a hand-driven clock."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt

from federation.client import ApplicationClient, new_client_key
from operators.config import (
    Plan,
    Quota,
    QuotaPeriod,
    TokenLifetimes,
    default_plans,
    example_operator,
)
from operators.operator import Operator, create_operator_app

START = 1_790_000_000.0
ADMIN = {"Authorization": "Bearer admin-secret"}
SCOPES = (
    "sim-swap:check sim-swap:retrieve-date device-reachability-status:read "
    "device-roaming-status:read location-verification:verify number-verification:verify"
)
FRAUD = "dpv:FraudPreventionAndDetection"


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Harness:
    operator: Operator
    http: httpx.AsyncClient
    client: ApplicationClient
    clock: FakeClock

    def number(self, role: str) -> str:
        return self.operator.subscribers.test_number(role)

    async def three_legged(
        self, role: str = "approves", scope: str = f"sim-swap:check {FRAUD}"
    ) -> str:
        token = await self.client.ciba(f"tel:{self.number(role)}", scope)
        return str(token["access_token"])

    async def two_legged(self, scope: str = f"sim-swap:check {FRAUD}") -> str:
        return str((await self.client.client_credentials(scope))["access_token"])

    def forge(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A token signed with the operator's real key, carrying whatever the test wants."""
        key = self.operator.identity.keys.active()
        head = header if header is not None else {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(head, claims, key.key, algorithms=[key.alg])

    async def check(
        self,
        token: str | None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return await self.http.post(
            "/sim-swap/v2/check", json=body or {"maxAge": 240}, headers=sent
        )


def gateway_config() -> Any:
    plans = (
        *default_plans(),
        Plan(
            name="tiny",
            rate_per_second=100,
            burst=100,
            quota=Quota(limit=3, period=QuotaPeriod.DAY),
        ),
    )
    return example_operator().model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0), "plans": plans}
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def register_fraud_app(
    http: httpx.AsyncClient,
    operator: Operator,
    clock: FakeClock,
    *,
    scope: str,
    purposes: list[str],
    grant_types: tuple[str, ...] = ("client_credentials", "urn:openid:params:grant-type:ciba"),
) -> ApplicationClient:
    """Register ``fraud-app`` through the admin API and return its client on the test's clock,
    polling CIBA without waiting."""
    key = new_client_key()
    registered = await http.post(
        f"{operator.issuer}/admin/clients",
        headers=ADMIN,
        json={
            "client_id": "fraud-app",
            "client_name": "Fraud app",
            "jwks": {"keys": [key.as_dict(private=False)]},
            "grant_types": list(grant_types),
            "scope": scope,
            "purposes": purposes,
        },
    )
    assert registered.status_code == 201, registered.text
    client = await ApplicationClient.discover("fraud-app", key, operator.issuer, http)
    client.clock = clock

    async def no_wait(_: float) -> None:
        return None

    client.sleep = no_wait
    return client


@pytest.fixture
async def harness(clock: FakeClock) -> AsyncIterator[Harness]:
    operator = Operator.from_config(gateway_config(), clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        app_client = await register_fraud_app(
            http, operator, clock, scope=SCOPES, purposes=[FRAUD, "dpv:IdentityVerification"]
        )
        yield Harness(operator, http, app_client, clock)
    operator.close()
