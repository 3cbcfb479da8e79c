"""A subscriber in a real browser: signs in with the code on their handset, sees the consent an
application obtained by CIBA, downloads its receipt, withdraws it; the application's next
CAMARA call is refused and the access log shows both calls.

Screenshots of the consent list and the access log go to ``$OGSIM_SCREENSHOTS`` when it is
set (``OGSIM_SCREENSHOTS=docs/screenshots`` refreshes the README's), else to ``tmp_path``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws
from joserfc.jwk import KeySet

from federation.client import ApplicationClient, new_client_key
from operators.consent_portal.receipts import TYP
from operators.handset_app.pairing import phone_link

from .conftest import WAIT, Served, screenshot_folder, wait_for

ADMIN = {"Authorization": "Bearer admin-secret"}
IDENTITY = "dpv:IdentityVerification"


async def _application(served: Served, http: httpx.AsyncClient) -> ApplicationClient:
    key = new_client_key()
    registered = await http.post(f"{served.operator.issuer}/admin/clients", headers=ADMIN, json={
        "client_id": "budget-bank",
        "client_name": "Budget Bank",
        "jwks": {"keys": [key.as_dict(private=False)]},
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "scope": "sim-swap:check",
        "purposes": [IDENTITY],
    })
    assert registered.status_code == 201, registered.text
    return await ApplicationClient.discover("budget-bank", key, served.operator.issuer, http)


async def test_subscriber_withdraws_a_ciba_consent_in_the_browser(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    operator = served.operator
    number = operator.subscribers.test_number("approves")
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as http:
        app = await _application(served, http)
        token = (await app.ciba(f"tel:{number}", f"sim-swap:check {IDENTITY}"))["access_token"]

        async def check() -> httpx.Response:
            return await http.post("/sim-swap/v2/check", json={"maxAge": 240},
                                   headers={"Authorization": f"Bearer {token}"})

        assert (await check()).status_code == 200

        # Sign in: the number, then the code the handset received.
        chrome.get(f"{served.base}/my")
        wait_for(lambda: chrome.current_url.endswith("/my/sign-in"), "the sign-in page")
        chrome.find_element(By.ID, "number").send_keys(number)
        chrome.find_element(By.ID, "send-code").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "code")), "the code form")
        portal = chrome.current_window_handle
        chrome.switch_to.new_window("tab")
        chrome.get(phone_link(served.base, served.operator.config.admin_secret, number))
        codes = chrome.find_elements(By.CSS_SELECTOR, '.message[data-kind="code"] p')
        assert codes, "the handset shows no code"
        code = re.search(r"\b(\d{6})\b", codes[0].text)
        assert code is not None
        chrome.close()
        chrome.switch_to.window(portal)
        chrome.find_element(By.ID, "code").send_keys(code.group(1))
        chrome.find_element(By.ID, "verify-code").click()
        wait_for(lambda: chrome.current_url.endswith("/my/consents"), "the consent list")

        # The consent the application obtained through CIBA.
        (consent,) = operator.identity.consents.for_subscriber(number)
        row = chrome.find_element(By.ID, f"consent-{consent.id}")
        assert "Verifying your identity" in row.text and "active" in row.text
        assert "Budget Bank" in chrome.find_element(By.ID, "app-budget-bank").text
        chrome.save_screenshot(str(screenshot_folder(tmp_path) / "consents.png"))

        # Its receipt downloads, and verifies against the operator's published keys.
        downloads = tmp_path / "downloads"
        row.find_element(By.CSS_SELECTOR, "a.receipt").click()
        wait_for(lambda: any(p.suffix == ".jwt" for p in downloads.iterdir()),
                 "the receipt download")
        receipt = next(p for p in downloads.iterdir() if p.suffix == ".jwt").read_text()
        keys = KeySet.import_key_set((await http.get("/oauth/jwks")).json())
        verified = jws.deserialize_compact(receipt, keys, algorithms=["ES256"])
        claims = json.loads(verified.payload)
        assert verified.headers()["typ"] == TYP
        assert claims["consent"]["id"] == consent.id and claims["consent"]["state"] == "active"

        # Withdraw it: the application's very next call is refused.
        chrome.find_element(By.ID, f"consent-{consent.id}").find_element(
            By.CSS_SELECTOR, "button.revoke").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "notice")), "the withdrawal notice")
        assert "revoked" in chrome.find_element(By.ID, f"consent-{consent.id}").text
        refused = await check()
        assert refused.status_code == 403
        assert refused.json()["code"] == "PERMISSION_DENIED"

        # The access log shows the answered call and the refused one.
        chrome.find_element(By.ID, "nav-access-log").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "access-log")), "the access log")
        rows = chrome.find_elements(By.CSS_SELECTOR, "tr.access")
        assert [("refused" in r.get_attribute("class")) for r in rows] == [True, False]
        assert all("Budget Bank" in r.text for r in rows)
        chrome.save_screenshot(str(screenshot_folder(tmp_path) / "access-log.png"))

        chrome.find_element(By.ID, "sign-out").click()
        wait_for(lambda: bool(chrome.find_elements(By.ID, "send-code")), "the signed-out page")
