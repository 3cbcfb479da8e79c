"""The kill switch: a company disables a developer, and the very next call of theirs is refused.

The measured proof runs a federation member with two data centres (two replicas over one
database file, each its own gateway and identity server), a developer who signed in with the
corporate identity provider, and their application calling SIM swap at both sites with one
token. The provider disables the developer (by SCIM, and separately by RISC); from that event
on, no call succeeds: the next call at each site is refused with a CAMARA body, the identity
server of each site refuses a new token, and the fake clock shows no time passed between the
event and the first refusal. Around it: SCIM and RISC refuse whoever is not the organisation's
provider, and the operator's orphan report lists what is left behind.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from federation.client import ApplicationClient, OAuthClientError
from federation.config import FederationConfig, default_federation
from federation.corporate_idp import ACCOUNT_DISABLED
from federation.member import MemberOperator
from federation.transport import AsgiNetwork
from operators import Operator, example_operator
from operators.operator import portal_host
from operators.portal import ApplicationStatus
from operators.portal.console import mint_console_token
from operators.portal.risc import EVENTS_PATH
from operators.portal.scim import ScimTokens
from tests.operators.identity.conftest import FakeClock
from tests.operators.portal.test_corporate_sign_in import (
    CLIENT_ID,
    IDP,
    PORTAL,
    TrustWorld,
    build_world,
)

SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
CHECK = "/sim-swap/v2/check"
SCIM_MEDIA = "application/scim+json"
DEACTIVATE = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "path": "active", "value": False}]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def signed_in_developer(world: TrustWorld, user: str, password: str) -> str:
    """``user`` signs in with the corporate provider; their developer id."""
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, user, password)
        assert answer.status_code == 303, answer.text
    developer = world.accounts.by_external_subject(world.org_id, user)
    assert developer is not None
    return developer.developer_id


# -- SCIM and RISC refuse whoever is not the organisation's provider ---------------------------


@pytest.fixture
async def world(clock: FakeClock) -> AsyncIterator[TrustWorld]:
    operator = Operator.from_config(example_operator(), clock=clock, monotonic=clock)
    network = AsgiNetwork()
    async with httpx.AsyncClient(transport=network, timeout=10.0) as http:
        built = build_world(operator, clock, network, http)
        built.federate()
        yield built
    operator.close()


def scim_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_MEDIA)
    body: dict[str, Any] = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status) and body["detail"]
    return body


async def test_scim_needs_the_organisations_token(world: TrustWorld) -> None:
    await signed_in_developer(world, "u-bob", "bob-pw")
    url = f"{PORTAL}/scim/v2/Users/u-bob"
    token = ScimTokens(world.accounts.db, world.clock).issue(world.org_id)
    other_org = world.accounts.sign_up("Other Ltd", "o@other.example", "Olga", "another strong "
                                       "password 7")
    other_token = ScimTokens(world.accounts.db, world.clock).issue(other_org.org_id)
    async with world.browser() as http:
        for headers in ({}, {"Authorization": "Bearer scim_wrong"},
                        {"Authorization": f"Basic {token}"}):
            answer = await http.patch(url, json=DEACTIVATE, headers=headers)
            scim_error(answer, 401)
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # another organisation's directory does not even learn that the user exists
        scim_error(await http.patch(url, json=DEACTIVATE,
                                    headers={"Authorization": f"Bearer {other_token}"}), 404)
        auth = {"Authorization": f"Bearer {token}"}
        scim_error(await http.patch(f"{PORTAL}/scim/v2/Users/u-nobody", json=DEACTIVATE,
                                    headers=auth), 404)
        scim_error(await http.get(f"{PORTAL}/scim/v2/Users/u-nobody", headers=auth), 404)
        shown = await http.get(url, headers=auth)
        assert shown.status_code == 200 and shown.json()["active"] is True
        assert shown.json()["userName"] == "bob@corp.example"
    bob = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert bob is not None and bob.active


@pytest.mark.parametrize(("body", "scim_type"), [
    ({"Operations": DEACTIVATE["Operations"]}, "invalidSyntax"),
    ({**DEACTIVATE, "Operations": []}, "invalidSyntax"),
    ({**DEACTIVATE, "Operations": [{"op": "replace", "path": "userName", "value": "x"}]},
     "invalidPath"),
    ({**DEACTIVATE, "Operations": [{"op": "replace", "path": "active", "value": "no"}]},
     "invalidValue"),
    ({**DEACTIVATE, "Operations": [{"op": "remove", "path": "active"}]}, "invalidSyntax"),
    ([1, 2], "invalidSyntax"),
])
async def test_a_bad_patch_is_a_scim_400_and_changes_nothing(
    world: TrustWorld, body: Any, scim_type: str
) -> None:
    await signed_in_developer(world, "u-bob", "bob-pw")
    token = ScimTokens(world.accounts.db, world.clock).issue(world.org_id)
    async with world.browser() as http:
        answer = await http.patch(f"{PORTAL}/scim/v2/Users/u-bob", json=body,
                                  headers={"Authorization": f"Bearer {token}"})
    assert scim_error(answer, 400)["scimType"] == scim_type
    bob = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert bob is not None and bob.active


async def test_scim_value_object_form_deactivates_and_reactivates(world: TrustWorld) -> None:
    bob_id = await signed_in_developer(world, "u-bob", "bob-pw")
    token = ScimTokens(world.accounts.db, world.clock).issue(world.org_id)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_MEDIA}

    def patch(active: Any) -> bytes:
        import json
        return json.dumps({"schemas": DEACTIVATE["schemas"], "Operations": [
            {"op": "Replace", "value": {"active": active}}]}).encode()

    async with world.browser() as http:
        off = await http.patch(f"{PORTAL}/scim/v2/Users/u-bob", content=patch(False),
                               headers=auth)
        assert off.status_code == 200 and off.json()["active"] is False
        developer = world.accounts.developer(bob_id)
        assert developer is not None and not developer.active
        on = await http.patch(f"{PORTAL}/scim/v2/Users/u-bob", content=patch("True"),
                              headers=auth)
        assert on.status_code == 200 and on.json()["active"] is True


def event(world: TrustWorld, **overrides: Any) -> str:
    return world.idp.account_disabled("u-bob", CLIENT_ID, **overrides)


async def push(http: httpx.AsyncClient, token: str,
               content_type: str = "application/secevent+jwt") -> httpx.Response:
    return await http.post(f"{PORTAL}{EVENTS_PATH}", content=token.encode(),
                           headers={"Content-Type": content_type, "Accept": "application/json"})


def set_error(response: httpx.Response, err: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["err"] == err and response.json()["description"]


def stranger_signed(world: TrustWorld) -> str:
    """A SET whose header names the provider's key but whose signature is someone else's."""
    now = int(world.clock())
    stranger = ECKey.generate_key("P-256")
    return jwt.encode({"alg": "ES256", "kid": world.idp.key.kid, "typ": "secevent+jwt"},
                      {"iss": IDP, "aud": CLIENT_ID, "iat": now, "jti": secrets.token_hex(8),
                       "events": {ACCOUNT_DISABLED: {"subject": {
                           "format": "iss_sub", "iss": IDP, "sub": "u-bob"}}}}, stranger)


async def test_a_set_is_believed_only_from_the_configured_provider(world: TrustWorld) -> None:
    bob_id = await signed_in_developer(world, "u-bob", "bob-pw")
    async with world.browser() as http:
        set_error(await push(http, stranger_signed(world)), "invalid_key")
        set_error(await push(http, event(world, iss="http://other-idp.test")), "invalid_issuer")
        set_error(await push(http, event(world, aud="another-receiver")), "invalid_audience")
        set_error(await push(http, event(world), "application/json"), "invalid_request")
        set_error(await push(http, "not.a.jwt"), "invalid_request")
        set_error(await push(http, event(world, iat=int(world.clock()) - 2 * 86400)),
                  "invalid_request")
        unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"secevent+jwt"}').decode()
        set_error(await push(http, f"{unsigned}.{event(world).split('.')[1]}."),
                  "invalid_request")
        developer = world.accounts.developer(bob_id)
        assert developer is not None and developer.active, "nothing refused may deprovision"
        # an ID token is not a security event, even from the right provider
        bob = world.idp.users["u-bob"]
        id_token = world.idp.id_token(bob, CLIENT_ID, None, jti="x", events={
            ACCOUNT_DISABLED: {"subject": {"format": "iss_sub", "iss": IDP, "sub": "u-bob"}}})
        set_error(await push(http, id_token), "invalid_key")
        good = event(world)
        assert (await push(http, good)).status_code == 202
        developer = world.accounts.developer(bob_id)
        assert developer is not None and not developer.active
        set_error(await push(http, good), "invalid_request")  # the same jti again


async def test_a_set_about_someone_unknown_is_accepted_and_changes_nothing(
    world: TrustWorld,
) -> None:
    bob_id = await signed_in_developer(world, "u-bob", "bob-pw")
    async with world.browser() as http:
        answer = await push(http, world.idp.account_disabled("u-unknown", CLIENT_ID))
    assert answer.status_code == 202
    developer = world.accounts.developer(bob_id)
    assert developer is not None and developer.active


# -- the measured kill switch, across two data centres -----------------------------------------


@dataclass
class TwoSites:
    world: TrustWorld
    member: MemberOperator
    sites: dict[str, httpx.AsyncClient]

    @property
    def operator(self) -> Operator:
        return self.member.primary

    async def application(self, site: str, client_id: str, key: ECKey) -> ApplicationClient:
        client = await ApplicationClient.discover(client_id, key, self.operator.issuer,
                                                  self.sites[site])
        client.clock = self.world.clock  # assertions dated on the operators' fake clock
        return client

    async def call(self, site: str, token: str, number: str) -> httpx.Response:
        return await self.sites[site].post(
            f"{self.member.api_root}{CHECK}", json={"phoneNumber": number, "maxAge": 240},
            headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def two_sites(clock: FakeClock, tmp_path: Path) -> AsyncIterator[TwoSites]:
    config: FederationConfig = default_federation()
    network = AsgiNetwork()
    async with httpx.AsyncClient(transport=network, timeout=10.0) as http:
        member = MemberOperator.build(config, "telco-es", http,
                                      storage=str(tmp_path / "telco-es.sqlite3"),
                                      clock=clock, monotonic=clock)
        sites = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=site), timeout=10.0)
                 for name, site in member.front.sites.items()}
        world = build_world(member.primary, clock, network, http, api_root=member.api_root)
        world.federate()
        try:
            yield TwoSites(world, member, sites)
        finally:
            for client in sites.values():
                await client.aclose()
            member.close()


@pytest.mark.parametrize("channel", ["scim", "risc"])
async def test_the_next_call_after_deprovisioning_is_refused_in_every_data_centre(
    two_sites: TwoSites, clock: FakeClock, channel: str
) -> None:
    world, names = two_sites.world, list(two_sites.sites)
    assert len(names) == 2, "telco-es of the default federation has two data centres"
    if channel == "scim":
        token = ScimTokens(world.accounts.db, clock).issue(world.org_id)
        world.idp.push_scim_to(f"{PORTAL}/scim/v2", token)
    else:
        world.idp.push_events_to(f"{PORTAL}{EVENTS_PATH}", CLIENT_ID)

    # Bob signs in with his company account and creates an application with a key pair
    async with world.browser() as browser:
        assert (await world.corporate_sign_in(browser, "u-bob", "bob-pw")).status_code == 303
        bob = world.accounts.by_external_subject(world.org_id, "u-bob")
        assert bob is not None and world.session_developer(browser) == bob.developer_id
        application, private = world.accounts.create_application(
            bob, "Bob's fraud check", ["sim-swap"], ["dpv:FraudPreventionAndDetection"], None)
        assert private is not None
        key = ECKey.import_key(private)
        number = two_sites.operator.subscribers.test_number("approves")

        # one token, obtained at the first site, works at both; so does a second one
        first = await two_sites.application(names[0], application.client_id, key)
        access = (await first.client_credentials(SCOPE))["access_token"]
        for _ in range(3):
            for site in names:
                answer = await two_sites.call(site, access, number)
                assert answer.status_code == 200, answer.text
        second = await two_sites.application(names[1], application.client_id, key)
        other_access = (await second.client_credentials(SCOPE))["access_token"]
        assert (await two_sites.call(names[0], other_access, number)).status_code == 200

        # the company disables Bob: the event
        event_at = clock()
        disabled = await world.http.post(
            f"{IDP}/admin/users/u-bob/disable",
            headers={"Authorization": "Bearer idp-admin-secret"})
        assert disabled.status_code == 200, disabled.text
        delivered = [d["status"] for d in disabled.json()["deliveries"]]
        assert delivered == ([200] if channel == "scim" else [202])

        # from here on: every call counted, none may succeed
        served_after_event = 0
        first_refusal: dict[str, tuple[int, float]] = {}
        for site in names:
            for calls, token in enumerate((access, other_access, access), start=1):
                answer = await two_sites.call(site, token, number)
                if answer.status_code == 200:
                    served_after_event += 1
                    continue
                assert answer.status_code in (401, 403), answer.text
                body = answer.json()
                assert set(body) == {"status", "code", "message"}
                assert body["status"] == answer.status_code
                first_refusal.setdefault(site, (calls, clock() - event_at))
        assert served_after_event == 0
        # (calls from the event to the first refusal, seconds on the clock): the very next one
        assert first_refusal == dict.fromkeys(names, (1, 0.0))

        # and no site's identity server gives the application a new token
        for site in names:
            client = await two_sites.application(site, application.client_id, key)
            with pytest.raises(OAuthClientError) as refused:
                await client.client_credentials(SCOPE)
            assert refused.value.error == "invalid_client"

        # the portal agrees: Bob is out, his application suspended, his session ended
        developer = world.accounts.developer(bob.developer_id)
        assert developer is not None and not developer.active
        suspended = world.accounts.application(application.client_id)
        assert suspended is not None and suspended.status is ApplicationStatus.SUSPENDED
        assert world.session_developer(browser) is None


async def test_a_leavers_console_token_for_a_colleagues_application_dies_in_every_data_centre(
    two_sites: TwoSites,
) -> None:
    """Bob minted a console token for Ada's application (and could copy it out of the page).
    He leaves: his token is refused at both sites from the next call, while Ada's application,
    which is not his, stays enabled and her token keeps working at both."""
    world, names = two_sites.world, list(two_sites.sites)
    bob_id = await signed_in_developer(world, "u-bob", "bob-pw")
    bob = world.accounts.developer(bob_id)
    assert bob is not None
    application, _ = world.accounts.create_application(
        world.admin, "Ada's fraud check", ["sim-swap"], ["dpv:FraudPreventionAndDetection"], None)
    host = portal_host(two_sites.operator)
    bobs, adas = (mint_console_token(host, world.accounts, developer, application.client_id)
                  ["access_token"] for developer in (bob, world.admin))
    number = two_sites.operator.subscribers.test_number("approves")
    for site in names:
        for token in (bobs, adas):
            answer = await two_sites.call(site, token, number)
            assert answer.status_code == 200, answer.text
    assert world.accounts.deactivate(bob_id) == []  # Bob owns no application
    for site in names:
        refused = await two_sites.call(site, bobs, number)
        assert refused.status_code == 401, (site, refused.text)
        answer = await two_sites.call(site, adas, number)
        assert answer.status_code == 200, (site, answer.text)
    still = world.accounts.application(application.client_id)
    assert still is not None and still.status is ApplicationStatus.ACTIVE


async def test_the_orphan_report_needs_the_admin_and_lists_what_is_left_behind(
    world: TrustWorld, clock: FakeClock
) -> None:
    bob_id = await signed_in_developer(world, "u-bob", "bob-pw")
    eve_id = await signed_in_developer(world, "u-eve", "eve-pw")
    bob, eve = world.accounts.developer(bob_id), world.accounts.developer(eve_id)
    assert bob is not None and eve is not None
    purposes = ["dpv:FraudPreventionAndDetection"]
    bobs, _ = world.accounts.create_application(bob, "Bob's app", ["sim-swap"], purposes, None)
    eves, _ = world.accounts.create_application(eve, "Eve's app", ["sim-swap"], purposes, None)
    world.accounts.deactivate(bob_id)
    url = f"{PORTAL}/portal/admin/orphans"
    admin = world.accounts.identity.config.admin_secret
    async with world.browser() as http:
        assert (await http.get(url, params={"days": 30})).status_code == 401
        assert (await http.get(url, params={"days": 30},
                               headers={"Authorization": "Bearer wrong"})).status_code == 401
        auth = {"Authorization": f"Bearer {admin}"}
        report = (await http.get(url, params={"days": 30, "format": "json"},
                                 headers=auth)).json()
        assert [(r["client_id"], r["reason"]) for r in report["applications"]] == [
            (bobs.client_id, "owner deactivated")]
        clock.advance(31 * 86400)  # Eve has not been seen for a month
        report = (await http.get(url, params={"days": 30}, headers={
            **auth, "Accept": "application/json"})).json()
        assert {r["client_id"]: r["reason"] for r in report["applications"]} == {
            bobs.client_id: "owner deactivated", eves.client_id: "owner inactive"}
        page = await http.get(url, params={"days": 30}, headers=auth)
        assert page.status_code == 200 and "Eve&#39;s app" in page.text
        assert (await http.get(url, params={"days": "soon"}, headers=auth)).status_code == 400
