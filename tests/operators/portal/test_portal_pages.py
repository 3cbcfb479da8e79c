"""The portal's pages in a browser's shoes: sign-up, sign-in, sign-out, CSRF, throttling,
another organisation's application, bad keys, and the admin pages."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path
from urllib.parse import urlencode

from joserfc.jwk import ECKey, RSAKey

from federation.config import default_federation
from federation.federation import quick_consent, start_federation
from tests.operators.portal.conftest import (
    ADMIN_SECRET,
    FORM,
    FRAUD,
    PASSWORD,
    Browser,
    Portal,
    client_id_of,
)

ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_SECRET}".encode()).decode()}


async def test_sign_up_signs_in_and_the_session_cookie_is_protected(portal: Portal) -> None:
    browser = portal.browser()
    assert (await browser.get("/portal")).headers["location"] == "/portal/sign-in"
    signed_up = await browser.sign_up("ada@example.com")
    assert signed_up.status_code == 303 and signed_up.headers["location"] == "/portal"
    cookie = signed_up.headers["set-cookie"].lower()
    assert "ogsim_dev=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "path=/portal" in cookie
    home = await browser.get("/portal")
    assert home.status_code == 200
    assert "Ada Lovelace" in home.text and "Acme Fraud Labs" in home.text
    assert "content-security-policy" in home.headers


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(
        portal: Portal, developer: Browser) -> None:
    copied = dict(developer.http.cookies)
    assert (await developer.get("/portal")).status_code == 200
    out = await developer.sign_out()
    assert out.status_code == 303 and out.headers["location"] == "/portal/sign-in"
    assert (await developer.get("/portal")).status_code == 303
    replayed = portal.http()
    replayed.cookies.update(copied)
    answer = await replayed.get("/portal")
    assert answer.status_code == 303, "a signed cookie whose session ended is worth nothing"


async def test_sign_in_with_the_right_and_the_wrong_password(
        portal: Portal, developer: Browser) -> None:
    await developer.sign_out()
    browser = portal.browser()
    wrong = await browser.sign_in("ada@example.com", "not the password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    unknown = await browser.sign_in("nobody@example.com")
    assert unknown.status_code == 401 and "Wrong email or password" in unknown.text
    right = await browser.sign_in("ADA@example.com", PASSWORD)
    assert right.status_code == 303 and right.headers["location"] == "/portal"
    assert (await browser.get("/portal")).status_code == 200


async def test_sign_in_is_throttled_with_retry_after_until_the_window_passes(
        portal: Portal, developer: Browser) -> None:
    browser = portal.browser("198.51.100.77")
    for _ in range(5):
        assert (await browser.sign_in("ada@example.com", "guess guess")).status_code == 401
    blocked = await browser.sign_in("ada@example.com", PASSWORD)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert int(blocked.headers["retry-after"]) == 900
    elsewhere = portal.browser("198.51.100.78")
    assert (await elsewhere.sign_in("ada@example.com", PASSWORD)).status_code == 429, \
        "the email is throttled from every address"
    portal.clock.advance(901)
    assert (await browser.sign_in("ada@example.com", PASSWORD)).status_code == 303


async def test_the_right_password_of_an_organisation_on_its_provider_is_no_failed_guess(
        portal: Portal, developer: Browser) -> None:
    """A member whose organisation has moved to corporate sign-in types the password they
    had: the page points them there, and however often they do, it is never counted as a
    guess (it was, and after five they were refused their own provider's hint with 429)."""
    ada = portal.parts.accounts.by_email("ada@example.com")
    assert ada is not None
    portal.parts.accounts.set_idp(ada.org_id, "https://idp.acme.example")
    browser = portal.browser("198.51.100.79")
    for _ in range(7):
        answer = await browser.sign_in("ada@example.com", PASSWORD)
        assert answer.status_code == 403 and "use its corporate sign-in" in answer.text
        assert 'value="ada@example.com"' in answer.text
    assert (await browser.get("/portal")).headers["location"] == "/portal/sign-in"
    for _ in range(5):
        assert (await browser.sign_in("ada@example.com", "guess guess")).status_code == 401
    assert (await browser.sign_in("ada@example.com", PASSWORD)).status_code == 429, (
        "wrong passwords are still counted")


async def test_forms_without_the_session_csrf_token_are_refused(
        portal: Portal, developer: Browser) -> None:
    fields = {"name": "X", "api:sim-swap": "on", "key": "generate"}
    missing = await developer.post("/portal/applications", fields, csrf_from=None)
    assert missing.status_code == 403 and "expired or did not come from this portal" in missing.text
    other = portal.browser()
    foreign = await other.csrf("/portal/sign-up")
    forged = await developer.http.post("/portal/applications",
                                       content=urlencode({**fields, "csrf": foreign}),
                                       headers=FORM)
    assert forged.status_code == 403
    no_cookie = portal.http()
    anonymous = await no_cookie.post("/portal/sign-in", content=urlencode(
        {"email": "ada@example.com", "password": PASSWORD, "csrf": foreign}), headers=FORM)
    assert anonymous.status_code == 403
    assert (await developer.get("/portal")).text.count("Fraud checks") == 0


async def test_bad_sign_up_forms_name_the_field(portal: Portal, developer: Browser) -> None:
    browser = portal.browser()
    weak = await browser.sign_up("grace@example.com", password="short")
    assert weak.status_code == 400 and "password: use at least 10 characters" in weak.text
    assert 'value="grace@example.com"' in weak.text and 'value="short"' not in weak.text
    duplicate = await browser.sign_up("ADA@example.com")
    assert duplicate.status_code == 409 and "email: an account with this address" in duplicate.text
    garbage = await browser.http.post("/portal/sign-up", content=b"\xff\xfe",
                                      headers=FORM)
    assert garbage.status_code == 400
    json_body = await browser.http.post("/portal/sign-up", json={"email": "x"})
    assert json_body.status_code == 400 and "takes a form" in json_body.text
    repeated = await browser.http.post("/portal/sign-up", content="csrf=a&csrf=b", headers=FORM)
    assert repeated.status_code == 400


async def test_another_organisation_gets_not_found_for_an_application(
        portal: Portal, developer: Browser) -> None:
    created = await developer.create_application()
    client_id = client_id_of(created.text)
    mine = await developer.get(f"/portal/applications/{client_id}")
    assert mine.status_code == 200 and client_id in mine.text
    eve = portal.browser()
    assert (await eve.sign_up("eve@example.com", organisation="Eve Corp")).status_code == 303
    assert (await eve.get(f"/portal/applications/{client_id}")).status_code == 404
    assert client_id not in (await eve.get("/portal")).text
    for action in ("disable", "production", "rotate", "plans"):
        answer = await eve.post(f"/portal/applications/{client_id}/{action}",
                                {"key": "generate", "api": "sim-swap", "plan": "gold"},
                                csrf_from="/portal")
        assert answer.status_code == 404, action
    application = portal.parts.accounts.application(client_id)
    client = portal.operator.identity.clients.get(client_id)
    assert application is not None and application.status == "active"
    assert client is not None and not client.disabled
    assert (await eve.get("/portal/applications/nope")).status_code == 404


async def test_a_bad_jwk_is_refused_with_a_clear_message(portal: Portal,
                                                        developer: Browser) -> None:
    not_json = await developer.create_application(jwk="{not json")
    assert not_json.status_code == 400 and "jwk: not JSON" in not_json.text
    nested = await developer.create_application(jwk="[" * 5000)  # past json's depth: was a 500
    assert nested.status_code == 400 and "jwk: not JSON" in nested.text
    private = await developer.create_application(jwk=json.dumps(
        {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"}))
    assert private.status_code == 400 and "private" in private.text
    broken = await developer.create_application(jwk=json.dumps(
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"}))
    assert broken.status_code == 400 and "jwk:" in broken.text
    symmetric = await developer.create_application(jwk=json.dumps({"kty": "oct", "k": "AAAA"}))
    assert symmetric.status_code == 400
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns of the small key it is asked to make
        small = RSAKey.generate_key(1024).as_dict(private=False)
    weak = await developer.create_application(jwk=json.dumps(small))
    assert weak.status_code == 400 and "at least 2048 bits" in weak.text
    mislabelled = await developer.create_application(jwk=json.dumps(
        {**ECKey.generate_key("P-256").as_dict(private=False), "alg": "HS256"}))
    assert mislabelled.status_code == 400 and "alg" in mislabelled.text
    empty = await developer.create_application(jwk="")
    assert empty.status_code == 400 and "jwk: paste your public key" in empty.text
    assert portal.parts.accounts.applications(
        portal.parts.accounts.by_email("ada@example.com").org_id) == []  # type: ignore[union-attr]


async def test_admin_pages_need_the_admin_credential(portal: Portal,
                                                     developer: Browser) -> None:
    asked = await developer.get("/portal/admin")
    assert asked.status_code == 401
    assert asked.headers["www-authenticate"].startswith("Basic")
    wrong = await developer.get("/portal/admin", headers={
        "Authorization": "Basic " + base64.b64encode(b"admin:wrong-secret").decode()})
    assert wrong.status_code == 401
    created = await developer.create_application()
    client_id = client_id_of(created.text)
    assert (await developer.confirm_email(portal, "ada@example.com")).status_code == 200
    asked_production = await developer.post(f"/portal/applications/{client_id}/production",
                                            csrf_from=f"/portal/applications/{client_id}")
    assert asked_production.status_code == 303
    # the redirect names a notice by its key; the page shows the portal's own words for it
    told = await developer.get(asked_production.headers["location"])
    assert 'id="notice"' in told.text and "Production requested." in told.text
    spoofed = await developer.get(f"/portal/applications/{client_id}",
                                  params={"notice": "Your key leaked: mail it to evil@example"})
    assert "evil@example" not in spoofed.text
    refused = await developer.post(f"/portal/admin/production/{client_id}/approve",
                                   csrf_from="/portal")
    assert refused.status_code == 401
    admin = portal.browser()
    page = await admin.get("/portal/admin", headers=ADMIN)
    assert page.status_code == 200 and client_id in page.text
    approved = await admin.post(f"/portal/admin/production/{client_id}/approve",
                                csrf_from=None, headers=ADMIN)
    assert approved.status_code == 403, "an admin's form needs its CSRF token too"
    token = await admin.http.get("/portal/admin", headers=ADMIN)
    csrf = token.text.split('name="csrf" value="')[1].split('"')[0]
    approved = await admin.http.post(f"/portal/admin/production/{client_id}/approve",
                                     content=urlencode({"csrf": csrf}),
                                     headers={**FORM, **ADMIN})
    assert approved.status_code == 303
    client = portal.operator.identity.clients.get(client_id)
    assert client is not None and client.environment == "production"
    shown = await developer.get(f"/portal/applications/{client_id}")
    assert 'id="environment">production' in shown.text


async def test_the_orphan_report_shows_a_deactivated_owner(portal: Portal,
                                                           developer: Browser) -> None:
    created = await developer.create_application()
    client_id = client_id_of(created.text)
    admin = portal.browser()
    before = await admin.get("/portal/admin?days=30", headers=ADMIN)
    assert client_id not in before.text
    ada = portal.parts.accounts.by_email("ada@example.com")
    assert ada is not None
    portal.parts.deactivate(ada.developer_id)
    after = await admin.get("/portal/admin?days=30", headers=ADMIN)
    assert client_id in after.text and "owner deactivated" in after.text
    assert (await developer.get("/portal")).status_code == 303, "signed out everywhere"
    bad_days = await admin.get("/portal/admin?days=nan", headers=ADMIN)
    assert bad_days.status_code == 400 and "days:" in bad_days.text


async def test_the_aggregator_serves_the_portal_with_its_own_identity_server(
        tmp_path: Path) -> None:
    fed = await start_federation(quick_consent(default_federation()), tmp_path, probes=False)
    try:
        hub = fed.aggregator.api_root
        browser = Browser(fed.http)
        signed_up = await browser.post(
            f"{hub}/portal/sign-up", {"organisation": "Hub users", "name": "Ada",
                                      "email": "ada@example.com", "password": PASSWORD},
            csrf_from=f"{hub}/portal/sign-up")
        assert signed_up.status_code == 303, signed_up.text
        created = await browser.post(
            f"{hub}/portal/applications",
            {"name": "Via the hub", "api:sim-swap": "on", f"purpose:{FRAUD}": "on",
             "key": "generate"}, csrf_from=f"{hub}/portal/applications/new")
        assert created.status_code == 200, created.text
        client_id = client_id_of(created.text)
        client = fed.aggregator.identity.clients.get(client_id)
        assert client is not None and client.environment == "sandbox"
        page = await fed.http.get(f"{hub}/portal/applications/{client_id}")
        assert page.status_code == 200 and "/static/ogsim.css" in page.text
        assert (await fed.http.get(f"{hub}/static/ogsim.css")).status_code == 200
    finally:
        await fed.stop()


async def test_a_colleague_joins_the_organisation_with_an_invitation_link(
        portal: Portal, developer: Browser) -> None:
    invited = await developer.post("/portal/invitations", csrf_from="/portal")
    assert invited.status_code == 200
    link = invited.text.split('id="invitation-link" class="wide" value="')[1].split('"')[0]
    path = link.removeprefix(portal.operator.api_root).replace("&amp;", "&")
    grace = portal.browser()
    form = await grace.get(path)
    assert form.status_code == 200 and "Acme Fraud Labs" in form.text
    fields = {name: form.text.split(f'name="{name}" value="')[1].split('"')[0]
              for name in ("org", "code")}
    joined = await grace.post("/portal/join", {**fields, "name": "Grace Hopper",
                                               "email": "grace@example.com",
                                               "password": PASSWORD}, csrf_from=path)
    assert joined.status_code == 303, joined.text
    home = await grace.get("/portal")
    assert "Grace Hopper" in home.text and "Ada Lovelace" in home.text
    again = await portal.browser().post("/portal/join", {**fields, "name": "Eve",
                                                         "email": "eve@example.com",
                                                         "password": PASSWORD}, csrf_from=path)
    assert again.status_code == 400 and "unknown, used or expired" in again.text
