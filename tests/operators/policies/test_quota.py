from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.config import QuotaPeriod
from operators.policies import QuotaCounter
from operators.policies.quota import QuotaWindow
from tests.operators.policies.conftest import FakeClock

QUOTA_WINDOWS: tuple[QuotaWindow, ...] = ("fixed", "sliding")


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def test_fixed_refuses_at_limit_and_frees_at_next_window(fake_clock: FakeClock) -> None:
    quota = QuotaCounter(3, QuotaPeriod.MINUTE, "fixed", fake_clock)
    assert [quota.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert quota.remaining() == 0
    fake_clock.advance(59.9)
    assert not quota.try_acquire()
    fake_clock.advance(0.1)  # t = 60: a new minute
    assert quota.remaining() == 3
    assert quota.try_acquire()


def test_fixed_windows_are_aligned_on_multiples_of_the_period() -> None:
    clock = FakeClock(start=3590.0)  # ten seconds before the second hour
    quota = QuotaCounter(1, QuotaPeriod.HOUR, "fixed", clock)
    assert quota.try_acquire()
    assert not quota.try_acquire()
    assert quota.retry_after() == pytest.approx(10.0)
    clock.advance(10.0)
    assert quota.try_acquire()


def test_a_refused_request_consumes_nothing(fake_clock: FakeClock) -> None:
    quota = QuotaCounter(5, QuotaPeriod.DAY, "fixed", fake_clock)
    assert quota.try_acquire(4)
    assert not quota.try_acquire(2)
    assert quota.remaining() == 1
    assert quota.retry_after() == 0.0


def test_month_follows_the_calendar_of_an_epoch_clock() -> None:
    clock = FakeClock(start=epoch(2024, 2, 29, 23, 59))  # leap day, one minute to March
    quota = QuotaCounter(2, QuotaPeriod.MONTH, "fixed", clock)
    assert quota.try_acquire(2)
    assert not quota.try_acquire()
    assert quota.retry_after() == pytest.approx(60.0)
    clock.advance(59.0)
    assert not quota.try_acquire()
    clock.advance(1.0)  # 2024-03-01T00:00:00Z
    assert quota.try_acquire(2)
    # March has 31 days: the next window opens on April 1st, not after 29 or 30 days.
    clock.now = epoch(2024, 3, 31, 23, 0)
    assert not quota.try_acquire()
    clock.now = epoch(2024, 4, 1)
    assert quota.remaining() == 2


def test_sliding_weights_the_previous_window_by_its_remaining_overlap(
    fake_clock: FakeClock,
) -> None:
    quota = QuotaCounter(10, QuotaPeriod.MINUTE, "sliding", fake_clock)
    assert quota.try_acquire(10)
    fake_clock.advance(60.0)  # new window: the 10 previous calls weigh fully
    assert quota.remaining() == 0
    fake_clock.advance(15.0)  # a quarter in: they weigh 7.5
    assert quota.remaining() == 2
    assert quota.try_acquire(2)
    assert not quota.try_acquire()
    # 10 * (60 - s) / 60 + 2 <= 9 when s >= 18: three more seconds.
    assert quota.retry_after() == pytest.approx(3.0)
    fake_clock.advance(3.0)
    assert quota.try_acquire()


def test_sliding_forgets_a_previous_window_that_is_not_adjacent(fake_clock: FakeClock) -> None:
    quota = QuotaCounter(4, QuotaPeriod.MINUTE, "sliding", fake_clock)
    assert quota.try_acquire(4)
    fake_clock.advance(120.0)
    assert quota.remaining() == 4


def test_sliding_retry_after_when_the_current_window_alone_is_full(fake_clock: FakeClock) -> None:
    quota = QuotaCounter(4, QuotaPeriod.MINUTE, "sliding", fake_clock)
    fake_clock.advance(30.0)
    assert quota.try_acquire(4)
    # Next window: 4 * (120 - t) / 60 <= 3 when t >= 75, i.e. 45 s from t = 30.
    assert quota.retry_after() == pytest.approx(45.0)
    fake_clock.advance(45.0)
    assert quota.try_acquire()
    assert not quota.try_acquire()


def test_sliding_is_never_more_permissive_than_fixed(fake_clock: FakeClock) -> None:
    quota = QuotaCounter(3, QuotaPeriod.MINUTE, "sliding", fake_clock)
    assert quota.try_acquire(3)
    assert not quota.try_acquire()


@given(
    limit=st.integers(min_value=1, max_value=20),
    period=st.sampled_from([QuotaPeriod.MINUTE, QuotaPeriod.HOUR]),
    window=st.sampled_from(QUOTA_WINDOWS),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=900.0), st.integers(1, 4)),
        min_size=10,
        max_size=80,
    ),
)
def test_never_admits_more_than_limit_in_a_fixed_window(
    limit: int, period: QuotaPeriod, window: QuotaWindow, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock()
    quota = QuotaCounter(limit, period, window, clock)
    length = 60.0 if period is QuotaPeriod.MINUTE else 3600.0
    per_window: Counter[int] = Counter()
    for dt, n in steps:
        clock.advance(dt)
        if quota.try_acquire(n):
            per_window[int(clock.now // length)] += n
        assert quota.remaining() <= limit - per_window[int(clock.now // length)]
    assert all(count <= limit for count in per_window.values())
