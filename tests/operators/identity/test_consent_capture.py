"""One-time codes of consent captures, with two replicas (two connections) on one file."""

from __future__ import annotations

from pathlib import Path

from operators.identity.consent_capture import MAX_CODE_ATTEMPTS, ConsentCaptures
from operators.storage import Database
from tests.operators.interleaving import Interleaved

WRONG = "not-it"


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _replicas(tmp_path: Path) -> tuple[ConsentCaptures, ConsentCaptures, str, str]:
    """Two replicas' stores over one file, a capture and its live code."""
    path = str(tmp_path / "operator.sqlite3")
    clock = Clock()
    first = ConsentCaptures(Database(path), clock=clock)
    second = ConsentCaptures(Database(path), clock=clock)
    capture = first.offer("app-1", "+34600000001", "dpv:FraudPreventionAndDetection#x",
                          ("number-verification:verify",), None)
    code = first.new_code(capture.id)
    assert code is not None
    return first, second, capture.id, code


def _attempts(store: ConsentCaptures, capture_id: str) -> int:
    capture = store.get(capture_id)
    assert capture is not None
    return capture.code_attempts


def test_a_right_code_works_once_and_every_try_counts(tmp_path: Path) -> None:
    first, second, capture_id, code = _replicas(tmp_path)
    assert not first.check_code(capture_id, WRONG)
    assert first.check_code(capture_id, code)
    assert not second.check_code(capture_id, code)  # used up, for every replica
    assert _attempts(first, capture_id) == 2


def test_a_code_past_its_tries_or_its_lifetime_is_refused(tmp_path: Path) -> None:
    first, _, capture_id, code = _replicas(tmp_path)
    for _ in range(MAX_CODE_ATTEMPTS):
        assert not first.check_code(capture_id, WRONG)
    assert not first.check_code(capture_id, code)
    assert _attempts(first, capture_id) == MAX_CODE_ATTEMPTS

    first, _, capture_id, code = _replicas(tmp_path / "expired")
    assert isinstance(first.clock, Clock)
    first.clock.now += 10 * 60
    assert not first.check_code(capture_id, code)


def test_two_replicas_sent_the_right_code_at_once_accept_it_once(tmp_path: Path) -> None:
    """Before, each replica read the live code, then both used it: one code, two sign-ins."""
    first, second, capture_id, code = _replicas(tmp_path)
    results: list[bool] = []
    first.db = Interleaved(  # type: ignore[assignment]
        first.db, lambda: results.append(second.check_code(capture_id, code)))
    results.append(first.check_code(capture_id, code))
    assert sorted(results) == [False, True]


def test_parallel_guesses_get_no_try_beyond_the_limit(tmp_path: Path) -> None:
    """Before, two guesses read one try left, and both were compared: the right code then
    passed on a sixth try."""
    first, second, capture_id, code = _replicas(tmp_path)
    for _ in range(MAX_CODE_ATTEMPTS - 1):
        assert not first.check_code(capture_id, WRONG)
    late: list[bool] = []
    first.db = Interleaved(  # type: ignore[assignment]
        first.db, lambda: late.append(second.check_code(capture_id, code)))
    assert not first.check_code(capture_id, WRONG)  # the last try, taken first
    assert late == [False]
    assert _attempts(second, capture_id) == MAX_CODE_ATTEMPTS
