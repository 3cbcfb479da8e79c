"""The access log on /my: calls about the subscriber, billed and refused, with CSV and JSON."""

from __future__ import annotations

import csv
import io

from tests.operators.gateway.conftest import FRAUD, Harness

from .conftest import IDENTITY, Browser, ciba_consent


async def test_the_access_log_lists_answered_and_refused_calls(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    token = await ciba_consent(harness)
    assert (await harness.check(token)).status_code == 200
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    await browser.post(f"/my/consents/{consent.id}/revoke")
    harness.clock.advance(1)
    assert (await harness.check(token)).status_code == 403
    page = await browser.http.get("/my/access-log")
    assert page.status_code == 200
    assert "Fraud app" in page.text and "sim-swap" in page.text
    assert "refused: not permitted (403)" in page.text and "answered (200)" in page.text

    exported = await browser.http.get("/my/access-log.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["client_id"], r["api"], r["status"], r["billed"]) for r in rows] == [
        ("fraud-app", "sim-swap", "403", "False"),
        ("fraud-app", "sim-swap", "200", "True"),
    ]
    assert rows[1]["purpose"] == "dpv:IdentityVerification"
    assert rows[1]["purpose_words"] == "Verifying your identity"

    as_json = (await browser.http.get("/my/access-log.json")).json()
    assert [e["status"] for e in as_json] == [403, 200]


async def test_a_two_legged_call_is_in_the_log_of_the_subscriber_it_named(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    token = await harness.two_legged(f"sim-swap:check {FRAUD}")
    answered = await harness.check(token, {"phoneNumber": number, "maxAge": 240})
    assert answered.status_code == 200
    (event,) = harness.operator.gateway.ledger.events()
    assert (event.msisdn, event.purpose) == (number, FRAUD)
    await browser.sign_in(number)
    page = (await browser.http.get("/my/access-log")).text
    assert "Fraud prevention and detection" in page


async def test_nobody_elses_calls_are_in_my_log(harness: Harness, browser: Browser) -> None:
    token = await ciba_consent(harness)
    assert (await harness.check(token)).status_code == 200
    await browser.sign_in(harness.number("roaming"))
    assert (await browser.http.get("/my/access-log.json")).json() == []
    assert "No application has called about you" in (
        await browser.http.get("/my/access-log")).text


async def test_the_log_needs_a_session(browser: Browser) -> None:
    for path in ("/my/access-log", "/my/access-log.csv", "/my/access-log.json"):
        answer = await browser.http.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/my/sign-in"


async def test_a_call_an_aggregator_made_for_an_application_names_that_application(
    harness: Harness, browser: Browser
) -> None:
    """The aggregator is billed, but the subscriber's data went to the application it acted
    for: the log names that application, billed answers and refusals alike."""
    number = harness.number("approves")
    token = await harness.client.ciba(f"tel:{number}", f"sim-swap:check {IDENTITY}",
                                      on_behalf_of="shop-a")
    assert (await harness.check(str(token["access_token"]))).status_code == 200
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    await browser.sign_in(number)
    await browser.post(f"/my/consents/{consent.id}/revoke")
    harness.clock.advance(1)
    assert (await harness.check(str(token["access_token"]))).status_code == 403

    rows = (await browser.http.get("/my/access-log.json")).json()
    assert [(r["application"], r["client_id"], r["status"]) for r in rows] == [
        ("shop-a (through Fraud app)", "fraud-app", 403),
        ("shop-a (through Fraud app)", "fraud-app", 200),
    ]
    assert "shop-a (through Fraud app)" in (await browser.http.get("/my/access-log")).text


async def test_a_business_refusal_after_the_network_answered_is_in_the_log(
    harness: Harness, browser: Browser
) -> None:
    """A location too old for ``maxAge`` is a 422 that read the subscriber's location: an
    access all the same."""
    number = harness.number("unreachable")
    token = await harness.two_legged(f"location-verification:verify {FRAUD}")
    area = {"areaType": "CIRCLE", "radius": 5000, "center": {"latitude": 40.4, "longitude": -3.7}}
    headers = {"Authorization": f"Bearer {token}"}
    stale = await harness.http.post("/location-verification/v3/verify", headers=headers, json={
        "device": {"phoneNumber": number}, "area": area, "maxAge": 0})
    assert (stale.status_code, stale.json()["code"]) == (
        422, "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE")
    await browser.sign_in(number)
    rows = (await browser.http.get("/my/access-log.json")).json()
    assert [(r["api"], r["status"], r["outcome"]) for r in rows] == [
        ("location-verification", 422, "answered: not applicable")]
