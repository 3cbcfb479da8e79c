"""A new developer in a real browser, from sign-up to a first successful call and its invoice.

Signs up, creates a sandbox application with a generated key (the private key is shown once),
subscribes it to a paid plan, gets a token in the API console and makes a SIM swap check with
Swagger UI's "Try it out" (served from the installed package, nothing from the internet), then
finds the call in the usage chart and on the month's draft invoice.

Screenshots of the main pages go to ``$OGSIM_SCREENSHOTS`` when it is set
(``OGSIM_SCREENSHOTS=docs/screenshots`` refreshes the README's), else to ``tmp_path``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .conftest import Served, fill, screenshot_folder, wait_for

PASSWORD = "correct horse battery"
FRAUD = "dpv:FraudPreventionAndDetection"


def test_a_new_developer_reaches_a_first_call_and_sees_it_billed(
    served: Served, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = screenshot_folder(tmp_path)
    number = served.operator.subscribers.test_number("approves")
    chrome.set_window_size(1200, 1000)

    # Sign up: a new organisation with its first developer.
    chrome.get(f"{served.base}/portal/sign-up")
    fill(chrome, "organisation", "Budget Bank")
    fill(chrome, "name", "Dana Developer")
    fill(chrome, "email", "dana@budget.example")
    fill(chrome, "password", PASSWORD)
    chrome.find_element(By.ID, "sign-up-submit").click()
    wait_for(lambda: "Dana Developer" in chrome.find_element(By.ID, "signed-in-as").text,
             "the signed-in home page")

    # An application for SIM swap with a generated key pair.
    chrome.find_element(By.ID, "new-application").click()
    fill(chrome, "name", "Fraud shield")
    chrome.find_element(By.ID, "api-sim-swap").click()
    chrome.find_element(By.ID, f"purpose-{FRAUD.replace(':', '-')}").click()
    chrome.find_element(By.ID, "key-generate").click()
    chrome.find_element(By.ID, "create-application").click()
    wait_for(lambda: bool(chrome.find_elements(By.ID, "private-jwk")), "the one-time key page")
    private = json.loads(chrome.find_element(By.ID, "private-jwk").get_attribute("value"))
    assert private["kty"] == "EC" and "d" in private  # shown once, never stored
    client_id = chrome.find_element(By.ID, "client-id").text
    chrome.find_element(By.ID, "continue").click()

    # Subscribe the application to a paid plan for SIM swap.
    wait_for(lambda: bool(chrome.find_elements(By.ID, "plan-choice-sim-swap")),
             "the application page")
    assert chrome.find_element(By.ID, "environment").text.startswith("sandbox")
    Select(chrome.find_element(By.ID, "plan-choice-sim-swap")).select_by_value("pay-as-you-go")
    chrome.find_element(By.ID, "subscribe-sim-swap").click()
    wait_for(lambda: bool(chrome.find_elements(By.ID, "plan-sim-swap"))
             and chrome.find_element(By.ID, "plan-sim-swap").text == "pay-as-you-go",
             "the plan to change")
    chrome.save_screenshot(str(shots / "portal-application.png"))

    # The console: a sandbox token for the application, then "Try it out" on SIM swap check.
    chrome.get(f"{served.base}/portal/console")
    wait_for(lambda: chrome.find_element(By.ID, "swagger-ui").get_attribute("data-loaded")
             == "true", "Swagger UI to load the sandbox's document")
    Select(chrome.find_element(By.ID, "console-application")).select_by_value(client_id)
    chrome.find_element(By.ID, "console-get-token").click()
    wait_for(lambda: chrome.find_element(By.ID, "console-token-status")
             .get_attribute("data-client-id") == client_id, "the console's token")
    operation = chrome.find_element(By.CSS_SELECTOR, "[id$='-checkSimSwap']")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait_for(lambda: bool(operation.find_elements(By.CSS_SELECTOR, "textarea.body-param__text")),
             "the request body editor")
    body = operation.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
    body.clear()
    body.send_keys(json.dumps({"phoneNumber": number, "maxAge": 240}))
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    answered = ".live-responses-table tbody .response-col_status"
    wait_for(lambda: bool(operation.find_elements(By.CSS_SELECTOR, answered)),
             "the console's answer")
    status = operation.find_element(By.CSS_SELECTOR, answered).text.strip()
    answer = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert status.startswith("200"), (status, answer)
    assert '"swapped"' in answer
    chrome.save_screenshot(str(shots / "portal-console.png"))

    # The call in the usage chart.
    chrome.get(f"{served.base}/portal/usage")
    wait_for(lambda: chrome.find_element(By.ID, "usage-summary").text.startswith("1 call "),
             "the call in the usage report")
    assert chrome.find_elements(By.CSS_SELECTOR, "#calls-chart svg")
    chrome.save_screenshot(str(shots / "portal-usage.png"))

    # And on this month's draft invoice, priced on the plan subscribed above.
    month = datetime.now(UTC).strftime("%Y-%m")

    def invoiced() -> bool:
        chrome.get(f"{served.base}/portal/invoices/{month}")
        return bool(chrome.find_elements(By.ID, "invoice-total")) and "0.01" in chrome.find_element(
            By.ID, "invoice-total").text

    wait_for(invoiced, "the call on the draft invoice")
    assert chrome.find_element(By.ID, "invoice-status").text == "draft"
    assert "sim-swap" in chrome.find_element(By.TAG_NAME, "main").text
    chrome.save_screenshot(str(shots / "portal-invoice.png"))
