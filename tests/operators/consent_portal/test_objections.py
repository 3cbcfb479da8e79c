"""Objections on /my: objecting to a legitimate-interest purpose refuses the next two-legged
call for it."""

from __future__ import annotations

import pytest

from operators.config import LegalBasis, PurposePolicy, default_purposes, example_operator
from operators.consent_portal.objections import Objections
from operators.storage import Database
from operators.subscriber_base import ChangeKind, SubscriberBase
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
    subscriber = harness.operator.subscribers.get(number)
    assert subscriber is not None
    assert not subscriber.legitimate_interest_opt_out and not subscriber.purpose_opt_outs


def _two_interests() -> tuple[SubscriberBase, Objections]:
    security = PurposePolicy(purpose="dpv:NetworkSecurity",
                             legal_basis=LegalBasis.LEGITIMATE_INTEREST, two_legged=True)
    config = example_operator().model_copy(update={"purposes": (*default_purposes(), security)})
    subscribers = SubscriberBase(config, Database())
    return subscribers, Objections(config, subscribers)


def test_an_objection_binds_its_purpose_only() -> None:
    subscribers, objections = _two_interests()
    number = subscribers.test_number("approves")
    fraud = objections.policy(FRAUD)
    assert fraud is not None
    objections.set(number, fraud, True)
    assert {s.purpose: s.objected for s in objections.standing(number)} == {
        FRAUD: True, "dpv:NetworkSecurity": False}
    objections.set(number, fraud, False)
    assert not any(s.objected for s in objections.standing(number))


def test_allowing_one_purpose_after_objecting_to_all_keeps_the_others() -> None:
    subscribers, objections = _two_interests()
    number = subscribers.test_number("opted-out")
    assert all(s.objected for s in objections.standing(number))
    fraud = objections.policy(FRAUD)
    assert fraud is not None
    objections.set(number, fraud, False)
    assert {s.purpose: s.objected for s in objections.standing(number)} == {
        FRAUD: False, "dpv:NetworkSecurity": True}


@pytest.mark.parametrize("purpose", [5, "Marketing", None])
def test_a_malformed_purpose_objection_is_refused(purpose: object) -> None:
    subscribers, _ = _two_interests()
    number = subscribers.test_number("approves")
    payload = {"opt_out": True, "purpose": purpose}
    if purpose is None:
        subscribers.record_change(number, ChangeKind.OPT_OUT, payload)  # None: every purpose
        return
    with pytest.raises(ValueError, match="DPV purpose"):
        subscribers.record_change(number, ChangeKind.OPT_OUT, payload)
