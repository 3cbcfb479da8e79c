"""Corporate sign-in: the portal as an OIDC relying party of an organisation's identity provider.

A portal and a corporate identity provider live on one in-process network; a browser (an
httpx client with a cookie jar) walks the authorization code flow. ID tokens that are meant
for someone else, expired or signed by a stranger are refused and nobody is signed in.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

import operators.portal.accounts as accounts_module
from federation.corporate_idp import CorporateIdp, CorporateUser, create_corporate_idp_app
from federation.transport import AsgiNetwork
from operators import Operator, example_operator
from operators.camara import OPERATIONS
from operators.identity import JwksError
from operators.outbound_hosts import host_problem
from operators.portal import AccountError, Developer, PortalHost
from operators.portal.accounts import DeveloperAccounts
from operators.portal.corporate_sign_in import (
    CALLBACK_PATH,
    CorporateSignIn,
    IdpDirectory,
    OrganisationIdps,
)
from operators.portal.guard import PortalGuard
from operators.portal.password_links import LINK_LIFETIME, PasswordLinks
from operators.portal.router import install_developer_portal
from operators.portal.sessions import COOKIE, IssuerNotTrustedError
from tests.operators.identity.conftest import FakeClock

PORTAL = "http://portal.operator.test"
IDP = "https://idp.corp.test"
CLIENT_ID = "ogsim-portal"
CLIENT_SECRET = "corp-issued-secret-0123456789"
ADMIN_PASSWORD = "correct horse battery staple 42"


@dataclass
class TrustWorld:
    """A portal and a corporate identity provider, one network, one fake clock."""

    clock: FakeClock
    network: AsgiNetwork
    http: httpx.AsyncClient
    idp: CorporateIdp
    accounts: DeveloperAccounts
    guard: PortalGuard
    admin: Developer
    """The organisation's first member: its admin."""

    @property
    def org_id(self) -> str:
        return self.admin.org_id

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.network, follow_redirects=False, timeout=10.0)

    def signed_in(self, developer: Developer) -> httpx.AsyncClient:
        """A browser holding a portal session of ``developer``."""
        browser = self.browser()
        session = self.guard.sessions.start(developer.developer_id)
        browser.cookies.set(COOKIE, self.guard.sessions.encode(session),
                            domain=urlsplit(PORTAL).hostname or "", path="/portal")
        return browser

    def federate(self) -> None:
        """The organisation names its provider (what the trust page saves)."""
        OrganisationIdps(self.accounts.db, self.clock).save(self.org_id, IDP, CLIENT_ID,
                                                            CLIENT_SECRET)
        self.accounts.set_idp(self.org_id, IDP)

    async def corporate_sign_in(self, browser: httpx.AsyncClient, login: str,
                                password: str, idp: str = IDP) -> httpx.Response:
        """The whole flow (with the provider at ``idp``); the portal's answer to the callback."""
        start = await browser.get(f"{PORTAL}/portal/sign-in/corporate",
                                  params={"org": self.org_id})
        assert start.status_code == 303, start.text
        form = await browser.get(start.headers["location"])
        assert form.status_code == 200, form.text
        request_id = re.search(r'name="request" value="([^"]+)"', form.text)
        assert request_id is not None
        back = await browser.post(f"{idp}/authorize", data={
            "request": request_id.group(1), "username": login, "password": password})
        assert back.status_code == 303, back.text
        assert back.headers["location"].startswith(PORTAL + CALLBACK_PATH)
        return await browser.get(back.headers["location"])

    def csrf(self, browser: httpx.AsyncClient) -> str:
        """The CSRF token of the browser's session (what a form of this session carries)."""
        session = self.guard.sessions.decode(browser.cookies.get(COOKIE))
        assert session is not None
        return self.guard.sessions.csrf_token(session)

    def session_developer(self, browser: httpx.AsyncClient) -> str | None:
        session = self.guard.sessions.decode(browser.cookies.get(COOKIE))
        return None if session is None else session.developer_id


def portal_host(operator: Operator, clock: FakeClock, *, api_root: str | None = None
                ) -> PortalHost:
    return PortalHost(
        config=operator.config, db=operator.db, identity=operator.identity,
        plans=operator.gateway.admission.plans, clock=clock, origin=PORTAL,
        api_root=api_root or "http://api.operator.test",
        apis=tuple(dict.fromkeys(op.api for op in OPERATIONS)),
    )


def build_world(operator: Operator, clock: FakeClock, network: AsgiNetwork,
                http: httpx.AsyncClient, **host: Any) -> TrustWorld:
    """Serve ``operator``'s portal (with the trust pages) and a corporate IdP on ``network``."""
    idp = CorporateIdp(IDP, "idp-admin-secret", clock=clock, http=http)
    idp.add_user(CorporateUser("u-bob", "bob@corp.example", "Bob Builder", "bob-pw"))
    idp.add_user(CorporateUser("u-eve", "eve@corp.example", "Eve", "eve-pw"))
    idp.register_client(CLIENT_ID, CLIENT_SECRET, [PORTAL + CALLBACK_PATH])
    network.add(IDP, create_corporate_idp_app(idp))
    app = FastAPI()
    operator.identity.use_http(http)  # the trust pages reach the IdP as the operator does
    portal = install_developer_portal(app, portal_host(operator, clock, **host))
    network.add(PORTAL, app)
    admin = portal.accounts.sign_up("Corp Ltd", "admin@corp.example", "Ada Admin",
                                    ADMIN_PASSWORD)
    return TrustWorld(clock, network, http, idp, portal.accounts, portal.guard, admin)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def world(clock: FakeClock) -> AsyncIterator[TrustWorld]:
    operator = Operator.from_config(example_operator(), clock=clock, monotonic=clock)
    network = AsgiNetwork()
    async with httpx.AsyncClient(transport=network, timeout=10.0) as http:
        yield build_world(operator, clock, network, http)
    operator.close()


