"""The subscriber's phone and the operator's consent capture page, in a real browser.

An application asks for consent by CIBA while the subscriber's handset is interactive: the
browser opens the handset page, sees the prompt (application, purpose, binding message) and
presses Approve; the application's poll gets its token. Then Consent Info hands another
application a capture URL: the browser opens it, reads the one-time code on the handset page,
enters it, approves, and lands on the application's callback with ``capture_result`` and its
``state``. Screenshots go where ``OGSIM_SCREENSHOTS`` says (else ``tmp_path``).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from federation.client import ApplicationClient, new_client_key
from operators.handset_app.pairing import phone_link

from .conftest import WAIT, Served, screenshot_folder, wait_for

ADMIN = {"Authorization": "Bearer admin-secret"}
IDENTITY = "dpv:IdentityVerification"
FRAUD = "dpv:FraudPreventionAndDetection"


async def _register(served: Served, http: httpx.AsyncClient, client_id: str, name: str,
                    scope: str, grants: list[str], **extra: Any) -> ApplicationClient:
    key = new_client_key()
    registered = await http.post(f"{served.operator.issuer}/admin/clients", headers=ADMIN, json={
        "client_id": client_id, "client_name": name,
        "jwks": {"keys": [key.as_dict(private=False)]}, "grant_types": grants, "scope": scope,
        "purposes": [IDENTITY, FRAUD], **extra,
    })
    assert registered.status_code == 201, registered.text
    return await ApplicationClient.discover(client_id, key, served.operator.issuer, http)


async def test_a_person_approves_a_ciba_prompt_on_the_handset_page(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    number = served.operator.subscribers.test_number("approves")
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as http:
        interactive = await http.post(f"/admin/subscribers/{number}/changes", headers=ADMIN,
                                      json={"kind": "handset",
                                            "payload": {"mode": "interactive"}})
        assert interactive.status_code == 201, interactive.text
        app = await _register(served, http, "budget-bank", "Budget Bank", "sim-swap:check",
                              ["urn:openid:params:grant-type:ciba"])
        asking = asyncio.ensure_future(app.ciba(
            f"tel:{number}", f"sim-swap:check {IDENTITY}", binding_message="BB-4711"))

        def person() -> None:
            chrome.get(phone_link(served.base, served.operator.config.admin_secret, number))
            wait_for(lambda: bool(chrome.find_elements(By.CSS_SELECTOR, "section.prompt")),
                     "the prompt on the handset (the page refreshes itself)")
            prompt = chrome.find_element(By.CSS_SELECTOR, "section.prompt")
            assert "Budget Bank" in prompt.text and "BB-4711" in prompt.text
            assert "Verifying your identity" in prompt.text
            chrome.save_screenshot(str(screenshot_folder(tmp_path) / "handset.png"))
            prompt.find_element(By.CSS_SELECTOR, 'button[value="approve"]').click()
            wait_for(lambda: "You approved" in chrome.page_source, "the approval to show")

        await asyncio.to_thread(person)
        token = (await asyncio.wait_for(asking, WAIT))["access_token"]
        answered = await http.post("/sim-swap/v2/check", json={"maxAge": 240},
                                   headers={"Authorization": f"Bearer {token}"})
        assert answered.status_code == 200, answered.text
        (consent,) = served.operator.identity.consents.for_subscriber(number)
        assert consent.client_id == "budget-bank" and consent.active(served.operator.clock())


async def test_consent_captured_on_the_operators_page_returns_to_the_application(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    number = served.operator.subscribers.test_number("never-swapped")
    callback = f"{served.base}/health"
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as http:
        app = await _register(served, http, "kyc-shop", "KYC Shop",
                              "consent-info:retrieve kyc-match:match", ["client_credentials"],
                              redirect_uris=[callback])
        token = (await app.client_credentials(f"consent-info:retrieve {FRAUD}"))["access_token"]
        asked = await http.post("/consent-info/v0.2/retrieve", headers={
            "Authorization": f"Bearer {token}"}, json={
            "phoneNumber": number, "scopes": ["kyc-match:match"], "purpose": IDENTITY,
            "requestCaptureUrl": True, "callbackUrl": callback})
        assert asked.status_code == 200, asked.text
        capture_url = asked.json()["captureUrl"]

        def subscriber() -> str:
            chrome.get(f"{capture_url}?state=shop-77")
            wait_for(lambda: bool(chrome.find_elements(By.ID, "code")), "the code form")
            page = chrome.current_window_handle
            chrome.switch_to.new_window("tab")
            chrome.get(phone_link(served.base, served.operator.config.admin_secret, number))
            texts = [m.text for m in chrome.find_elements(
                By.CSS_SELECTOR, '.message[data-kind="code"] p')]
            code = next((c for t in texts for c in re.findall(r"\b\d{6}\b", t)), None)
            assert code is not None, texts
            chrome.close()
            chrome.switch_to.window(page)
            chrome.find_element(By.ID, "code").send_keys(code)
            chrome.find_element(By.ID, "verify").click()
            wait_for(lambda: bool(chrome.find_elements(By.ID, "approve")), "the decision form")
            assert "KYC Shop" in chrome.page_source
            assert "Verifying your identity" in chrome.find_element(By.ID, "purpose").text
            chrome.save_screenshot(str(screenshot_folder(tmp_path) / "capture.png"))
            chrome.find_element(By.ID, "approve").click()
            wait_for(lambda: chrome.current_url.startswith(callback), "the callback")
            return str(chrome.current_url)

        landed = await asyncio.to_thread(subscriber)
        assert parse_qs(urlsplit(landed).query) == {
            "capture_result": ["granted"], "state": ["shop-77"]}
        status = await http.post("/consent-info/v0.2/retrieve", headers={
            "Authorization": f"Bearer {token}"}, json={
            "phoneNumber": number, "scopes": ["kyc-match:match"], "purpose": IDENTITY,
            "requestCaptureUrl": False})
        assert status.json()["statusInfo"][0]["statusValidForProcessing"] is True


async def test_the_capture_page_stops_offering_codes_once_three_were_sent(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    """In the browser: two more codes on request, then no resend button and the page says to
    ask the application; the subscriber's phone got exactly three codes."""
    from selenium.webdriver.common.by import By

    number = served.operator.subscribers.test_number("approves")
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as http:
        app = await _register(served, http, "kyc-codes", "KYC Codes",
                              "consent-info:retrieve kyc-match:match", ["client_credentials"])
        token = (await app.client_credentials(f"consent-info:retrieve {FRAUD}"))["access_token"]
        asked = await http.post("/consent-info/v0.2/retrieve", headers={
            "Authorization": f"Bearer {token}"}, json={
            "phoneNumber": number, "scopes": ["kyc-match:match"], "purpose": IDENTITY,
            "requestCaptureUrl": True})
        assert asked.status_code == 200, asked.text
        capture_url = asked.json()["captureUrl"]

        def subscriber() -> str:
            chrome.get(capture_url)
            wait_for(lambda: bool(chrome.find_elements(By.ID, "code")), "the code form")
            for _ in range(2):
                resend = chrome.find_element(By.ID, "resend")
                resend.click()
                # the page before had the code form too: wait for the next one to replace it
                wait_for(lambda resend=resend: _gone(resend), "the next page")
                wait_for(lambda: bool(chrome.find_elements(By.ID, "code")), "the code form")
            wait_for(lambda: not chrome.find_elements(By.ID, "resend"), "no resend button")
            for _ in range(5):
                posted = chrome.find_element(By.ID, "verify")
                chrome.find_element(By.ID, "code").send_keys("000000")
                posted.click()
                wait_for(lambda posted=posted: _gone(posted), "the next page")
                wait_for(lambda: bool(chrome.find_elements(By.ID, "error")), "the error")
            assert not chrome.find_elements(By.ID, "code"), "no form for a code that cannot come"
            chrome.save_screenshot(str(screenshot_folder(tmp_path) / "capture_no_codes.png"))
            return str(chrome.find_element(By.ID, "error").text)

        said = await asyncio.to_thread(subscriber)
    assert "sent all the codes it may" in said
    codes = [m for m in served.operator.handsets.messages(number) if m.kind == "code"]
    assert len(codes) == 3


def _gone(element: Any) -> bool:
    """Whether ``element`` belongs to a page the browser has left (a form was posted): the
    new page may carry an element of the same id, so waiting for that alone can read the
    old page."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        # asked while the old document is being torn down, Chromium answers with an
        # inspector error instead of a stale reference: the page has been left all the same
        if "does not belong to the document" in str(error):
            return True
        raise
    return False
