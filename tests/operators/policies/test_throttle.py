from __future__ import annotations

import pytest

from operators.config import Plan, Quota, QuotaPeriod
from operators.policies import NoThrottle, Throttle, ThrottleDecision
from tests.operators.policies.conftest import FakeClock


def plan(rate: float = 1.0, burst: int = 2, limit: int | None = None, name: str = "free") -> Plan:
    quota = Quota(limit=limit, period=QuotaPeriod.MINUTE) if limit is not None else None
    return Plan(name=name, rate_per_second=rate, burst=burst, quota=quota)


def test_burst_then_too_many_requests_with_retry_after(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free = plan(rate=2.0, burst=2)
    assert throttle.check("app", free).allowed
    assert throttle.check("app", free).allowed
    refused = throttle.check("app", free)
    assert (refused.allowed, refused.code) == (False, "TOO_MANY_REQUESTS")
    assert refused.retry_after == pytest.approx(0.5)
    fake_clock.advance(0.5)
    assert throttle.check("app", free).allowed


def test_quota_exceeded_with_time_to_the_next_window(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free = plan(rate=100.0, burst=100, limit=3)
    assert all(throttle.check("app", free).allowed for _ in range(3))
    fake_clock.advance(20.0)
    refused = throttle.check("app", free)
    assert refused.code == "QUOTA_EXCEEDED"
    assert refused.retry_after == pytest.approx(40.0)
    fake_clock.advance(40.0)
    assert throttle.check("app", free).allowed


def test_a_call_refused_by_the_bucket_consumes_no_quota(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free = plan(rate=1.0, burst=1, limit=2)
    assert throttle.check("app", free).allowed
    for _ in range(10):
        assert throttle.check("app", free).code == "TOO_MANY_REQUESTS"
    fake_clock.advance(1.0)
    assert throttle.check("app", free).allowed  # the second and last unit of quota
    fake_clock.advance(1.0)
    assert throttle.check("app", free).code == "QUOTA_EXCEEDED"


def test_a_call_refused_by_the_quota_consumes_no_token(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free = plan(rate=1 / 60, burst=2, limit=1)  # one token a minute
    assert throttle.check("app", free).allowed  # one token left
    # Had a refusal taken that token, the next refusal would say TOO_MANY_REQUESTS.
    assert [throttle.check("app", free).code for _ in range(5)] == ["QUOTA_EXCEEDED"] * 5
    fake_clock.advance(60.0)
    assert throttle.check("app", free).allowed
    assert throttle.check("app", free).code == "QUOTA_EXCEEDED"


def test_applications_and_plans_are_throttled_separately(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free, gold = plan(burst=1), plan(burst=1, name="gold")
    assert throttle.check("a", free).allowed
    assert not throttle.check("a", free).allowed
    assert throttle.check("b", free).allowed
    assert throttle.check("a", gold).allowed
    assert throttle.tracked == 3


def test_state_does_not_grow_per_call(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    free = plan(rate=1000.0, burst=1000, limit=10_000)
    for _ in range(500):
        throttle.check("app", free)
        fake_clock.advance(0.01)
    assert throttle.tracked == 1
    throttle.forget("app")
    assert throttle.tracked == 0


def test_quotas_use_the_calendar_clock() -> None:
    monotonic = FakeClock(start=5.0)
    calendar = FakeClock(start=59.0)  # one second before a minute boundary
    throttle = Throttle(monotonic, calendar_clock=calendar)
    free = plan(rate=100.0, burst=100, limit=1)
    assert throttle.check("app", free).allowed
    assert throttle.check("app", free).retry_after == pytest.approx(1.0)
    calendar.advance(1.0)
    assert throttle.check("app", free).allowed


def test_a_changed_plan_under_the_same_name_takes_effect(fake_clock: FakeClock) -> None:
    throttle = Throttle(fake_clock)
    assert throttle.check("app", plan(burst=1)).allowed
    assert not throttle.check("app", plan(burst=1)).allowed
    assert throttle.check("app", plan(burst=5)).allowed


def test_an_empty_throttle_is_truthy(fake_clock: FakeClock) -> None:
    assert Throttle(fake_clock)  # so ``throttle or NoThrottle()`` keeps a fresh one


def test_no_throttle_allows_everything() -> None:
    free = plan(rate=0.001, burst=1, limit=1)
    decisions = [NoThrottle().check("app", free) for _ in range(100)]
    assert all(d == ThrottleDecision(True, None, 0.0) for d in decisions)