async def test_a_developer_signs_in_with_the_company_account_and_is_created_once(
    world: TrustWorld,
) -> None:
    world.federate()
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "bob@corp.example", "bob-pw")
        assert answer.status_code == 303 and answer.headers["location"] == "/portal"
        bob = world.accounts.by_external_subject(world.org_id, "u-bob")
        assert bob is not None and bob.email == "bob@corp.example" and bob.name == "Bob Builder"
        assert world.session_developer(browser) == bob.developer_id
    async with world.browser() as again:
        await world.corporate_sign_in(again, "u-bob", "bob-pw")
        assert world.session_developer(again) == bob.developer_id
    assert [d.email for d in world.accounts.members(world.org_id)] == [
        "admin@corp.example", "bob@corp.example"]


def forge(world: TrustWorld, monkeypatch: pytest.MonkeyPatch,
          change: Callable[[CorporateIdp, CorporateUser, str, str | None], str]) -> None:
    monkeypatch.setattr(world.idp, "id_token",
                        lambda user, audience, nonce, **_: change(world.idp, user, audience, nonce))


def foreign_signature(idp: CorporateIdp, user: CorporateUser, audience: str,
                      nonce: str | None) -> str:
    now = int(idp.clock())
    stranger = ECKey.generate_key("P-256")
    return jwt.encode({"alg": "ES256", "kid": idp.key.kid, "typ": "JWT"},
                      {"iss": idp.issuer, "sub": user.user_id, "aud": audience, "iat": now,
                       "exp": now + 300, "nonce": nonce, "email": user.email}, stranger)


BAD_ID_TOKENS: dict[str, Callable[[CorporateIdp, CorporateUser, str, str | None], str]] = {
    "wrong audience": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, "someone-else", nonce),
    "extra audience": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, nonce, aud=[aud, "someone-else"]),
    "expired": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, nonce, exp=int(idp.clock()) - 11),
    "bad signature": foreign_signature,
    "wrong issuer": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, nonce, iss="http://other-idp.test"),
    "another nonce": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, "not-the-nonce"),
    "a security event token": lambda idp, user, aud, nonce: idp.sign(
        {"iss": idp.issuer, "sub": user.user_id, "aud": aud, "iat": int(idp.clock()),
         "exp": int(idp.clock()) + 60, "nonce": nonce, "email": user.email},
        typ="secevent+jwt"),
}


@pytest.mark.parametrize("case", sorted(BAD_ID_TOKENS))
async def test_a_bad_id_token_is_refused_and_nobody_is_signed_in(
    world: TrustWorld, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    world.federate()
    forge(world, monkeypatch, BAD_ID_TOKENS[case])
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "bob@corp.example", "bob-pw")
        assert answer.status_code == 401, answer.text
        assert "ID token was refused" in answer.text
        assert world.session_developer(browser) is None
    assert world.accounts.by_external_subject(world.org_id, "u-bob") is None


async def test_a_callback_from_another_browser_or_twice_is_refused(world: TrustWorld) -> None:
    world.federate()
    async with world.browser() as browser, world.browser() as attacker:
        start = await browser.get(f"{PORTAL}/portal/sign-in/corporate",
                                  params={"org": world.org_id})
        form = await browser.get(start.headers["location"])
        request_id = re.search(r'name="request" value="([^"]+)"', form.text)
        assert request_id is not None
        back = await browser.post(f"{IDP}/authorize", data={
            "request": request_id.group(1), "username": "u-bob", "password": "bob-pw"})
        stolen = await attacker.get(back.headers["location"])
        assert stolen.status_code == 400 and "another browser" in stolen.text
        replay = await browser.get(back.headers["location"])
        assert replay.status_code == 400 and "unknown, used or expired" in replay.text
    assert world.accounts.by_external_subject(world.org_id, "u-bob") is None


async def test_a_deactivated_developer_cannot_sign_in_again(world: TrustWorld) -> None:
    world.federate()
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "u-bob", "bob-pw")
    bob = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert bob is not None
    world.accounts.deactivate(bob.developer_id)
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "u-bob", "bob-pw")
        assert answer.status_code == 403 and "deactivated" in answer.text
        assert world.session_developer(browser) is None


