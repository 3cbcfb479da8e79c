"""Objections on /my: objecting to a legitimate-interest purpose refuses the next two-legged
call for it."""

from __future__ import annotations

from tests.operators.gateway.conftest import FRAUD, Harness

from .conftest import Browser


async def test_objecting_refuses_the_next_two_legged_call_and_withdrawing_allows_it(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    token = await harness.two_legged(f"sim-swap:check {FRAUD}")
    body = {"phoneNumber": number, "maxAge": 240}
    assert (await harness.check(token, body)).status_code == 200
    await browser.sign_in(number)
    page = (await browser.http.get("/my/purposes")).text
    assert "Fraud prevention and detection" in page and "Allowed" in page
    assert "dpv:IdentityVerification" not in page  # consent purposes are withdrawn, not objected
    objected = await browser.post("/my/purposes/opt-out", purpose=FRAUD)
    assert objected.status_code == 200 and "You object" in objected.text
    refused = await harness.check(token, body)
    assert refused.status_code == 403 and refused.json()["code"] == "PERMISSION_DENIED"
    withdrawn = await browser.post("/my/purposes/opt-in", purpose=FRAUD)
    assert withdrawn.status_code == 200 and "Allowed" in withdrawn.text
    assert (await harness.check(token, body)).status_code == 200
    log = (await browser.http.get("/my/access-log.json")).json()
    assert sorted(e["status"] for e in log) == [200, 200, 403]


async def test_only_listed_purposes_can_be_objected_to(harness: Harness,
                                                      browser: Browser) -> None:
    await browser.sign_in(harness.number("approves"))
    for purpose in ("dpv:IdentityVerification", "dpv:Nothing", "", "x" * 300):
        answer = await browser.post("/my/purposes/opt-out", purpose=purpose)
        assert answer.status_code == 400
        assert "purposes listed" in answer.text


async def test_objecting_needs_the_csrf_token(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    await browser.sign_in(number)
    assert (await browser.post("/my/purposes/opt-out", csrf=False,
                               purpose=FRAUD)).status_code == 403
    assert not harness.operator.subscribers.get(number).legitimate_interest_opt_out  # type: ignore[union-attr]
