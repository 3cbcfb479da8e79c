"""The portal's mail, in Chromium: a new developer confirms their address with the link the
outbox holds, then, signed out, asks for a new password and sets it through the mailed link.
Screenshots go to ``$OGSIM_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import re
import time
from typing import Any

from operators.portal.outbox import Outbox
from tests.browser.conftest import Served, fill, screenshot_folder, wait_for

EMAIL = "dana@budget.example"
_LINK = re.compile(r"(https?://\S+/portal/(?:email/confirm|password)\?code=[\w-]+)")


def _present(chrome: Any, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(chrome.find_elements(By.ID, element_id))


def _newest_link(served: Served, subject_start: str) -> str:
    message = next(m for m in Outbox(served.operator.db, time.time).messages(EMAIL)
                   if m.subject.startswith(subject_start))
    found = _LINK.search(message.body)
    assert found is not None, message.body
    return found.group(1)


def test_a_developer_confirms_the_address_then_resets_the_password(
    served: Served, chrome: Any, tmp_path: Any
) -> None:
    from selenium.webdriver.common.by import By

    shots = screenshot_folder(tmp_path)
    chrome.set_window_size(1200, 900)
    chrome.get(f"{served.base}/portal/sign-up")
    fill(chrome, "organisation", "Budget Bank")
    fill(chrome, "name", "Dana Developer")
    fill(chrome, "email", EMAIL)
    fill(chrome, "password", "dana's first passphrase")
    chrome.find_element(By.ID, "sign-up-submit").click()
    wait_for(lambda: _present(chrome, "confirm-address"), "the banner asking to confirm")
    chrome.save_screenshot(str(shots / "confirm-address-banner.png"))

    chrome.get(_newest_link(served, "Confirm your address"))
    wait_for(lambda: _present(chrome, "confirm-email-submit"), "the confirmation page")
    chrome.find_element(By.ID, "confirm-email-submit").click()
    wait_for(lambda: _present(chrome, "email-confirmed"), "the address confirmed")
    chrome.get(f"{served.base}/portal")
    wait_for(lambda: _present(chrome, "new-application"), "the home page")
    assert not _present(chrome, "confirm-address")

    chrome.delete_all_cookies()  # another browser, signed out
    chrome.get(f"{served.base}/portal/sign-in")
    chrome.find_element(By.ID, "forgot-password").click()
    wait_for(lambda: _present(chrome, "forgot-submit"), "the forgot-password form")
    fill(chrome, "email", EMAIL)
    chrome.find_element(By.ID, "forgot-submit").click()
    wait_for(lambda: _present(chrome, "reset-asked"), "the answer")
    chrome.save_screenshot(str(shots / "forgot-password.png"))

    chrome.get(_newest_link(served, "Choose a new password"))
    wait_for(lambda: _present(chrome, "link-email"), "the reset page")
    assert chrome.find_element(By.ID, "link-email").text == EMAIL
    fill(chrome, "password", "dana's second passphrase")
    chrome.find_element(By.ID, "set-password-submit").click()
    wait_for(lambda: _present(chrome, "signed-in-as")
             and "Dana Developer" in chrome.find_element(By.ID, "signed-in-as").text,
             "Dana signed in with the new password")