async def test_a_member_deactivated_while_the_provider_answers_gets_the_refusal_page(
    world: TrustWorld, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SCIM deactivates Bob while his callback is being checked: the callback's own refusal
    page (403, the state cookie dropped), and no session."""
    world.federate()
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "u-bob", "bob-pw")
    bob = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert bob is not None
    finish = CorporateSignIn.finish

    async def deprovisioned_meanwhile(self: CorporateSignIn, params: dict[str, str],
                                      cookie_state: str | None) -> Developer:
        found = await finish(self, params, cookie_state)
        world.accounts.deactivate(bob.developer_id)
        return found

    monkeypatch.setattr(CorporateSignIn, "finish", deprovisioned_meanwhile)
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "u-bob", "bob-pw")
        assert answer.status_code == 403 and "Corporate sign-in did not work" in answer.text
        assert "no longer active" in answer.text
        assert world.session_developer(browser) is None


async def test_an_organisation_without_a_provider_gets_a_page(world: TrustWorld) -> None:
    async with world.browser() as browser:
        for org in (world.org_id, "org-nobody", ""):
            answer = await browser.get(f"{PORTAL}/portal/sign-in/corporate",
                                       params={"org": org})
            assert answer.status_code == 404 and "does not sign in" in answer.text


async def test_the_org_admin_configures_the_provider_on_the_trust_page(
    world: TrustWorld,
) -> None:
    async with world.signed_in(world.admin) as browser:
        page = await browser.get(f"{PORTAL}/portal/organisation/trust")
        assert page.status_code == 200 and 'id="not-federated"' in page.text
        assert PORTAL + CALLBACK_PATH in page.text
        csrf = csrf_of(page.text)
        unreachable = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": "https://nowhere.test", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert unreachable.status_code == 400 and "could not be read" in unreachable.text
        bad = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": "not a url", "client_id": "", "client_secret": ""})
        assert bad.status_code == 400 and "issuer:" in bad.text
        # a port that is not a number, an unclosed IPv6 bracket, a control character: were 500s
        for typo in ("http://idp.example.com:abc", "http://[x", "http://idp.example.com/\x7f"):
            mistyped = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": typo, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert mistyped.status_code == 400 and "issuer: give" in mistyped.text, typo
        saved = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": IDP, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert saved.status_code == 200 and 'id="federated"' in saved.text
        assert CLIENT_SECRET not in saved.text
        organisation = world.accounts.organisation(world.org_id)
        assert organisation is not None and organisation.idp_issuer == IDP
        stored = world.accounts.db.one("SELECT client_secret FROM portal_org_idps")
        assert stored is not None and CLIENT_SECRET not in stored[0], "sealed at rest"
        # a blank secret keeps the one on file for the same issuer only: never sent elsewhere
        moved = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": "https://other-idp.test", "client_id": CLIENT_ID,
            "client_secret": ""})
        assert moved.status_code == 400 and "client_secret:" in moved.text
        kept = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": IDP, "client_id": CLIENT_ID, "client_secret": ""})
        assert kept.status_code == 200 and 'id="federated"' in kept.text
        token = await browser.post(f"{PORTAL}/portal/organisation/trust/scim-token",
                                   data={"csrf": csrf})
        shown = re.search(r'id="scim-token">(scim_[^<]+)<', token.text)
        assert token.status_code == 200 and shown is not None
        later = await browser.get(f"{PORTAL}/portal/organisation/trust")
        assert shown.group(1) not in later.text and 'id="scim-token-state">issued' in later.text
        forged = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": "forged", "issuer": "http://evil.test", "client_id": "x",
            "client_secret": "y"})
        assert forged.status_code == 403
    async with world.browser() as browser:
        assert (await world.corporate_sign_in(browser, "u-eve", "eve-pw")).status_code == 303


async def test_only_the_org_admin_may_change_the_provider(world: TrustWorld) -> None:
    world.federate()
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "u-eve", "eve-pw")
        page = await browser.get(f"{PORTAL}/portal/organisation/trust")
        assert page.status_code == 200 and "Only your organisation's admin" in page.text
        answer = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": world.csrf(browser), "issuer": "http://evil.test", "client_id": "x",
            "client_secret": "y"})
        assert answer.status_code == 403
    organisation = world.accounts.organisation(world.org_id)
    assert organisation is not None and organisation.idp_issuer == IDP


async def test_the_next_active_member_holds_the_settings_once_the_admin_is_deprovisioned(
    world: TrustWorld,
) -> None:
    """The founding member leaves the company: whoever joined next may now change how the
    organisation signs in (before, nobody could: the admin stayed the deactivated member)."""
    world.federate()
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "u-eve", "eve-pw")
        world.accounts.deactivate(world.admin.developer_id)
        page = await browser.get(f"{PORTAL}/portal/organisation/trust")
        assert page.status_code == 200 and "Only your organisation's admin" not in page.text
        token = await browser.post(f"{PORTAL}/portal/organisation/trust/scim-token",
                                   data={"csrf": world.csrf(browser)})
        assert token.status_code == 200 and 'id="scim-token">scim_' in token.text


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_the_trust_page_fetches_from_no_metadata_service(world: TrustWorld) -> None:
    """Saving the settings makes the operator fetch the issuer's discovery document: a
    link-local address (a cloud's metadata service), however it is written, and multicast,
    reserved or unspecified ones are refused before anything is fetched."""
    async with world.signed_in(world.admin) as browser:
        csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
        for inner in ("http://169.254.169.254", "http://2852039166", "http://0xa9.0xfe.0xa9.0xfe",
                      "http://[::ffff:169.254.169.254]", "http://[fe80::1]:8080",
                      "http://0.0.0.0:9000", "http://224.0.0.1", "http://[fd00:ec2::254]",
                      "http://100.100.100.200"):
            refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": inner, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert refused.status_code == 400, inner
            assert "is not an address the operator sends requests to" in refused.text
        organisation = world.accounts.organisation(world.org_id)
        assert organisation is not None and organisation.idp_issuer is None


async def test_an_exposed_operator_names_the_providers_it_fetches_from(clock: FakeClock) -> None:
    """With ``corporate_idp_hosts`` set, only those hosts (or host:port) are fetched from."""
    idp_host = urlsplit(IDP).hostname
    config = example_operator().model_copy(
        update={"corporate_idp_hosts": (f"{idp_host}", "idp.other.example:8443")})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    network = AsgiNetwork()
    async with httpx.AsyncClient(transport=network, timeout=10.0) as http:
        world = build_world(operator, clock, network, http)
        async with world.signed_in(world.admin) as browser:
            csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
            for elsewhere in ("http://127.0.0.1:9000", "https://idp.other.example",
                              f"http://{idp_host}.evil.example"):
                refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                    "csrf": csrf, "issuer": elsewhere, "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET})
                assert refused.status_code == 400, elsewhere
                assert "accepts identity providers only on" in refused.text, elsewhere
            saved = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": IDP, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert saved.status_code == 200 and 'id="federated"' in saved.text
    operator.close()


async def test_a_provider_cannot_point_the_operator_at_a_metadata_service(
    world: TrustWorld,
) -> None:
    """The operator posts to the token endpoint and fetches the keys a discovery document
    names: a provider on a fine host naming a metadata address there is refused when the
    settings are saved, before the operator ever posts to it."""
    evil = "https://evil.corp.test"
    document = {"issuer": evil, "authorization_endpoint": f"{evil}/authorize",
                "token_endpoint": "http://169.254.169.254/latest/meta-data/",
                "jwks_uri": f"{evil}/jwks"}
    provider = FastAPI()
    provider.get("/.well-known/openid-configuration")(lambda: document)
    world.network.add(evil, provider)
    async with world.signed_in(world.admin) as browser:
        csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
        refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": evil, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert refused.status_code == 400
        assert "names a token_endpoint the operator will not use" in refused.text
        organisation = world.accounts.organisation(world.org_id)
        assert organisation is not None and organisation.idp_issuer is None
        # the authorization endpoint is only where browsers are sent: not held to the rule
        document["token_endpoint"] = f"{evil}/token"
        document["authorization_endpoint"] = "https://100.100.1.1/authorize"
        world.network.add(evil, provider)  # served afresh: the directory caches documents
        world.clock.advance(3600)
        saved = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": evil, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert saved.status_code == 200, saved.text


async def test_an_exposed_operator_redirects_browsers_only_to_the_hosts_it_names(
    clock: FakeClock,
) -> None:
    """With ``corporate_idp_hosts`` set, a provider on a listed host whose document sends
    browsers elsewhere is refused: the portal would be an open redirect to that host."""
    listed = "https://idp.listed.test"
    document = {"issuer": listed, "authorization_endpoint": "https://phish.example/authorize",
                "token_endpoint": f"{listed}/token", "jwks_uri": f"{listed}/jwks"}
    provider = FastAPI()
    provider.get("/.well-known/openid-configuration")(lambda: document)
    config = example_operator().model_copy(
        update={"corporate_idp_hosts": (str(urlsplit(IDP).hostname), "idp.listed.test")})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    network = AsgiNetwork()
    async with httpx.AsyncClient(transport=network, timeout=10.0) as http:
        world = build_world(operator, clock, network, http)
        network.add(listed, provider)
        async with world.signed_in(world.admin) as browser:
            csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
            refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": listed, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert refused.status_code == 400
            assert "names an authorization_endpoint the operator will not use" in refused.text
    operator.close()


def test_an_allowed_host_may_name_its_port_an_ipv6_one_in_brackets() -> None:
    assert host_problem(urlsplit("http://[::1]:8099"), ("[::1]:8099",)) is None
    assert host_problem(urlsplit("http://[::1]:8098"), ("[::1]:8099",)) is not None
    assert host_problem(urlsplit("https://IDP.example.com"), ("idp.EXAMPLE.com:443",)) is None
    assert host_problem(urlsplit("http://idp.example.com"), ("idp.example.com:443",)) is not None


def serve_provider(world: TrustWorld, issuer: str) -> CorporateIdp:
    """Another provider (with Bob) on ``world``'s network, at ``issuer``."""
    provider = CorporateIdp(issuer, "idp-admin-secret", clock=world.clock, http=world.http)
    provider.add_user(CorporateUser("u-bob", "bob@corp.example", "Bob Builder", "bob-pw"))
    provider.register_client(CLIENT_ID, CLIENT_SECRET, [PORTAL + CALLBACK_PATH])
    world.network.add(issuer, create_corporate_idp_app(provider))
    return provider


async def test_a_plain_http_issuer_off_loopback_is_a_form_error(world: TrustWorld) -> None:
    """The client secret, codes and the keys that check ID tokens would cross the network in
    clear text: an issuer is https, plain http only on a loopback host (the demo's). The
    provider answers at each of these, so nothing but the scheme refuses it."""
    async with world.signed_in(world.admin) as browser:
        csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
        for plain in ("http://idp.corp.example", "http://10.20.30.40:8443",
                      "http://localhost.:8099", "http://[fd12::2]:8099"):
            serve_provider(world, plain)
            refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": plain, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert refused.status_code == 400, plain
            assert ("issuer: http:// is accepted only on a loopback host"
                    in refused.text.replace("&#39;", "'")), plain
            organisation = world.accounts.organisation(world.org_id)
            assert organisation is not None and organisation.idp_issuer is None
        for loopback in ("http://127.0.0.1:8099", "http://127.8.9.10", "http://localhost:8099",
                         "http://[::1]:8099"):
            serve_provider(world, loopback)
            saved = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
                "csrf": csrf, "issuer": loopback, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET})
            assert saved.status_code == 200 and 'id="federated"' in saved.text, loopback
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "u-bob", "bob-pw", "http://[::1]:8099")
        assert answer.status_code == 303, "signed in over http on loopback"


