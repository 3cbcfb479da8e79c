"""The API console: Swagger UI on the sandbox's CAMARA document, and a token got in the page.

The token endpoint is the console's only write: it needs a session and the form's CSRF token,
and mints tokens only for the developer's own organisation's usable sandbox applications. The
token it gives is an ordinary access token of that application: a SIM swap check of a
documented test number succeeds with it.
"""

from __future__ import annotations

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
from fastapi import FastAPI

from operators.camara import OPERATIONS
from operators.camara.sim_swap import CreateCheckSimSwap
from operators.config import example_operator
from operators.identity.tokens import IssuedToken
from operators.operator import Operator, create_operator_app
from operators.portal.console import (
    BEARER_SCHEME,
    ConsoleRefusal,
    build_console_pages,
    console_document,
    mint_console_token,
)
from operators.portal.developer_portal import DeveloperPortal
from operators.portal.developers import Developer
from tests.browser.conftest import WAIT, chrome, wait_for
from tests.operators.portal.conftest import (
    FORM,
    FRAUD,
    PASSWORD,
    Browser,
    FakeClock,
    Portal,
)

__all__ = ["chrome"]  # a fixture, found by name

TOKEN = "/portal/console/token"


def _serve(portal: Portal) -> FastAPI:
    parts = portal.parts
    router = build_console_pages(parts.host, parts.accounts, parts.guard)
    portal.app.router.routes[:0] = router.routes
    return portal.app


async def _application(portal: Portal, browser: Browser, email: str,
                       **kwargs: Any) -> str:
    created = await browser.create_application(**kwargs)
    assert created.status_code == 200, created.text
    accounts = portal.parts.accounts
    developer = accounts.by_email(email)
    assert developer is not None
    return accounts.applications(developer.org_id)[-1].client_id


async def _token(browser: Browser, client_id: str, purpose: str = "") -> httpx.Response:
    return await browser.post(TOKEN, {"client_id": client_id, "purpose": purpose},
                              csrf_from="/portal/console")


async def _check_sim_swap(portal: Portal, token: str, role: str = "recent-swap"
                          ) -> httpx.Response:
    return await portal.http().post(
        "/sim-swap/v2/check", json={"phoneNumber": portal.test_number(role), "maxAge": 240},
        headers={"authorization": f"Bearer {token}"})


async def test_the_console_needs_a_developer(portal: Portal) -> None:
    _serve(portal)
    page = await portal.browser().get("/portal/console")
    assert page.status_code == 303
    assert page.headers["location"] == "/portal/sign-in"


