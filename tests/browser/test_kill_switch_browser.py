"""The kill switch in a real browser: a company disables an employee, and everything they hold
stops at once.

An operator and a corporate identity provider each run under uvicorn on a loopback port. In
Chromium, the organisation's admin signs up, names the provider on the trust page and takes a
SCIM token; the provider is told the portal's redirect URI and where to push SCIM and RISC.
An employee signs in through the provider's own login form, creates an application with a
generated key and reads the private key off the page; the test uses it to get a token over
real HTTP and make a SIM swap check. Then the provider disables the employee: the same
token's next call is refused with a CAMARA body, a new token is refused, the employee's next
page load is sent to sign-in, and the admin, in another tab, sees the application suspended.

The admin browses the portal as ``localhost`` and the employee as ``127.0.0.1`` (the portal's
configured origin, where the provider sends them back), so one Chromium holds two separate
portal sessions. Screenshots go to ``$OGSIM_SCREENSHOTS`` when it is set
(``OGSIM_SCREENSHOTS=docs/screenshots`` refreshes the README's), else to ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from joserfc.jwk import ECKey

from federation.client import ApplicationClient, OAuthClientError
from federation.corporate_idp import CorporateIdp, create_corporate_idp_app, example_corporate_idp

from .conftest import WAIT, Served, fill, screenshot_folder, wait_for

IDP_ADMIN = {"Authorization": "Bearer idp-admin-secret"}
OPERATOR_ADMIN = {"Authorization": "Bearer admin-secret"}
PORTAL_CLIENT_ID = "ogsim-portal"
PORTAL_CLIENT_SECRET = "corp-issued-secret-0123456789"
ADMIN_PASSWORD = "correct horse battery staple 42"
FRAUD = "dpv:FraudPreventionAndDetection"
SCOPE = f"sim-swap:check {FRAUD}"


@dataclass
class ServedIdp:
    """The demo company's identity provider served at ``base`` (http://127.0.0.1:port)."""

    idp: CorporateIdp
    base: str


@pytest.fixture
def corporate_idp() -> Iterator[ServedIdp]:
    """``example_corporate_idp`` (employees ``ada`` and ``bob``) under uvicorn in a thread.

    It reaches the portal's SCIM and RISC receivers over real HTTP, with a client that keeps
    no connection between requests (each is made in the server's own event loop)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{int(sock.getsockname()[1])}"
    http = httpx.AsyncClient(timeout=WAIT, limits=httpx.Limits(max_keepalive_connections=0))
    idp = example_corporate_idp(base, admin_secret="idp-admin-secret", http=http)
    server = uvicorn.Server(uvicorn.Config(create_corporate_idp_app(idp), log_level="warning",
                                          lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the corporate identity provider to start")
    try:
        yield ServedIdp(idp, base)
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
        asyncio.run(http.aclose())


def _text(chrome: Any, element_id: str) -> str:
    """The element's text, or "" while the page that has it is not (yet) shown."""
    from selenium.webdriver.common.by import By

    found = chrome.find_elements(By.ID, element_id)
    return str(found[0].text) if found else ""


def _camara_refusal(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (401, 403), answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"status", "code", "message"} and body["status"] == answer.status_code
    return body


