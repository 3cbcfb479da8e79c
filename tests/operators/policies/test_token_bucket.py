from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.policies import TokenBucket
from tests.operators.policies.conftest import FakeClock


def test_starts_full_and_admits_the_burst_then_refuses(fake_clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2.0, burst=5, clock=fake_clock)
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]


def test_refills_lazily_at_rate_up_to_burst(fake_clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2.0, burst=5, clock=fake_clock)
    assert bucket.try_acquire(5)
    fake_clock.advance(1.0)
    assert bucket.available() == pytest.approx(2.0)
    fake_clock.advance(100.0)
    assert bucket.available() == 5.0


def test_acquire_is_all_or_nothing(fake_clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1.0, burst=3, clock=fake_clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(2)
    assert bucket.available() == pytest.approx(1.0)


def test_retry_after_is_the_time_to_refill_the_missing_tokens(fake_clock: FakeClock) -> None:
    bucket = TokenBucket(rate=4.0, burst=2, clock=fake_clock)
    assert bucket.retry_after() == 0.0
    assert bucket.try_acquire(2)
    assert bucket.retry_after() == pytest.approx(0.25)
    assert bucket.retry_after(2) == pytest.approx(0.5)
    assert bucket.retry_after(3) == math.inf
    fake_clock.advance(0.25)
    assert bucket.try_acquire()


def test_rejects_bad_settings(fake_clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, burst=1, clock=fake_clock)
    with pytest.raises(ValueError):
        TokenBucket(rate=1.0, burst=0, clock=fake_clock)


@given(
    rate=st.floats(min_value=0.1, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=50),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=2.0), st.integers(min_value=1, max_value=5)),
        min_size=10,
        max_size=80,
    ),
)
def test_never_admits_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock)
    admitted: list[tuple[float, int]] = []
    for dt, n in steps:
        clock.advance(dt)
        if bucket.try_acquire(n):
            admitted.append((clock.now, n))
    # Over every interval [t_i, t_j] between admissions, tokens admitted <= burst + rate * span.
    for i in range(len(admitted)):
        total = 0
        for j in range(i, len(admitted)):
            total += admitted[j][1]
            span = admitted[j][0] - admitted[i][0]
            assert total <= burst + rate * span + 1e-6