@pytest.mark.parametrize(("name", "url"), [
    ("authorization_endpoint", "http://mixed.corp.test/authorize"),
    ("token_endpoint", "http://mixed.corp.test/token"),
    ("jwks_uri", "http://mixed.corp.test/jwks"),
])
async def test_a_discovery_document_naming_a_plain_http_endpoint_is_refused(
    world: TrustWorld, name: str, url: str
) -> None:
    """An https issuer whose document sends the browser's password, the portal's client secret
    or the key fetch over plain http off loopback is refused when the settings are saved."""
    mixed = "https://mixed.corp.test"
    document = {"issuer": mixed, "authorization_endpoint": f"{mixed}/authorize",
                "token_endpoint": f"{mixed}/token", "jwks_uri": f"{mixed}/jwks", name: url}
    provider = FastAPI()
    provider.get("/.well-known/openid-configuration")(lambda: document)
    world.network.add(mixed, provider)
    async with world.signed_in(world.admin) as browser:
        csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
        refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": mixed, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert refused.status_code == 400
        assert f"{name} the operator will not use: http:// is accepted only on a loopback" in (
            refused.text)
        organisation = world.accounts.organisation(world.org_id)
        assert organisation is not None and organisation.idp_issuer is None


async def test_an_unreadable_endpoint_url_in_a_discovery_document_is_a_form_error(
    world: TrustWorld,
) -> None:
    """An endpoint URL that cannot be parsed (an unclosed IPv6 bracket) was a 500."""
    broken = "https://broken.corp.test"
    document = {"issuer": broken, "authorization_endpoint": "https://[x/authorize",
                "token_endpoint": f"{broken}/token", "jwks_uri": f"{broken}/jwks"}
    provider = FastAPI()
    provider.get("/.well-known/openid-configuration")(lambda: document)
    world.network.add(broken, provider)
    async with world.signed_in(world.admin) as browser:
        csrf = csrf_of((await browser.get(f"{PORTAL}/portal/organisation/trust")).text)
        refused = await browser.post(f"{PORTAL}/portal/organisation/trust", data={
            "csrf": csrf, "issuer": broken, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        assert refused.status_code == 400
        assert "no usable authorization_endpoint" in refused.text


async def test_a_plain_http_issuer_saved_before_the_rule_is_not_used(world: TrustWorld) -> None:
    """Settings saved when any http issuer was accepted: sign-in stops at a page before the
    browser is sent anywhere, and no key is fetched from that issuer (an ID token or a RISC
    event naming it is refused)."""
    plain = "http://idp.corp.example"
    serve_provider(world, plain)
    OrganisationIdps(world.accounts.db, world.clock).save(world.org_id, plain, CLIENT_ID,
                                                         CLIENT_SECRET)
    world.accounts.set_idp(world.org_id, plain)
    async with world.browser() as browser:
        start = await browser.get(f"{PORTAL}/portal/sign-in/corporate",
                                  params={"org": world.org_id})
        assert start.status_code == 502 and "location" not in start.headers
        assert "http:// is accepted only on a loopback host" in start.text
    directory = IdpDirectory(world.http, world.clock)
    with pytest.raises(JwksError, match="loopback"):
        await directory.keys(plain, None)
    assert await directory.keys(IDP, None), "an https issuer's keys are fetched"


def without_email_verified(idp: CorporateIdp, user: CorporateUser, audience: str,
                           nonce: str | None) -> str:
    claims = jwt.decode(CorporateIdp.id_token(idp, user, audience, nonce), idp.key).claims
    claims.pop("email_verified", None)
    return idp.sign(claims, typ="JWT")


UNVERIFIED_EMAILS: dict[str, Callable[[CorporateIdp, CorporateUser, str, str | None], str]] = {
    "false": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, nonce, email_verified=False),
    "missing": without_email_verified,
    "a string": lambda idp, user, aud, nonce: CorporateIdp.id_token(
        idp, user, aud, nonce, email_verified="true"),
}


@pytest.mark.parametrize("case", sorted(UNVERIFIED_EMAILS))
async def test_an_email_the_provider_has_not_verified_signs_nobody_in(
    world: TrustWorld, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The address decides which developer account the person gets: a provider that lets
    users type any address must not hand them a colleague's, so email_verified must be true."""
    world.federate()
    forge(world, monkeypatch, UNVERIFIED_EMAILS[case])
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "u-bob", "bob-pw")
        assert answer.status_code == 403, answer.text
        assert "has not verified this account" in answer.text.replace("&#39;", "'")
        assert world.session_developer(browser) is None
    assert world.accounts.by_external_subject(world.org_id, "u-bob") is None
    assert [d.email for d in world.accounts.members(world.org_id)] == ["admin@corp.example"]


async def test_an_unverified_user_of_the_provider_is_refused(world: TrustWorld) -> None:
    """A user the provider itself marks unverified, through the whole flow."""
    world.idp.add_user(CorporateUser("u-mal", "bob-boss@corp.example", "Mal", "mal-pw",
                                     email_verified=False))
    world.federate()
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "u-mal", "mal-pw")
        assert answer.status_code == 403 and world.session_developer(browser) is None
    assert world.accounts.by_external_subject(world.org_id, "u-mal") is None


