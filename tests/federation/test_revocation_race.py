"""Revoke at one data centre, call at the other at once: never served after the revocation.

The replicas of a member operator share one SQLite file; each keeps its own connection and
its own caches (verified tokens, grant facts). A consent revoked through the consent API at
one site must refuse the very next call at every other site, since the subscriber was told
"revoked" (DESIGN: a revocation takes effect on the next call). Each round grants a fresh
consent through CIBA, proves the token works at both sites, revokes at one, and immediately
calls at the other, sequentially and with calls already in flight alongside the revocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from federation.config import FederationConfig
from federation.federation import quick_consent
from federation.member import MemberOperator
from operators import Operator
from tests.operators.identity.conftest import ALL_GRANTS, App, FakeClock, new_key

ROUNDS = 25
SCOPE = "device-reachability-status:read dpv:ServiceProvision"
API = "/device-reachability-status/v1/retrieve"
CIBA = "urn:openid:params:grant-type:ciba"


class Sites:
    """One HTTP client per data centre of a member, and an application registered there."""

    def __init__(self, member: MemberOperator, app: App, clients: dict[str, httpx.AsyncClient]):
        self.member = member
        self.app = app
        self.clients = clients
        self.admin = {"Authorization": f"Bearer {member.config.admin_secret}"}

    @property
    def operator(self) -> Operator:
        return self.member.primary

    async def consent_token(self, site: str, number: str) -> tuple[str, str]:
        """A CIBA token at ``site`` for ``number`` (whose handset approves) and its consent."""
        http, issuer = self.clients[site], self.operator.issuer
        started = await http.post(f"{issuer}/bc-authorize", data={
            **self.app.auth("/bc-authorize"), "login_hint": f"tel:{number}", "scope": SCOPE})
        assert started.status_code == 200, started.text
        token = await http.post(f"{issuer}/token", data={
            **self.app.auth(), "grant_type": CIBA, "auth_req_id": started.json()["auth_req_id"]})
        assert token.status_code == 200, token.text
        access = str(token.json()["access_token"])
        claims = self.operator.identity.verify_access_token(access)
        consent_id = self.operator.identity.token_context(claims).consent_id
        assert consent_id is not None
        return access, consent_id

    async def call(self, site: str, token: str) -> int:
        response = await self.clients[site].post(
            f"{self.operator.api_root}{API}", json={},
            headers={"Authorization": f"Bearer {token}"})
        return response.status_code

    async def revoke(self, site: str, consent_id: str) -> None:
        response = await self.clients[site].delete(
            f"{self.operator.issuer}/consents/{consent_id}", headers=self.admin)
        assert response.status_code == 200 and response.json()["status"] == "revoked", (
            response.text)


@pytest.fixture
def clock() -> FakeClock:
    """The epoch and monotonic clock of every replica, moved by the test only."""
    return FakeClock()


@pytest.fixture
async def sites(
    federation: FederationConfig, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Sites]:
    config = quick_consent(federation)
    async with httpx.AsyncClient() as unused:
        member = MemberOperator.build(config, "telco-es", unused,
                                      storage=str(tmp_path / "telco-es.sqlite3"),
                                      clock=clock, monotonic=clock)
        key = new_key()
        member.primary.identity.register_client({
            "client_id": "race-app", "client_name": "Race application",
            "jwks": {"keys": [key.as_dict(private=False)]}, "grant_types": ALL_GRANTS,
            "scope": "device-reachability-status:read",
            "purposes": [p.purpose for p in member.config.purposes],
            "redirect_uris": ["https://race.example/cb"],
        })
        app = App("race-app", key, member.primary.identity, clock)
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=site), timeout=10.0)
            for name, site in member.front.sites.items()
        }
        try:
            yield Sites(member, app, clients)
        finally:
            for client in clients.values():
                await client.aclose()
            member.close()


async def test_never_served_after_a_revocation_at_another_data_centre(
    sites: Sites, clock: FakeClock
) -> None:
    names = list(sites.clients)
    assert len(names) == 2, "the default telco-es has two data centres"
    number = sites.operator.subscribers.test_number("approves")
    late: list[tuple[int, str, int]] = []
    for round_ in range(ROUNDS):
        clock.advance(1)
        here, there = names[round_ % 2], names[(round_ + 1) % 2]
        token, consent_id = await sites.consent_token(here, number)
        assert await sites.call(here, token) == 200
        assert await sites.call(there, token) == 200  # both sites now hold warm caches
        in_flight = [asyncio.create_task(sites.call(there, token)) for _ in range(3)]
        await sites.revoke(here, consent_id)
        # acknowledged: from here on, no site may serve this token
        after = [await sites.call(there, token), await sites.call(here, token)]
        after += await asyncio.gather(*(sites.call(there, token) for _ in range(3)))
        late += [(round_, there, status) for status in after if status != 403]
        for task in in_flight:  # started before the acknowledgement: either answer is fair
            assert await task in (200, 403)
    assert late == []
