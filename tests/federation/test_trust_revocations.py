"""A trust revocation reaches every process serving the operator, and survives a restart.

``ogsim up --autoscale`` serves one operator from several processes over one database file,
and ``/admin/trust/revoke`` reaches one of them: the revocation is a row every process reads,
so the others refuse the revoked party from their next check, and a replica started later
does not trust it again. Two members built on one file stand for two such processes.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey

from federation.config import BRAND_NUMBER, FederationConfig
from federation.member import MemberOperator
from federation.protection import TELCO_FINDER_SCOPE, TELCO_ROUTING_SCOPE
from federation.trusted_issuers import party_registration
from operators.identity import GrantType
from operators.identity.purposes import ScopeRequest
from tests.operators.identity.conftest import FakeClock

ROUTING = "/telco-routing/v1/routing"
FINDER = "/telco-finder/v1/search"


def _member(federation: FederationConfig, path: Path, clock: FakeClock,
            http: httpx.AsyncClient) -> MemberOperator:
    return MemberOperator.build(federation, "telco-es", http, storage=str(path),
                                clock=clock, monotonic=clock)


def _trusts_hub(member: MemberOperator) -> bool:
    return next(iter(member.policies.values())).is_trusted_client("hub")


async def test_a_revocation_at_one_process_holds_at_every_other_and_after_a_restart(
    federation: FederationConfig, tmp_path: Path
) -> None:
    clock, path = FakeClock(), tmp_path / "telco-es.sqlite3"
    async with httpx.AsyncClient() as unused:
        first, second = (_member(federation, path, clock, unused) for _ in range(2))
        assert _trusts_hub(first) and _trusts_hub(second)
        site = next(iter(first.front.sites.values()))
        admin = {"Authorization": f"Bearer {first.config.admin_secret}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site),
                                     base_url="http://telco-es") as http:
            revoked = await http.post("/admin/trust/revoke", json={"issuer": "hub"},
                                      headers=admin)
        assert revoked.status_code == 200 and revoked.json()["trusted"] is False
        assert not _trusts_hub(second), "the other process refuses the hub's tokens at once"
        later = _member(federation, path, clock, unused)  # a replica started afterwards
        assert not _trusts_hub(later)
        second.reinstate("hub")
        assert _trusts_hub(first) and _trusts_hub(later)
        for member in (first, second, later):
            member.close()


@pytest.mark.parametrize("endpoint", ["telco-routing", "telco-finder"])
async def test_a_revoked_partys_earlier_token_opens_no_federation_endpoint(
    federation: FederationConfig, tmp_path: Path, endpoint: str
) -> None:
    """Telco Routing and Telco Finder (telco-gb's, for its brand) are guarded by a bearer
    token too: a token the hub obtained before the revocation is refused there (403
    PERMISSION_DENIED, as at the gateway) until it is reinstated. Before, only the gateway
    asked the trust gate."""
    party, scope = (("telco-es", TELCO_ROUTING_SCOPE) if endpoint == "telco-routing"
                    else ("telco-gb", TELCO_FINDER_SCOPE))
    clock = FakeClock()
    async with httpx.AsyncClient() as unused:
        member = MemberOperator.build(federation, party, unused,
                                      storage=str(tmp_path / f"{party}.sqlite3"),
                                      clock=clock, monotonic=clock)
        identity = next(iter(member.replicas.values())).identity
        if identity.clients.get("hub") is None:
            key = ECKey.generate_key("P-256", private=True, auto_kid=True)
            identity.register_client(party_registration(
                "hub", {"keys": [key.as_dict(private=False)]}, scope=scope, purposes=[]))
        token = identity.tokens.issue("hub", ScopeRequest(None, (scope,), False),
                                      grant=GrantType.CLIENT_CREDENTIALS).access_token
        bearer = {"Authorization": f"Bearer {token}"}
        admin = {"Authorization": f"Bearer {member.config.admin_secret}"}
        site = next(iter(member.front.sites.values()))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=site),
                                     base_url=f"http://{party}") as http:

            async def call() -> httpx.Response:
                if endpoint == "telco-routing":
                    return await http.get(ROUTING, headers=bearer)
                return await http.post(FINDER, headers=bearer,
                                       json={"target": {"phoneNumber": BRAND_NUMBER}})

            assert (await call()).status_code == 200
            await http.post("/admin/trust/revoke", json={"issuer": "hub"}, headers=admin)
            refused = await call()
            assert refused.status_code == 403
            assert refused.json()["code"] == "PERMISSION_DENIED"
            member.reinstate("hub")
            assert (await call()).status_code == 200
        member.close()