async def test_the_page_offers_the_own_applications_and_only_local_assets(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    page = await developer.get("/portal/console")
    assert page.status_code == 200, page.text
    assert f'<option value="{client_id}">' in page.text
    assert 'name="csrf"' in page.text
    assert 'src="/static/swagger-ui/swagger-ui-bundle.js"' in page.text
    assert 'src="/static/console.js"' in page.text
    assert f'data-bearer-scheme="{BEARER_SCHEME}"' in page.text
    assert portal.test_number("recent-swap") in page.text
    assert "http" not in page.headers["content-security-policy"].split("form-action")[0]
    for asset in ("/static/console.js", "/static/swagger-ui/swagger-ui-bundle.js",
                  "/static/developer-tools.css"):
        assert (await developer.get(asset)).status_code == 200, asset
    script = (await developer.get("/static/console.js")).text
    assert "preauthorizeApiKey" in script and "validatorUrl: null" in script


async def test_a_developer_without_an_application_is_told_to_create_one(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    page = await developer.get("/portal/console")
    assert 'id="console-no-application"' in page.text
    assert 'id="console-token"' not in page.text


async def test_the_document_is_the_camara_apis_with_a_bearer_scheme(portal: Portal) -> None:
    _serve(portal)
    document = (await portal.browser().get("/portal/console/openapi.json")).json()
    served = portal.parts.host.apis
    expected = {o.template for o in OPERATIONS if o.api in served}
    assert set(document["paths"]) == expected
    assert document["components"]["securitySchemes"][BEARER_SCHEME] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"][BEARER_SCHEME]["description"]}
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["security"] == [{BEARER_SCHEME: []}]
    check = document["paths"]["/sim-swap/v2/check"]["post"]
    assert check["requestBody"]["content"]["application/json"]["schema"]
    assert document["servers"] == [{"url": "/", "description": "sandbox"}]


def test_a_document_without_bodies_gets_them_from_the_table() -> None:
    """The aggregator forwards raw bodies: its own document declares none."""
    bare = {"openapi": "3.1.0", "info": {"version": "1"}, "paths": {
        "/sim-swap/v2/check": {"post": {"operationId": "checkSimSwap", "responses": {}}},
        "/admin/settlement": {"get": {"responses": {}}}}}
    document = console_document(bare, ("sim-swap",), title="hub",
                                api_root="http://hub.example")
    assert set(document["paths"]) == {"/sim-swap/v2/check", "/sim-swap/v2/retrieve-date"}
    body = document["paths"]["/sim-swap/v2/check"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == set(CreateCheckSimSwap.model_json_schema()["properties"])
    for ref in _refs(document["paths"]):
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_the_token_works_for_a_sim_swap_check_of_a_test_number(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    answer = await _token(developer, client_id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["client_id"] == client_id and body["token_type"] == "Bearer"
    assert body["purpose"] == FRAUD and "sim-swap:check" in body["scope"].split()
    claims = portal.operator.identity.verify_access_token(body["access_token"])
    assert claims.client_id == client_id
    call = await _check_sim_swap(portal, body["access_token"])
    assert call.status_code == 200, call.text
    assert call.json() == {"swapped": True}


async def test_a_sandbox_token_reaches_only_test_numbers(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    token = (await _token(developer, client_id)).json()["access_token"]
    someone = next(iter(portal.operator.subscribers.numbers(1)))
    call = await portal.http().post(
        "/sim-swap/v2/check", json={"phoneNumber": someone, "maxAge": 240},
        headers={"authorization": f"Bearer {token}"})
    assert call.status_code == 403, call.text


async def test_no_token_without_a_session(portal: Portal, developer: Browser) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    stranger = portal.browser()
    csrf = await developer.csrf("/portal/console")
    answer = await stranger.http.post(TOKEN, content=f"client_id={client_id}&csrf={csrf}",
                                      headers=FORM)
    assert answer.status_code == 401
    assert answer.json()["error"] == "login_required"


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
async def test_no_token_without_the_forms_csrf(
    portal: Portal, developer: Browser, csrf: str | None
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    form = f"client_id={client_id}" + (f"&csrf={csrf}" if csrf is not None else "")
    answer = await developer.http.post(TOKEN, content=form, headers=FORM)
    assert answer.status_code == 403
    assert answer.json()["error"] == "invalid_request"
    assert "access_token" not in answer.text


async def test_no_token_for_a_body_that_is_not_a_form(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    answer = await developer.http.post(TOKEN, json={"client_id": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


async def test_no_token_for_another_organisations_application(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    theirs = await _application(portal, developer, "ada@example.com")
    mallory = portal.browser("198.51.100.9")
    assert (await mallory.sign_up("mallory@example.org", organisation="Other")).status_code == 303
    answer = await _token(mallory, theirs)
    assert answer.status_code == 404
    assert answer.json()["error"] == "invalid_request"
    assert (await _token(mallory, "no-such-client")).json() == answer.json()


async def test_no_token_for_a_disabled_or_suspended_application(
    portal: Portal, developer: Browser
) -> None:
    """Ada's organisation disabled one application; a colleague who left (the kill switch)
    had created the other, now suspended: neither gets a console token."""
    _serve(portal)
    accounts = portal.parts.accounts
    disabled = await _application(portal, developer, "ada@example.com", name="Old")
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    accounts.disable_application(ada.org_id, disabled)
    bob = accounts.join(ada.org_id, "bob@example.com", "Bob", "another long password",
                        invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    bobs, _ = accounts.create_application(bob, "Bob's", ["sim-swap"], [FRAUD], None)
    assert accounts.deactivate(bob.developer_id) == [bobs.client_id]
    for client_id, word in ((disabled, "disabled"), (bobs.client_id, "suspended")):
        answer = await _token(developer, client_id)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "unauthorized_client"
        assert word in answer.json()["error_description"]
    page = await developer.get("/portal/console")
    assert f'<option value="{disabled}">' not in page.text
    assert f'<option value="{bobs.client_id}">' not in page.text
    assert "Not available here" in page.text


async def test_a_leavers_console_tokens_for_a_colleagues_application_are_revoked(
    portal: Portal, developer: Browser
) -> None:
    """Bob minted a console token for Ada's application (and could have copied it out of the
    page); when Bob leaves, Ada's application stays live, and Bob's token must not."""
    _serve(portal)
    accounts = portal.parts.accounts
    client_id, bob = await _colleague(portal, developer)
    bobs_token = mint_console_token(portal.parts.host, accounts, bob, client_id)["access_token"]
    adas_token = (await _token(developer, client_id)).json()["access_token"]
    for token in (bobs_token, adas_token):
        assert (await _check_sim_swap(portal, token)).status_code == 200
    assert accounts.deactivate(bob.developer_id) == []  # Bob owns no application
    refused = await _check_sim_swap(portal, bobs_token)
    assert refused.status_code == 401, refused.text
    assert (await _check_sim_swap(portal, adas_token)).status_code == 200
    answer = await _token(developer, client_id)  # Ada's application still gets tokens
    assert answer.status_code == 200, answer.text


async def _colleague(portal: Portal, developer: Browser) -> tuple[str, Developer]:
    """Ada's (the ``developer``'s) application, and Bob, who joined her organisation."""
    accounts = portal.parts.accounts
    client_id = await _application(portal, developer, "ada@example.com")
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    bob = accounts.join(ada.org_id, "bob@example.com", "Bob", "another long password",
                        invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    return client_id, bob


async def test_a_console_token_minted_as_its_developer_is_cut_off_is_revoked(
    portal: Portal, developer: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill switch (another data centre, say) lands after the console checked Bob's
    session but before it noted his token: the token is not handed out, and is revoked."""
    _serve(portal)
    accounts = portal.parts.accounts
    client_id, bob = await _colleague(portal, developer)
    identity = portal.parts.host.identity
    original = identity._client_credentials
    minted: list[str] = []

    def meanwhile_bob_leaves(*args: Any, **kwargs: Any) -> IssuedToken:
        issued = original(*args, **kwargs)
        minted.append(issued.access_token)
        accounts.deactivate(bob.developer_id)
        return issued

    monkeypatch.setattr(identity, "_client_credentials", meanwhile_bob_leaves)
    with pytest.raises(ConsoleRefusal) as refused:
        mint_console_token(portal.parts.host, accounts, bob, client_id)
    assert refused.value.status == 403
    assert (await _check_sim_swap(portal, minted[0])).status_code == 401
    monkeypatch.undo()
    answer = await _token(developer, client_id)  # Ada's application is untouched
    assert answer.status_code == 200, answer.text
    assert (await _check_sim_swap(portal, answer.json()["access_token"])).status_code == 200


async def test_a_leavers_console_token_is_revoked_in_its_clock_skew_grace(
    portal: Portal, developer: Browser, clock: FakeClock
) -> None:
    """A token is still accepted for ``clock_skew`` seconds after its ``exp``: the kill
    switch must reach it then too."""
    _serve(portal)
    accounts = portal.parts.accounts
    client_id, bob = await _colleague(portal, developer)
    bobs = mint_console_token(portal.parts.host, accounts, bob, client_id)
    skew = portal.parts.host.config.lifetimes.clock_skew
    assert skew > 1
    clock.advance(bobs["expires_in"] + skew // 2)
    assert (await _check_sim_swap(portal, bobs["access_token"])).status_code == 200
    accounts.deactivate(bob.developer_id)
    assert (await _check_sim_swap(portal, bobs["access_token"])).status_code == 401


async def test_who_minted_an_expired_console_token_is_forgotten(
    portal: Portal, developer: Browser, clock: FakeClock
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    first = await _token(developer, client_id)
    db = portal.parts.accounts.db
    assert db.one("SELECT COUNT(*) AS n FROM portal_console_tokens")["n"] == 1
    clock.advance(first.json()["expires_in"] + portal.parts.host.config.lifetimes.clock_skew + 1)
    assert (await _token(developer, client_id)).status_code == 200
    assert db.one("SELECT COUNT(*) AS n FROM portal_console_tokens")["n"] == 1  # the new one


async def test_a_purpose_the_application_cannot_use_two_legged_is_refused(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    for purpose in ("dpv:ServiceProvision", "dpv:RequestedServiceProvision", "nonsense"):
        answer = await _token(developer, client_id, purpose)
        assert answer.status_code == 400, purpose
        assert answer.json()["error"] == "invalid_scope"


async def test_an_application_with_only_consent_purposes_gets_a_clear_refusal(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com",
                                   purposes=("dpv:ServiceProvision",))
    answer = await _token(developer, client_id)
    assert answer.status_code == 400
    assert "two-legged" in answer.json()["error_description"]



@dataclass
class Loopback:
    operator: Operator
    base: str
    portal: DeveloperPortal


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Loopback]:
    """An operator with the console served by uvicorn on a loopback port (for Chromium)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = example_operator(storage=str(tmp_path / "operator.sqlite3")).model_copy(
        update={"issuer": f"{base}/oauth"})
    operator = Operator.from_config(config)
    app = create_operator_app(operator)
    parts: DeveloperPortal = app.state.developer_portal
    app.router.routes[:0] = build_console_pages(parts.host, parts.accounts, parts.guard).routes
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the operator to start")
    try:
        yield Loopback(operator, base, parts)
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
        operator.close()


def test_try_it_out_in_chromium_with_the_pages_token(loopback: Loopback, chrome: Any) -> None:
    """The page's script gets the token and Swagger UI sends it: a SIM swap check answers."""
    from selenium.webdriver.common.by import By

    base, accounts = loopback.base, loopback.portal.accounts
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    accounts.create_application(ada, "Fraud checks", ["sim-swap"], [FRAUD], None)
    chrome.get(f"{base}/portal/sign-in")
    chrome.find_element(By.NAME, "email").send_keys("ada@example.com")
    chrome.find_element(By.NAME, "password").send_keys(PASSWORD)
    chrome.find_element(By.NAME, "password").submit()
    wait_for(lambda: "/portal/sign-in" not in chrome.current_url, "the sign-in")
    chrome.get(f"{base}/portal/console")
    root = chrome.find_element(By.ID, "swagger-ui")
    wait_for(lambda: root.get_attribute("data-loaded") == "true", "Swagger UI to load")
    chrome.find_element(By.ID, "console-get-token").click()
    status = chrome.find_element(By.ID, "console-token-status")
    wait_for(lambda: status.get_attribute("class") == "ok", "the token")
    check = "#operations-SIM_Swap-checkSimSwap"
    chrome.find_element(By.CSS_SELECTOR, f"{check} .opblock-summary").click()
    wait_for(lambda: bool(chrome.find_elements(By.CSS_SELECTOR, f"{check} textarea")),
             "the request body editor")
    body = chrome.find_element(By.CSS_SELECTOR, f"{check} textarea")
    body.clear()
    number = loopback.operator.subscribers.test_number("recent-swap")
    body.send_keys(json.dumps({"phoneNumber": number, "maxAge": 240}))
    chrome.find_element(By.CSS_SELECTOR, f"{check} .execute").click()
    answer = f"{check} .live-responses-table"
    wait_for(lambda: bool(chrome.find_elements(By.CSS_SELECTOR, answer)), "the answer")
    shown = chrome.find_element(By.CSS_SELECTOR, answer).text
    assert "200" in shown and '"swapped": true' in shown, shown