async def test_a_developer_already_linked_signs_in_without_the_claim(
    world: TrustWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim matters where the address picks the account, at the first sign-in; a
    provider that omits it later (Entra ID does by default) locks nobody out."""
    world.federate()
    async with world.browser() as browser:
        assert (await world.corporate_sign_in(browser, "u-bob", "bob-pw")).status_code in (
            200, 303)
        linked = world.session_developer(browser)
    assert linked is not None
    forge(world, monkeypatch, without_email_verified)
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "u-bob", "bob-pw")
        again = world.session_developer(browser)
        assert again is not None and again == linked


async def test_a_password_member_is_linked_at_their_first_corporate_sign_in(
    world: TrustWorld,
) -> None:
    """Bob joined by password before Corp federated its sign-in. Once it has, his password
    no longer signs him in (his provider's SCIM could never deprovision it), and his first
    corporate sign-in, with the address the provider vouches for, links his account instead
    of refusing it as taken: same developer, same applications, no password left."""
    invitation = world.accounts.invite(world.org_id, by=world.admin.developer_id)
    bob = world.accounts.join(world.org_id, "bob@corp.example", "Bob", ADMIN_PASSWORD,
                              invitation=invitation)
    assert world.accounts.authenticate("bob@corp.example", ADMIN_PASSWORD) is not None
    world.federate()
    with pytest.raises(AccountError) as refused:
        world.accounts.authenticate("bob@corp.example", ADMIN_PASSWORD)
    assert refused.value.status == 403 and "identity provider" in refused.value.message
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "bob@corp.example", "bob-pw")
        assert answer.status_code == 303, answer.text
        assert world.session_developer(browser) == bob.developer_id
    linked = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert linked is not None and linked.developer_id == bob.developer_id
    world.accounts.set_idp(world.org_id, None)  # even with the provider gone, no password
    assert world.accounts.authenticate("bob@corp.example", ADMIN_PASSWORD) is None


async def test_a_subject_is_believed_only_at_the_provider_that_gave_it(
    world: TrustWorld,
) -> None:
    """Corp moves its sign-in to another provider. A subject is unique only at its issuer:
    the new provider's ``u-bob`` may be someone else, so it does not sign in as Bob; Bob is
    linked again through the new provider by the address it vouches for."""
    world.federate()
    async with world.browser() as browser:
        await world.corporate_sign_in(browser, "bob@corp.example", "bob-pw")
    bob = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert bob is not None
    world.accounts.set_idp(world.org_id, "https://idp.elsewhere.test")
    assert world.accounts.by_external_subject(world.org_id, "u-bob") is None
    stranger = world.accounts.create_federated(world.org_id, "u-bob", "mallory@corp.example",
                                               "Mallory")
    assert stranger.developer_id != bob.developer_id
    found = world.accounts.by_external_subject(world.org_id, "u-bob")
    assert found is not None and found.developer_id == stranger.developer_id
    again = world.accounts.create_federated(world.org_id, "b-7", "bob@corp.example", "Bob")
    assert again.developer_id == bob.developer_id
    assert [m.email for m in world.accounts.members(world.org_id)] == [
        "admin@corp.example", "bob@corp.example", "mallory@corp.example"]


async def test_the_orphan_report_lists_owners_the_provider_does_not_know(
    world: TrustWorld,
) -> None:
    """Once Corp signs in through its provider, an application of a member the provider has
    not linked (Bob, who joined by password) is orphan access: when Bob leaves, Corp's SCIM
    and RISC cannot deprovision him and his application keeps answering. His first corporate
    sign-in takes it off the report; Corp moving to another provider puts it back."""
    invitation = world.accounts.invite(world.org_id, by=world.admin.developer_id)
    bob = world.accounts.join(world.org_id, "bob@corp.example", "Bob", ADMIN_PASSWORD,
                              invitation=invitation)
    purposes = ["dpv:FraudPreventionAndDetection"]
    bobs, _ = world.accounts.create_application(bob, "Bob's app", ["sim-swap"], purposes, None)

    def listed() -> list[tuple[str, str]]:
        return [(o.application.client_id, o.reason) for o in world.accounts.orphans(30)]

    assert listed() == [], "a password organisation's active members are looked after"
    world.federate()
    assert listed() == [(bobs.client_id, "owner outside the identity provider")]
    async with world.browser() as browser:
        answer = await world.corporate_sign_in(browser, "bob@corp.example", "bob-pw")
        assert answer.status_code == 303, answer.text
    assert listed() == []
    world.accounts.set_idp(world.org_id, "https://idp.elsewhere.test")
    assert listed() == [(bobs.client_id, "owner outside the identity provider")]
    url = f"{PORTAL}/portal/admin/orphans"
    admin = {"Authorization": f"Bearer {world.accounts.identity.config.admin_secret}"}
    async with world.browser() as http:
        report = (await http.get(url, params={"days": 30, "format": "json"},
                                 headers=admin)).json()
        page = await http.get(f"{PORTAL}/portal/admin", headers=admin)
    assert [(r["client_id"], r["reason"]) for r in report["applications"]] == [
        (bobs.client_id, "owner outside the identity provider")]
    assert page.status_code == 200 and "owner outside the identity provider" in page.text
    world.accounts.set_idp(world.org_id, None)
    assert listed() == [], "signing in by password again, Corp's members are its own to watch"
    world.federate()
    assert listed() == [], "back at the provider that linked him, Bob is known to it"


async def test_stopping_corporate_sign_in_gives_each_passwordless_member_a_link(
    world: TrustWorld,
) -> None:
    """Bob and Eve only ever signed in through Corp's provider, so they have no portal
    password. When the admin stops corporate sign-in, the page shows the admin a link for
    each (none for the admin, who has a password): before, nothing let them in again. A link
    sets a strong password once; a weak one spends nothing."""
    world.federate()
    for login, password in (("u-bob", "bob-pw"), ("u-eve", "eve-pw")):
        async with world.browser() as browser:
            assert (await world.corporate_sign_in(browser, login, password)).status_code == 303
    async with world.signed_in(world.admin) as admin:
        page = await admin.post(f"{PORTAL}/portal/organisation/trust/remove",
                                data={"csrf": world.csrf(admin)})
    assert page.status_code == 200 and "Corporate sign-in is off." in page.text
    links = dict(re.findall(r"&lt;([^&]+)&gt;</td><td><code class=\"password-link\">([^<]+)<",
                            page.text))
    assert sorted(links) == ["bob@corp.example", "eve@corp.example"]
    new_password = "bobs own password 2026"
    async with world.browser() as bob:
        form = await bob.get(links["bob@corp.example"].replace("&amp;", "&"))
        assert form.status_code == 200 and 'id="link-email">bob@corp.example<' in form.text
        assert 'id="signed-in-as"' not in form.text, "the visitor is not shown as signed in"
        code = re.search(r'name="code" value="([^"]+)"', form.text)
        assert code is not None
        weak = await bob.post(f"{PORTAL}/portal/password", data={
            "csrf": csrf_of(form.text), "code": code.group(1), "password": "short"})
        assert weak.status_code == 400 and "password" in weak.text
        assert world.session_developer(bob) is None
        done = await bob.post(f"{PORTAL}/portal/password", data={
            "csrf": csrf_of(form.text), "code": code.group(1), "password": new_password})
        assert done.status_code == 303 and done.headers["location"] == "/portal"
        signed_in = world.session_developer(bob)
        again = await bob.post(f"{PORTAL}/portal/password", data={
            "csrf": world.csrf(bob), "code": code.group(1), "password": "someone else's 2026"})
        assert again.status_code == 400 and "unknown, used or expired" in again.text
    found = world.accounts.authenticate("bob@corp.example", new_password)
    assert found is not None and found.developer_id == signed_in
    assert world.accounts.authenticate("bob@corp.example", "someone else's 2026") is None


async def test_a_password_link_is_void_once_federated_again_expired_or_its_member_gone(
    world: TrustWorld, clock: FakeClock,
) -> None:
    """Federating again voids every link (the provider decides who signs in again); so does
    a week, or the member's deprovisioning; a deactivated member gets no new link."""
    world.federate()
    bob = world.accounts.create_federated(world.org_id, "u-bob", "bob@corp.example", "Bob")
    eve = world.accounts.create_federated(world.org_id, "u-eve", "eve@corp.example", "Eve")
    links = PasswordLinks(world.accounts.db, world.accounts, clock)
    first = {link.developer.email: link.code for link in links.stop_federating(world.org_id)}
    assert links.holder(first["bob@corp.example"]).developer_id == bob.developer_id
    world.federate()
    with pytest.raises(AccountError, match="identity provider again"):
        links.redeem(first["bob@corp.example"], "a strong enough password")
    second = {link.developer.email: link.code for link in links.stop_federating(world.org_id)}
    world.accounts.deactivate(eve.developer_id)  # spends her link, should she come back
    with pytest.raises(AccountError, match="unknown, used or expired"):
        links.redeem(second["eve@corp.example"], "a strong enough password")
    world.accounts.reactivate(eve.developer_id)
    with pytest.raises(AccountError, match="unknown, used or expired"):
        links.redeem(second["eve@corp.example"], "a strong enough password")
    world.accounts.deactivate(eve.developer_id)
    clock.advance(LINK_LIFETIME)
    with pytest.raises(AccountError, match="unknown, used or expired"):
        links.redeem(second["bob@corp.example"], "a strong enough password")
    assert world.accounts.authenticate("bob@corp.example", "a strong enough password") is None
    world.federate()
    assert [link.developer.email for link in links.stop_federating(world.org_id)] == [
        "bob@corp.example"], "the deactivated Eve gets no link"


async def test_stopping_or_changing_corporate_sign_in_ends_the_sessions_it_started(
    world: TrustWorld,
) -> None:
    """Bob and Eve are signed in through Corp's provider; the admin is signed in too. Stopping
    corporate sign-in signs Bob and Eve out (the provider's SCIM and RISC no longer reach
    them) but not the admin handing out the links, nor a password session; moving to another
    provider ends the old one's sessions the same way. Before, their sessions lasted the
    rest of their working day."""
    world.federate()
    browsers = {}
    for login, password in (("u-bob", "bob-pw"), ("u-eve", "eve-pw")):
        browser = world.browser()
        assert (await world.corporate_sign_in(browser, login, password)).status_code == 303
        assert world.session_developer(browser) is not None
        browsers[login] = browser
    admin = world.signed_in(world.admin)
    try:
        page = await admin.post(f"{PORTAL}/portal/organisation/trust/remove",
                                data={"csrf": world.csrf(admin)})
        assert page.status_code == 200 and "Corporate sign-in is off." in page.text
        assert "Ended 2 portal sessions started by a provider no longer trusted." in page.text
        for login, browser in browsers.items():
            assert world.session_developer(browser) is None, login
            home = await browser.get(f"{PORTAL}/portal")
            assert home.status_code == 303 and "sign-in" in home.headers["location"], login
        assert world.session_developer(admin) == world.admin.developer_id
        assert (await admin.get(f"{PORTAL}/portal")).status_code == 200

        world.federate()
        bob = world.browser()
        assert (await world.corporate_sign_in(bob, "u-bob", "bob-pw")).status_code == 303
        world.accounts.set_idp(world.org_id, "https://idp.elsewhere.test")
        assert world.guard.sessions.end_vouched_elsewhere(
            world.org_id, "https://idp.elsewhere.test") == 1
        assert world.session_developer(bob) is None
        assert world.session_developer(admin) == world.admin.developer_id, "a password session"
        await bob.aclose()
    finally:
        await admin.aclose()
        for browser in browsers.values():
            await browser.aclose()


async def test_a_corporate_sign_in_finishing_after_the_provider_was_dropped_starts_no_session(
    world: TrustWorld,
) -> None:
    """A callback that found Bob while Corp still trusted its provider, but writes his session
    after the admin stopped corporate sign-in, is refused: no session outlives the trust."""
    world.federate()
    bob = world.accounts.create_federated(world.org_id, "u-bob", "bob@corp.example", "Bob")
    world.accounts.set_idp(world.org_id, None)
    with pytest.raises(AccountError, match="no longer signs in"):
        world.accounts.create_federated(world.org_id, "u-eve", "eve@corp.example", "Eve")
    assert world.accounts.by_email("eve@corp.example") is None, "no member without a way in"
    with pytest.raises(IssuerNotTrustedError):
        world.guard.sessions.start(bob.developer_id, IDP)
    world.accounts.set_idp(world.org_id, "https://idp.elsewhere.test")
    with pytest.raises(IssuerNotTrustedError):
        world.guard.sessions.start(bob.developer_id, IDP)
    world.accounts.set_idp(world.org_id, IDP)
    assert world.guard.sessions.start(bob.developer_id, IDP).developer_id == bob.developer_id


async def test_an_earlier_stops_links_die_with_the_next_stop(
    world: TrustWorld, clock: FakeClock,
) -> None:
    """Stop, federate again, stop again within the week: the first stop's links stay void
    (whoever saw them, an admin the provider has since deprovisioned, say, must not set a
    member's password). A second click on stop gives no second set of links. Before, the
    first links worked again once the organisation signed in with passwords."""
    world.federate()
    world.accounts.create_federated(world.org_id, "u-bob", "bob@corp.example", "Bob")
    links = PasswordLinks(world.accounts.db, world.accounts, clock)
    (first,) = links.stop_federating(world.org_id)
    world.federate()
    (second,) = links.stop_federating(world.org_id)
    assert links.stop_federating(world.org_id) == [], "already off: no new links"
    with pytest.raises(AccountError, match="unknown, used or expired"):
        links.redeem(first.code, "an old link's password 2026")
    assert links.redeem(second.code, "the new link's password 2026").email == "bob@corp.example"
    assert world.accounts.authenticate("bob@corp.example", "the new link's password 2026")


@pytest.mark.parametrize("meanwhile", ["deactivated", "federated"])
async def test_a_link_whose_member_or_organisation_changed_while_hashing_sets_nothing(
    world: TrustWorld, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, meanwhile: str,
) -> None:
    """The link is checked, then the password hashed (tens of milliseconds), then spent: a
    member deactivated, or an organisation federated again, in between gets no password.
    Before, the spend and the password did not look again."""
    world.federate()
    bob = world.accounts.create_federated(world.org_id, "u-bob", "bob@corp.example", "Bob")
    links = PasswordLinks(world.accounts.db, world.accounts, clock)
    (link,) = links.stop_federating(world.org_id)
    real_hash = accounts_module.hash_password

    def hash_while_it_changes(password: str) -> str:
        if meanwhile == "deactivated":
            world.accounts.deactivate(bob.developer_id)
        else:
            world.federate()
        return real_hash(password)

    monkeypatch.setattr(accounts_module, "hash_password", hash_while_it_changes)
    with pytest.raises(AccountError, match="changed, meanwhile"):
        links.redeem(link.code, "a strong enough password")
    row = world.accounts.db.one("SELECT password_hash FROM portal_developers"
                                " WHERE developer_id = ?", (bob.developer_id,))
    assert row is not None and row["password_hash"] is None
