"""Stopping corporate sign-in, in Chromium: the admin sees the set-a-password links and how many
provider sessions ended; the member signed in through the provider is signed out; the link's
page, opened without a session, shows nobody as signed in and signs the member in with the
password they choose. Screenshots go to ``$OGSIM_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import time
from typing import Any

from operators.portal.accounts import DeveloperAccounts
from operators.portal.corporate_sign_in import OrganisationIdps
from operators.portal.sessions import COOKIE, DeveloperSessions
from tests.browser.conftest import Served, fill, screenshot_folder, wait_for

ADMIN_PASSWORD = "correct horse battery staple 42"
ISSUER = "https://idp.corp.test"


def _text(chrome: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    found = chrome.find_elements(By.ID, element_id)
    return str(found[0].text) if found else ""


def test_the_admin_stops_corporate_sign_in_and_a_member_sets_a_password(
    served: Served, chrome: Any, tmp_path: Any
) -> None:
    from selenium.webdriver.common.by import By

    shots = screenshot_folder(tmp_path)
    db = served.operator.db
    accounts = DeveloperAccounts(db, served.operator.identity, time.time)
    sessions = DeveloperSessions(db, clock=time.time)
    admin = accounts.sign_up("Corp Ltd", "ingrid@corp.example", "Ingrid Admin", ADMIN_PASSWORD)
    OrganisationIdps(db, time.time).save(admin.org_id, ISSUER, "ogsim-portal",
                                         "corp-issued-secret-0123456789")
    accounts.set_idp(admin.org_id, ISSUER)
    bob = accounts.create_federated(admin.org_id, "u-bob", "bob@corp.example", "Bob Builder")
    bobs_session = sessions.start(bob.developer_id, ISSUER)  # as the provider's callback does
    admin_session = sessions.start(admin.developer_id)

    chrome.set_window_size(1200, 900)
    chrome.get(f"{served.base}/portal/sign-in")
    chrome.add_cookie({"name": COOKIE, "value": sessions.encode(admin_session),
                       "path": "/portal"})
    chrome.get(f"{served.base}/portal/organisation/trust")
    wait_for(lambda: bool(chrome.find_elements(By.ID, "federated")), "the trust page")
    chrome.find_element(By.ID, "remove-idp").click()
    wait_for(lambda: "Corporate sign-in is off." in _text(chrome, "notice"), "the notice")
    assert "Ended 1 portal session started by a provider no longer trusted." in _text(
        chrome, "notice")
    assert "Ingrid Admin" in _text(chrome, "signed-in-as"), "the admin stays signed in"
    link = chrome.find_element(By.CSS_SELECTOR, "#password-links code.password-link").text
    chrome.save_screenshot(str(shots / "stop-corporate-sign-in-links.png"))
    assert sessions.decode(sessions.encode(bobs_session)) is None, "Bob was signed out"

    chrome.delete_all_cookies()
    chrome.get(link)
    wait_for(lambda: _text(chrome, "link-email") == "bob@corp.example", "the link's page")
    assert not chrome.find_elements(By.ID, "signed-in-as"), "nobody is shown as signed in"
    chrome.save_screenshot(str(shots / "set-a-password.png"))
    fill(chrome, "password", "bobs own password 2026")
    chrome.find_element(By.ID, "set-password-submit").click()
    wait_for(lambda: "Bob Builder" in _text(chrome, "signed-in-as"), "Bob's portal home")
    assert accounts.authenticate("bob@corp.example", "bobs own password 2026") is not None
