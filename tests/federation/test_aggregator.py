"""The aggregator end to end, in one process over ASGI: routing, tokens, errors, settlement.

An application registered only with the hub reaches subscribers of every operator; the hub
obtains each operator's own token behind the scenes and records each call once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from federation.client import ApplicationClient, Endpoints, new_client_key
from federation.config import BRAND_NUMBER, PORTED_NUMBER, FederationConfig
from federation.data_centres import DATA_CENTRE_HEADER
from federation.federation import Federation, quick_consent, start_federation
from federation.settlement import operator_correlator
from federation.trusted_issuers import issue_assertion

FRAUD = "dpv:FraudPreventionAndDetection"
SCOPE = "sim-swap:check location-verification:verify device-reachability-status:read"
ADMIN = {"Authorization": "Bearer admin-secret"}
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class World:
    fed: Federation
    token: str
    app: ApplicationClient

    @property
    def hub(self) -> str:
        return self.fed.aggregator.api_root

    async def check(self, number: str, correlator: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if correlator:  # a careful client: its retries carry the same idempotency key
            headers["x-correlator"] = headers["Idempotency-Key"] = correlator
        return await self.fed.http.post(
            f"{self.hub}/sim-swap/v2/check",
            json={"phoneNumber": number, "maxAge": 24},
            headers=headers,
        )

    def number(self, operator: str, role: str = "approves") -> str:
        return self.fed.operator(operator).subscribers.test_number(role)


@pytest.fixture
async def world(federation: FederationConfig, tmp_path: Path) -> AsyncIterator[World]:
    fed = await start_federation(quick_consent(federation), tmp_path, probes=False)
    app = await fed.register_application("app", SCOPE, [FRAUD, "dpv:ServiceProvision"])
    token = (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    yield World(fed, token, app)
    await fed.stop()


async def test_one_application_reaches_every_operator(world: World) -> None:
    for operator in ("telco-es", "telco-fr", "telco-gb"):
        response = await world.check(world.number(operator, "recent-swap"))
        assert response.status_code == 200, response.text
        assert response.json() == {"swapped": True}
        sites = {dc.name for dc in world.fed.config.operator(operator).data_centres}
        assert response.headers[DATA_CENTRE_HEADER] in sites
    brand = await world.check(BRAND_NUMBER)  # Kite Mobile, through telco-gb's second level
    assert brand.status_code == 200
    calls = world.fed.aggregator.settlement.calls()
    assert [c.operator for c in calls] == ["telco-es", "telco-fr", "telco-gb", "telco-gb"]
    assert calls[-1].served_as == "kite-gb" and all(c.billable for c in calls)
    assert {c.application for c in calls} == {"app"}


async def test_operator_meters_the_hub_under_the_same_key(world: World) -> None:
    number = world.number("telco-fr")
    assert (await world.check(number, "corr-1")).status_code == 200
    assert (await world.check(number, "corr-1")).status_code == 200  # a retry
    ledger = world.fed.operator("telco-fr").gateway.ledger
    # the hub scopes the key by application, so two applications never collide
    assert [(e.client_id, e.correlator) for e in ledger.events()] == [("hub", "app:corr-1")]
    settled = world.fed.aggregator.settlement.calls("telco-fr")
    assert len(settled) == 1 and settled[0].correlator == "corr-1"
    unauthorised = await world.fed.http.get(f"{world.hub}/admin/settlement")
    assert unauthorised.status_code == 401
    totals = (await world.fed.http.get(f"{world.hub}/admin/settlement", headers=ADMIN)).json()
    assert totals == [{"aggregator": "hub", "operator": "telco-fr", "calls": 1, "billable": 1}]


async def test_one_correlator_spans_a_flow_through_the_hub(world: World) -> None:
    """Without an Idempotency-Key the correlator only correlates: one value across two APIs
    is served by both, it reaches the operator as the application sent it, and the same
    request again is a new call, billed and settled again, not a stored answer."""
    http, fr = world.fed.http, world.number("telco-fr")
    flow = {"x-correlator": "journey-1"}
    first = await http.post(f"{world.hub}/sim-swap/v2/check", json={"phoneNumber": fr},
                            headers={"Authorization": f"Bearer {world.token}", **flow})
    assert first.status_code == 200 and first.headers["x-correlator"] == "journey-1"
    reach = await world.app.client_credentials(f"device-reachability-status:read {FRAUD}")
    second = await http.post(
        f"{world.hub}/device-reachability-status/v1/retrieve", json={"device": {"phoneNumber": fr}},
        headers={"Authorization": f"Bearer {reach['access_token']}", **flow})
    assert second.status_code == 200, second.text
    assert second.headers["x-correlator"] == "journey-1"
    again = await http.post(f"{world.hub}/sim-swap/v2/check", json={"phoneNumber": fr},
                            headers={"Authorization": f"Bearer {world.token}", **flow})
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    settled = world.fed.aggregator.settlement.calls("telco-fr")
    assert [c.api for c in settled].count("sim-swap") == 2 and len(settled) == 3
    events = world.fed.operator("telco-fr").gateway.ledger.events()
    assert len(events) == 3 and len({e.correlator for e in events}) == 3


async def test_long_correlators_that_differ_past_the_cut_stay_apart(world: World) -> None:
    """Scoped by the application, a 256-character correlator no longer fits the operator's
    key: two that differ only at their end were cut to one key, so the operator replayed the
    first answer for the second (billed once, settled twice). Too long, it goes as a digest."""
    number, other = world.number("telco-fr"), world.number("telco-fr", "recent-swap")
    first, second = "a" * 255 + "1", "a" * 255 + "2"
    assert (await world.check(number, first)).json() == {"swapped": False}
    answered = await world.check(other, second)
    assert answered.status_code == 200 and answered.json() == {"swapped": True}
    assert "idempotent-replayed" not in answered.headers
    keys = [e.correlator for e in world.fed.operator("telco-fr").gateway.ledger.events()]
    assert len(set(keys)) == 2 and all(len(key) <= 256 for key in keys)
    assert keys == [operator_correlator("app", first), operator_correlator("app", second)]
    assert operator_correlator("app", "corr-1") == "app:corr-1", "a short one is kept as is"


async def test_a_key_reused_for_another_call_is_refused_by_the_hub(world: World) -> None:
    """The hub settles one row per (application, idempotency key). Reused for another operation
    after an unbilled answer, the operator (which kept nothing) would bill the second call
    while the hub's row kept the first one's API; reused at another operator, that operator
    would bill a call the hub's books already hold. Both are refused before any operator is
    asked; the same call again still reaches the operator, which replays it."""
    http, headers = world.fed.http, {"Authorization": f"Bearer {world.token}"}
    fr, es = world.number("telco-fr"), world.number("telco-es")
    refused = await http.post(f"{world.hub}/sim-swap/v2/check",
                              json={"phoneNumber": fr, "maxAge": 9999},
                              headers={**headers, "Idempotency-Key": "reuse-1"})
    assert refused.status_code == 400, refused.text
    assert world.fed.aggregator.settlement.settled("app", "reuse-1") is not None
    reach = await world.app.client_credentials(f"device-reachability-status:read {FRAUD}")
    other_api = await http.post(
        f"{world.hub}/device-reachability-status/v1/retrieve", json={"device": {"phoneNumber": fr}},
        headers={"Authorization": f"Bearer {reach['access_token']}", "Idempotency-Key": "reuse-1"})
    assert other_api.status_code == 400 and "Idempotency-Key" in other_api.json()["message"]
    # that first answer was not billed: the same operation may go elsewhere under it
    moved = await world.check(es, "reuse-1")
    assert moved.status_code == 200, moved.text
    assert world.fed.aggregator.settlement.settled("app", "reuse-1") == (
        "telco-es", "checkSimSwap", True)
    assert (await world.check(fr, "reuse-2")).status_code == 200
    elsewhere = await world.check(es, "reuse-2")
    assert elsewhere.status_code == 400 and "Idempotency-Key" in elsewhere.json()["message"]
    es_keys = [e.correlator for e in world.fed.operator("telco-es").gateway.ledger.events()]
    assert es_keys == ["app:reuse-1"], "telco-es billed nothing under reuse-2"
    again = await world.check(fr, "reuse-2")  # the same call: replayed by the operator
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    fr_events = world.fed.operator("telco-fr").gateway.ledger.events()
    assert [e.correlator for e in fr_events] == ["app:reuse-2"]
    settled = world.fed.aggregator.settlement.calls()
    assert [(c.correlator, c.operator, c.billable) for c in settled] == [
        ("reuse-1", "telco-es", True), ("reuse-2", "telco-fr", True)]


async def test_a_device_named_by_its_ipv4_addresses_is_routed(world: World) -> None:
    """CAMARA's device ipv4Address is a public address with a private address or a public
    port: the hub routes by the public one and the operator resolves the device by the
    private one (the hub refused the private address as an unknown field). A network access
    identifier alone is unsupported, as the operators answer; a bad private address is 400."""
    device = world.fed.operator("telco-fr").subscribers.get(world.number("telco-fr"))
    assert device is not None and device.ipv4
    reach = await world.app.client_credentials(f"device-reachability-status:read {FRAUD}")
    headers = {"Authorization": f"Bearer {reach['access_token']}"}
    url = f"{world.hub}/device-reachability-status/v1/retrieve"

    async def ask(named: dict[str, object]) -> httpx.Response:
        return await world.fed.http.post(url, json={"device": named}, headers=headers)

    both = {"publicAddress": device.ipv4, "privateAddress": device.ipv4}
    answered = await ask({"ipv4Address": both})
    assert answered.status_code == 200, answered.text
    assert answered.json()["reachable"] is True
    port = await ask({"ipv4Address": {"publicAddress": device.ipv4, "publicPort": 40123}})
    assert port.status_code == 200, port.text
    nai = await ask({"networkAccessIdentifier": "123@example.org"})
    assert (nai.status_code, nai.json()["code"]) == (422, "UNSUPPORTED_IDENTIFIER")
    for private in ("not-an-ip", 7):
        bad = await ask({"ipv4Address": {"publicAddress": device.ipv4, "privateAddress": private}})
        assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_ARGUMENT"), private


async def test_expired_partner_tokens_do_not_pile_up(world: World) -> None:
    """The hub caches a token per partner, application, subscriber and scope: expired ones
    are swept as the cache grows, so it stays near the number of live tokens."""
    hub = world.fed.aggregator
    now = [1_000_000.0]
    hub.clock = lambda: now[0]
    for n in range(5000):
        hub._keep_token(("telco-fr", "app", f"tel:+3360{n:07d}", "s"),
                        {"access_token": f"t{n}", "expires_in": 60})
        now[0] += 1.0  # about 55 live at any moment
    assert len(hub._tokens) < 2 * 1024 + 60
    live = [t for t in hub._tokens.values() if t.expires_at > now[0]]
    assert len(live) >= 54


async def test_ported_number_served_by_the_operator_it_was_ported_to(world: World) -> None:
    response = await world.check(PORTED_NUMBER)
    assert response.status_code == 200, response.text
    assert response.headers[DATA_CENTRE_HEADER] in ("madrid", "barcelona")
    assert world.fed.aggregator.settlement.calls()[0].operator == "telco-es"
    number = "+34620000777"  # Red Azul, outside the federation
    assert (await world.check(number)).status_code == 404
    world.fed.port(number, "telco-es")
    lookups = world.fed.network_ids["ES"].lookups
    late = await world.check(number)  # SHALLOW misses, the hub asks DEEP
    assert late.status_code == 200, late.text
    assert world.fed.network_ids["ES"].lookups > lookups
    assert world.fed.aggregator.settlement.calls()[-1].operator == "telco-es"


@pytest.mark.parametrize("number", ["+4915112345678", "+33700000001", "+34990000001"])
async def test_number_nobody_serves_is_a_camara_404(world: World, number: str) -> None:
    response = await world.check(number)
    assert response.status_code == 404
    assert response.json()["code"] == "IDENTIFIER_NOT_FOUND"


async def test_errors_of_the_application_call(world: World) -> None:
    url = f"{world.hub}/sim-swap/v2/check"
    http = world.fed.http
    assert (await http.post(url, json={"phoneNumber": PORTED_NUMBER})).status_code == 401
    headers = {"Authorization": f"Bearer {world.token}"}
    missing = await http.post(url, json={"maxAge": 24}, headers=headers)
    assert missing.status_code == 422 and missing.json()["code"] == "MISSING_IDENTIFIER"
    bad = await http.post(url, json={"phoneNumber": "0034600"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_ARGUMENT"
    scope = await http.post(
        f"{world.hub}/location-verification/v3/verify",
        headers=headers,
        json={
            "device": {"phoneNumber": PORTED_NUMBER},
            "area": {
                "areaType": "CIRCLE",
                "radius": 2000,
                "center": {"latitude": 40, "longitude": -3},
            },
        },
    )
    assert scope.status_code == 403 and scope.json()["code"] == "PERMISSION_DENIED"
    malformed = await world.check(world.number("telco-fr"), correlator="bad correlator!")
    assert malformed.status_code == 400, "x-correlator checked as an operator gateway does"


async def test_consent_by_ciba_on_the_serving_operator_and_revocation(world: World) -> None:
    app = await world.fed.register_application("consenting-app", SCOPE, ["dpv:ServiceProvision"])
    token = (await app.client_credentials("device-reachability-status:read dpv:ServiceProvision"))[
        "access_token"
    ]
    number = world.number("telco-fr")
    url = f"{world.hub}/device-reachability-status/v1/retrieve"
    headers = {"Authorization": f"Bearer {token}"}
    first = await world.fed.http.post(
        url, json={"device": {"phoneNumber": number}}, headers=headers
    )
    assert first.status_code == 200, first.text
    consents = world.fed.operator("telco-fr").identity.consents.for_subscriber(number)
    assert [c.client_id for c in consents] == ["hub/consenting-app"]  # the app, via the hub
    world.fed.operator("telco-fr").identity.consents.revoke(consents[0].id, actor="test")
    after = await world.fed.http.post(
        url, json={"device": {"phoneNumber": number}}, headers=headers
    )
    assert after.status_code == 403 and after.json()["code"] == "PERMISSION_DENIED"
    denied = world.number("telco-fr", "denies-consent")
    refused = await world.fed.http.post(
        url, json={"device": {"phoneNumber": denied}}, headers=headers
    )
    assert refused.status_code == 403


async def test_trust_revocation_at_run_time(world: World) -> None:
    fr, es = world.number("telco-fr"), world.number("telco-es")
    assert (await world.check(fr)).status_code == 200
    fr_root = world.fed.config.operator("telco-fr").api_root
    revoked = await world.fed.http.post(
        f"{fr_root}/admin/trust/revoke", json={"issuer": "hub"}, headers=ADMIN
    )
    assert revoked.status_code == 200 and revoked.json()["trusted"] is False
    cached = await world.check(fr)  # the hub's telco-fr token, issued before: refused
    assert cached.status_code == 403
    assert "no longer trusted" in cached.json()["message"]
    fresh = await world.check(fr)  # a new assertion: refused by the grant
    assert fresh.status_code == 403
    assert "refused the aggregator's token request" in fresh.json()["message"]
    assert (await world.check(es)).status_code == 200, "other operators keep working"
    await world.fed.http.post(
        f"{fr_root}/admin/trust/reinstate", json={"issuer": "hub"}, headers=ADMIN
    )
    assert (await world.check(fr)).status_code == 200


async def test_token_of_one_operator_refused_by_another_unless_federated(world: World) -> None:
    fed = world.fed
    es, fr = fed.operator("telco-es"), fed.operator("telco-fr")
    key = new_client_key()
    es.identity.register_client(
        {
            "client_id": "es-app",
            "client_name": "es app",
            "jwks": {"keys": [dict(key.as_dict(private=False))]},
            "grant_types": ["client_credentials"],
            "scope": "sim-swap:check",
            "purposes": [FRAUD],
        }
    )
    es_app = ApplicationClient(
        "es-app", key, Endpoints.from_metadata(es.identity.metadata()), fed.http
    )
    es_token = (await es_app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    number = world.number("telco-fr")
    fr_root = fed.config.operator("telco-fr").api_root
    foreign = await fed.http.post(
        f"{fr_root}/sim-swap/v2/check",
        json={"phoneNumber": number},
        headers={"Authorization": f"Bearer {es_token}"},
    )
    assert foreign.status_code == 401
    # through the federation: telco-fr trusts telco-es, which presents a signed assertion
    assertion = issue_assertion(
        es.identity,
        party="telco-es",
        audience=fr.identity.token_endpoint,
        subject=f"tel:{number}",
        scope=f"sim-swap:check {FRAUD}",
    )
    exchanged = await fed.http.post(
        fr.identity.token_endpoint, data={"grant_type": GRANT, "assertion": assertion}
    )
    assert exchanged.status_code == 200, exchanged.text
    fr_token = exchanged.json()["access_token"]
    served = await fed.http.post(
        f"{fr_root}/sim-swap/v2/check", json={}, headers={"Authorization": f"Bearer {fr_token}"}
    )
    assert served.status_code == 200, served.text
    replay = await fed.http.post(
        fr.identity.token_endpoint, data={"grant_type": GRANT, "assertion": assertion}
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    wrong = issue_assertion(
        es.identity,
        party="telco-es",
        audience=fed.operator("telco-gb").identity.token_endpoint,
        subject=f"tel:{number}",
        scope=f"sim-swap:check {FRAUD}",
    )
    refused = await fed.http.post(
        fr.identity.token_endpoint, data={"grant_type": GRANT, "assertion": wrong}
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # telco-gb does not trust telco-fr: its assertion is refused there
    gb = fed.operator("telco-gb")
    untrusted = issue_assertion(
        fr.identity,
        party="telco-fr",
        audience=gb.identity.token_endpoint,
        subject=f"tel:{world.number('telco-gb')}",
        scope=f"sim-swap:check {FRAUD}",
    )
    answer = await fed.http.post(
        gb.identity.token_endpoint, data={"grant_type": GRANT, "assertion": untrusted}
    )
    assert answer.status_code == 400


async def test_one_applications_consent_token_never_serves_another(world: World) -> None:
    scope = "device-reachability-status:read dpv:ServiceProvision"
    number = world.number("telco-fr")
    url = f"{world.hub}/device-reachability-status/v1/retrieve"
    db = world.fed.operator("telco-fr").db

    def ciba_requests() -> int:
        row = db.one("SELECT COUNT(*) AS n FROM identity_ciba_requests")
        return int(row["n"]) if row is not None else 0

    consents = world.fed.operator("telco-fr").identity.consents
    for name, expected in (("app-a", 1), ("app-b", 2)):
        app = await world.fed.register_application(name, SCOPE, ["dpv:ServiceProvision"])
        token = (await app.client_credentials(scope))["access_token"]
        response = await world.fed.http.post(
            url,
            json={"device": {"phoneNumber": number}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        assert ciba_requests() == expected  # each application goes to the handset itself
    parties = sorted(c.client_id for c in consents.for_subscriber(number))
    assert parties == ["hub/app-a", "hub/app-b"]  # one consent per application, not per hub


async def test_a_second_level_finder_refusing_the_hub_is_a_503_not_the_applications_fault(
    world: World,
) -> None:
    """The hub's own token at telco-gb's Telco Finder is refused (its client there disabled):
    the application hears the finder is unavailable, not that it is forbidden, and no DEEP
    search is started as if the number had moved."""
    gb = world.fed.operator("telco-gb")
    assert gb.identity.clients.disable("hub") is not None
    response = await world.check(BRAND_NUMBER)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "UNAVAILABLE"
    assert "telco-gb's Telco Finder" in response.json()["message"]
    assert gb.identity.clients.enable("hub") is not None
    assert (await world.check(BRAND_NUMBER)).status_code == 200
