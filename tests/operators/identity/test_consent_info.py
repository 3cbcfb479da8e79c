"""Consent Info's capture offers with two replicas (two connections) on one database file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from operators.config import example_operator
from operators.errors import CamaraError
from operators.identity.consent_capture import CaptureRequest
from tests.operators.identity.conftest import FakeClock, Operator, build_operator
from tests.operators.interleaving import Interleaved

IDENTITY = "dpv:IdentityVerification"
SCOPES = ["kyc-match:match"]
CALLBACK = "https://app.example/cb"

STATEMENTS_BEFORE_THE_WRITE = (1, 2, 3, 4)
"""Where the other replica's request lands: after each of the first one's statements on the
captures before its INSERT (the statuses' read, the look for the same ask, the cap's count,
the look again: the old code's four)."""


def _replicas(tmp_path: Path) -> tuple[Operator, Operator, str]:
    """Two identity servers over one file, an application and a subscriber to ask about."""
    clock = FakeClock()
    config = example_operator(storage=str(tmp_path / "operator.sqlite3"))
    first, second = build_operator(config, clock), build_operator(config, clock)
    first.register(scope="kyc-match:match consent-info:retrieve")
    return first, second, first.number("approves")


def _ask(operator: Operator, msisdn: str, callback: str) -> CaptureRequest | CamaraError:
    """Consent Info asked for a capture URL: the capture, or the refusal."""
    try:
        answer = operator.server.consent_info.retrieve(
            "app-one", msisdn, SCOPES, IDENTITY, request_capture=True, callback_url=callback)
    except CamaraError as refused:
        return refused
    assert answer.capture is not None
    return answer.capture


def _interleave(operator: Operator, after: int, between: Callable[[], object]) -> None:
    captures = operator.server.captures
    captures.db = Interleaved(captures.db, between, after=after)  # type: ignore[arg-type, assignment]


@pytest.mark.parametrize("after", STATEMENTS_BEFORE_THE_WRITE)
def test_two_replicas_cannot_both_take_the_caps_last_place(tmp_path: Path, after: int) -> None:
    """Before, each replica counted the captures, then inserted: both saw one place left."""
    first, second, msisdn = _replicas(tmp_path)
    limit = first.config.consent_captures_per_hour
    for n in range(limit - 1):
        assert isinstance(_ask(first, msisdn, f"{CALLBACK}/{n}"), CaptureRequest)
    answers: list[CaptureRequest | CamaraError] = []
    _interleave(first, after, lambda: answers.append(_ask(second, msisdn, f"{CALLBACK}/b")))
    answers.append(_ask(first, msisdn, f"{CALLBACK}/a"))
    offered = [a for a in answers if isinstance(a, CaptureRequest)]
    refused = [a for a in answers if isinstance(a, CamaraError)]
    assert len(offered) == 1
    assert [r.code for r in refused] == ["CONSENT_INFO.CAPTURE_FREQUENCY_EXCEEDED"]
    assert len(second.server.captures.of(msisdn, "app-one", IDENTITY)) == limit


@pytest.mark.parametrize("after", STATEMENTS_BEFORE_THE_WRITE)
def test_the_same_ask_at_two_replicas_makes_one_capture(tmp_path: Path, after: int) -> None:
    """Before, both replicas found no pending capture for the ask and each made one: the
    subscriber got two requests for one question."""
    first, second, msisdn = _replicas(tmp_path)
    answers: list[CaptureRequest | CamaraError] = []
    _interleave(first, after, lambda: answers.append(_ask(second, msisdn, CALLBACK)))
    answers.append(_ask(first, msisdn, CALLBACK))
    ids = {a.id for a in answers if isinstance(a, CaptureRequest)}
    assert len(answers) == 2 and len(ids) == 1
    assert len(second.server.captures.of(msisdn, "app-one", IDENTITY)) == 1