async def test_the_company_disables_an_employee_and_everything_they_hold_stops(
    served: Served, corporate_idp: ServedIdp, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    shots = screenshot_folder(tmp_path)
    idp_base = corporate_idp.base
    portal = served.base  # the portal's origin: where the provider sends employees back
    admin_portal = portal.replace("127.0.0.1", "localhost")  # the admin's own cookie jar
    number = served.operator.subscribers.test_number("approves")
    chrome.set_window_size(1200, 900)

    async with httpx.AsyncClient(timeout=WAIT) as http:
        # -- the organisation's admin: sign up, name the provider, take a SCIM token --------
        admin_tab = chrome.current_window_handle
        chrome.get(f"{admin_portal}/portal/sign-up")
        fill(chrome, "organisation", "Corp Ltd")
        fill(chrome, "name", "Ingrid IT-Admin")
        fill(chrome, "email", "it@corp.example")
        fill(chrome, "password", ADMIN_PASSWORD)
        chrome.find_element(By.ID, "sign-up-submit").click()
        wait_for(lambda: "Ingrid" in _text(chrome, "signed-in-as"), "the admin's home page")

        chrome.get(f"{admin_portal}/portal/organisation/trust")
        wait_for(lambda: bool(chrome.find_elements(By.ID, "not-federated")), "the trust page")
        redirect_uri = _text(chrome, "redirect-uri")
        assert redirect_uri == f"{portal}/portal/sign-in/corporate/callback"
        registered = await http.post(f"{idp_base}/admin/clients", headers=IDP_ADMIN, json={
            "client_id": PORTAL_CLIENT_ID, "client_secret": PORTAL_CLIENT_SECRET,
            "redirect_uris": [redirect_uri]})
        assert registered.status_code == 201, registered.text
        fill(chrome, "issuer", idp_base)
        fill(chrome, "client_id", PORTAL_CLIENT_ID)
        fill(chrome, "client_secret", PORTAL_CLIENT_SECRET)
        chrome.find_element(By.ID, "save-idp").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "federated")),
                 "the trust page naming the provider")
        chrome.find_element(By.ID, "new-scim-token").click()
        wait_for(lambda: _text(chrome, "scim-token").startswith("scim_"),
                 "the SCIM token, shown once")
        receivers = [
            {"kind": "scim", "url": _text(chrome, "scim-base"),
             "token": _text(chrome, "scim-token")},
            {"kind": "risc", "url": _text(chrome, "risc-endpoint"),
             "audience": PORTAL_CLIENT_ID},
        ]
        assert [r["url"] for r in receivers] == [f"{portal}/scim/v2",
                                                 f"{portal}/portal/risc/events"]
        for receiver in receivers:
            added = await http.post(f"{idp_base}/admin/receivers", headers=IDP_ADMIN,
                                    json=receiver)
            assert added.status_code == 201, added.text
        sign_in_link = chrome.find_element(By.ID, "sign-in-link").get_attribute("href")
        assert sign_in_link.startswith(f"{portal}/portal/sign-in/corporate?org=")

        # -- the employee: corporate sign-in, an application with a generated key ----------
        chrome.switch_to.new_window("tab")
        employee_tab = chrome.current_window_handle
        chrome.get(sign_in_link)
        wait_for(lambda: chrome.current_url.startswith(f"{idp_base}/authorize")
                 and bool(chrome.find_elements(By.ID, "username")), "the provider's login form")
        assert PORTAL_CLIENT_ID in chrome.page_source
        fill(chrome, "username", "bob@corp.example")
        fill(chrome, "password", "bob-password")
        chrome.save_screenshot(str(shots / "portal-corporate-sign-in.png"))
        chrome.find_element(By.ID, "sign-in").click()
        wait_for(lambda: "Bob Builder" in _text(chrome, "signed-in-as"),
                 "the portal, signed in with the company account")
        assert chrome.current_url == f"{portal}/portal"
        assert "Corp Ltd" in _text(chrome, "signed-in-as")

        chrome.find_element(By.ID, "new-application").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "new-application-form")),
                 "the new application form")
        fill(chrome, "name", "Bob's fraud check")
        chrome.find_element(By.ID, "api-sim-swap").click()
        chrome.find_element(By.ID, f"purpose-{FRAUD.replace(':', '-')}").click()
        chrome.find_element(By.ID, "key-generate").click()
        chrome.find_element(By.ID, "create-application").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "private-jwk")),
                 "the one-time key page")
        private = json.loads(chrome.find_element(By.ID, "private-jwk").get_attribute("value"))
        client_id = _text(chrome, "client-id")
        assert private["kty"] == "EC" and "d" in private and client_id
        chrome.find_element(By.ID, "continue").click()
        wait_for(lambda: _text(chrome, "status") == "active", "the application's page")
        application_url = chrome.current_url
        assert application_url == f"{portal}/portal/applications/{client_id}"

        # -- the application, run with the key read off the page, over real HTTP ------------
        key = ECKey.import_key(private)
        application = await ApplicationClient.discover(client_id, key,
                                                       served.operator.issuer, http)
        access = (await application.client_credentials(SCOPE))["access_token"]

        async def check() -> httpx.Response:
            return await http.post(f"{portal}/sim-swap/v2/check",
                                   json={"phoneNumber": number, "maxAge": 240},
                                   headers={"Authorization": f"Bearer {access}"})

        answered = await check()
        assert answered.status_code == 200, answered.text
        assert isinstance(answered.json()["swapped"], bool)

        # The admin sees the employee's application, active, in another tab.
        chrome.switch_to.window(admin_tab)
        chrome.get(f"{admin_portal}/portal")
        wait_for(lambda: bool(chrome.find_elements(By.ID, "applications")),
                 "the organisation's applications")
        row = chrome.find_element(By.ID, "applications").text
        assert "Bob's fraud check" in row and "active" in row and "Bob Builder" in row

        # -- the company disables Bob: SCIM and RISC reach the portal ----------------------
        disabled = await http.post(f"{idp_base}/admin/users/bob/disable", headers=IDP_ADMIN)
        assert disabled.status_code == 200, disabled.text
        assert [(d["kind"], d["status"]) for d in disabled.json()["deliveries"]] == [
            ("scim", 200), ("risc", 202)]

        # The very next call with the same token is refused...
        refused = _camara_refusal(await check())
        assert (refused["status"], refused["code"]) == (401, "UNAUTHENTICATED"), refused
        # ...and the identity server gives no new token.
        with pytest.raises(OAuthClientError) as no_token:
            await application.client_credentials(SCOPE)
        assert no_token.value.error == "invalid_client"

        # Bob's next page load is sent to sign-in: his session ended with his account.
        chrome.switch_to.window(employee_tab)
        chrome.get(application_url)
        wait_for(lambda: chrome.current_url == f"{portal}/portal/sign-in",
                 "the employee's page load to be sent to sign-in")
        assert not chrome.find_elements(By.ID, "signed-in-as")
        # Nor can he come back through the provider.
        chrome.get(sign_in_link)
        wait_for(lambda: bool(chrome.find_elements(By.ID, "username")),
                 "the provider's login form again")
        fill(chrome, "username", "bob@corp.example")
        fill(chrome, "password", "bob-password")
        chrome.find_element(By.ID, "sign-in").click()
        wait_for(lambda: "disabled" in _text(chrome, "error"), "the provider's refusal")
        chrome.close()

        # The admin sees the application suspended and Bob deactivated.
        chrome.switch_to.window(admin_tab)
        chrome.get(f"{admin_portal}/portal/applications/{client_id}")
        wait_for(lambda: _text(chrome, "status") == "suspended",
                 "the application page showing it suspended")
        assert not chrome.find_elements(By.ID, "rotate-key"), "a suspended key cannot rotate"
        chrome.get(f"{admin_portal}/portal")
        wait_for(lambda: bool(chrome.find_elements(By.ID, "applications")),
                 "the organisation's applications")
        status = chrome.find_element(By.CSS_SELECTOR, "#applications td.status-suspended")
        assert status.text == "suspended"
        members = _text(chrome, "members")
        assert "Bob Builder" in members and "deactivated" in members
        chrome.save_screenshot(str(shots / "portal-kill-switch.png"))

        # The operator's orphan report lists it, owner deactivated.
        report = await http.get(f"{portal}/portal/admin/orphans",
                                params={"days": 30, "format": "json"}, headers=OPERATOR_ADMIN)
        assert report.status_code == 200, report.text
        assert [(r["client_id"], r["reason"], r["status"])
                for r in report.json()["applications"]] == [
            (client_id, "owner deactivated", "suspended")]
