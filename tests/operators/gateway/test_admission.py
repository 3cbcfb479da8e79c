"""The gateway's admission as a pure object: its order of refusals and its throttle key."""

from __future__ import annotations

import dataclasses

import pytest

from operators.camara import operation_named
from operators.config import example_operator
from operators.errors import CamaraError
from operators.gateway import Admission, InMemoryPlans, is_billable, throttle_key
from operators.identity import Consent, GrantFacts, GrantType, TokenContext
from operators.policies import Throttle
from operators.subscriber import Subscriber

CONFIG = example_operator()
CHECK = operation_named("checkSimSwap")
KYC = operation_named("KYC_Match")
NOW = 1_700_000_000.0


def _admission() -> Admission:
    clock = lambda: NOW  # noqa: E731
    plans = InMemoryPlans.of(CONFIG)
    plans.subscribe("app", "sim-swap", "free")
    plans.subscribe("app", "kyc-match", "free")
    return Admission(plans, Throttle(clock), clock)


def _facts(purpose: str, scopes: tuple[str, ...], **changes: object) -> GrantFacts:
    token = TokenContext(
        "app", None, purpose, scopes, "jti", "app", GrantType.CLIENT_CREDENTIALS, None
    )
    facts = GrantFacts(token, policy=CONFIG.purpose(purpose))
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def _refusal(call: object) -> tuple[int, str]:
    with pytest.raises(CamaraError) as refused:
        call()  # type: ignore[operator]
    return refused.value.status, refused.value.code


FRAUD = "dpv:FraudPreventionAndDetection"


def test_refusals_come_in_the_chain_order() -> None:
    admission = _admission()
    ok = _facts(FRAUD, ("sim-swap:check",))
    assert admission.authorize(ok, CHECK).client_id == "app"
    # A revoked token is refused before the trust gate or the scope are looked at.
    revoked = dataclasses.replace(ok, revoked=True)
    assert _refusal(lambda: admission.authorize(revoked, KYC, party_trusted=False)) == (
        401,
        "UNAUTHENTICATED",
    )
    assert _refusal(lambda: admission.authorize(ok, KYC, party_trusted=False)) == (
        403,
        "PERMISSION_DENIED",
    )
    assert _refusal(lambda: admission.authorize(ok, KYC)) == (403, "PERMISSION_DENIED")  # scope
    assert _refusal(lambda: admission.authorize(ok, None)) == (403, "PERMISSION_DENIED")


def test_consent_and_objection_come_from_the_grant_rule() -> None:
    admission = _admission()
    consent = Consent(
        "c1",
        "+34600000001",
        "app",
        "dpv:IdentityVerification",
        ("kyc-match:match",),
        NOW - 10,
        None,
        None,
    )
    subscriber = Subscriber.model_construct(msisdn="+34600000001", legitimate_interest_opt_out=True)
    three = TokenContext(
        "app",
        "+34600000001",
        "dpv:IdentityVerification",
        ("kyc-match:match",),
        "j",
        "s",
        GrantType.CIBA,
        "c1",
    )
    facts = GrantFacts(
        three, policy=CONFIG.purpose(three.purpose or ""), consent=consent, subscriber=subscriber
    )
    assert admission.authorize(facts, KYC).msisdn == "+34600000001"
    withdrawn = dataclasses.replace(facts, consent=dataclasses.replace(consent, revoked_at=NOW))
    assert _refusal(lambda: admission.authorize(withdrawn, KYC)) == (403, "PERMISSION_DENIED")
    fraud = dataclasses.replace(three, purpose=FRAUD, scopes=("sim-swap:check",))
    objected = GrantFacts(fraud, policy=CONFIG.purpose(FRAUD), subscriber=subscriber)
    assert _refusal(lambda: admission.authorize(objected, CHECK)) == (403, "PERMISSION_DENIED")


def test_each_api_of_an_application_has_its_own_bucket() -> None:
    admission = _admission()
    assert throttle_key("app", "sim-swap") != throttle_key("app", "kyc-match")
    burst = [admission.rate("app", "sim-swap").name for _ in range(5)]
    assert burst == ["free"] * 5
    assert _refusal(lambda: admission.rate("app", "sim-swap")) == (429, "TOO_MANY_REQUESTS")
    assert admission.rate("app", "kyc-match").name == "free"  # same plan, another bucket


def test_only_successful_answers_of_billable_operations_are_billed() -> None:
    assert is_billable(CHECK, 200) and is_billable(operation_named("createSession"), 201)
    assert not any(is_billable(CHECK, status) for status in (404, 422, 403, 429, 503))
    assert not is_billable(None, 200)
    assert not is_billable(dataclasses.replace(CHECK, billable=False), 200)


def test_a_context_is_handed_out_again_only_for_calls_without_a_correlator() -> None:
    """The simulation asks again about the same frozen facts without a correlator and gets
    the same context; a live call's context names its own correlator, so it is never kept."""
    admission = _admission()
    facts = _facts(FRAUD, ("sim-swap:check",))
    first = admission.admit(facts, CHECK)
    assert admission.admit(facts, CHECK) is first
    live = [admission.authorize(facts, CHECK, correlator=f"c-{n}") for n in range(3)]
    assert [c.correlator for c in live] == ["c-0", "c-1", "c-2"]
    assert admission.authorize(facts, CHECK, correlator="c-0") is not live[0]
    assert admission.admit(facts, CHECK) is first, "the memo of the uncorrelated call stands"
