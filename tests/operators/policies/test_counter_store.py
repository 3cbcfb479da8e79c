"""The contract of a counter store: the in-memory and the Redis store decide alike, to the bit.

Every script of calls runs against a fresh :class:`InMemoryCounterStore` and a fresh
:class:`RedisCounterStore` (a real Debian ``redis-server`` from the ``redis_server`` fixture),
and the decisions (allowed, retry-after, remaining; the throttle's code) must be equal. A few
decisions are also checked by hand, so that both stores being wrong alike would still fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.config import Quota, QuotaPeriod
from operators.policies import (
    CounterStore,
    InMemoryCounterStore,
    Limits,
    RedisCounterStore,
    counter_store,
)

_prefixes = itertools.count()


def epoch(*moment: int) -> float:
    """Seconds since 1970 of a UTC date and time."""
    return datetime(*moment, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.fixture
def redis_store(redis_server: str) -> Iterator[Callable[[], RedisCounterStore]]:
    """Makes stores on the shared server, each under a prefix no other store uses."""
    made: list[RedisCounterStore] = []

    def make() -> RedisCounterStore:
        store = RedisCounterStore.from_url(redis_server, prefix=f"test{next(_prefixes)}:")
        made.append(store)
        return store

    yield make
    for store in made:
        store.client.close()


@dataclass(frozen=True)
class Take:
    key: str
    rate: float
    burst: int
    now: float


@dataclass(frozen=True)
class Count:
    key: str
    quota: Quota
    now: float


@dataclass(frozen=True)
class Admit:
    key: str
    limits: Limits
    now: float
    calendar_now: float


Step = Take | Count | Admit


def play(store: CounterStore, script: Sequence[Step]) -> list[Any]:
    """Every decision of ``store`` along ``script``."""
    decisions: list[Any] = []
    for step in script:
        if isinstance(step, Take):
            decisions.append(store.take_token(step.key, step.rate, step.burst, step.now))
        elif isinstance(step, Count):
            decisions.append(store.count_call(step.key, step.quota, step.now))
        else:
            decisions.append(store.admit(step.key, step.limits, step.now, step.calendar_now))
    return decisions


def both(
    make_redis: Callable[[], RedisCounterStore], script: Sequence[Step]
) -> list[Any]:
    """The decisions along ``script``, after asserting the two stores agree on every one."""
    in_memory = play(InMemoryCounterStore(), script)
    in_redis = play(make_redis(), script)
    for index, (mine, theirs) in enumerate(zip(in_memory, in_redis, strict=True)):
        assert mine == theirs, f"step {index} {script[index]}: memory {mine}, redis {theirs}"
    return in_memory


def takes(key: str, rate: float, burst: int, times: Sequence[float]) -> list[Step]:
    return [Take(key, rate, burst, t) for t in times]


def counts(key: str, quota: Quota, times: Sequence[float]) -> list[Step]:
    return [Count(key, quota, t) for t in times]


def test_bucket_burst_then_refill(redis_store: Callable[[], RedisCounterStore]) -> None:
    script = takes("app", 2.0, 3, [0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 0.5, 0.75, 10.0, 10.0])
    decisions = both(redis_store, script)
    assert [d.allowed for d in decisions] == [
        True, True, True, False, False, True, False, False, True, True,
    ]
    assert decisions[3].retry_after == pytest.approx(0.5)
    assert decisions[4].retry_after == pytest.approx(0.4)  # 0.2 tokens at 0.1
    assert decisions[2].remaining == 0.0
    assert decisions[9].remaining == 1.0  # full again (3), two taken


def test_bucket_with_awkward_rates_and_a_clock_that_steps_back(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    times = [0.0, 0.3, 0.29, 0.7, 1.1, 1.1000000000000001, 2.9, 3.3333333333333335, 100.0]
    script = takes("odd", 1 / 3, 2, times) + takes("fast", 1000.0, 1, [t / 1000 for t in times])
    both(redis_store, script)


def test_a_bucket_whose_terms_change_starts_afresh(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    script = takes("app", 1.0, 1, [0.0, 0.0]) + takes("app", 1.0, 2, [0.0, 0.0, 0.0])
    decisions = both(redis_store, script)
    assert [d.allowed for d in decisions] == [True, False, True, True, False]


@pytest.mark.parametrize(
    ("period", "start"),
    [(QuotaPeriod.MINUTE, 0.0), (QuotaPeriod.HOUR, 7190.0), (QuotaPeriod.DAY, 86390.0)],
)
def test_fixed_windows_reset_on_their_boundaries(
    redis_store: Callable[[], RedisCounterStore], period: QuotaPeriod, start: float
) -> None:
    quota = Quota(limit=2, period=period, window="fixed")
    length = {QuotaPeriod.MINUTE: 60.0, QuotaPeriod.HOUR: 3600.0, QuotaPeriod.DAY: 86400.0}
    boundary = (start // length[period] + 1) * length[period]
    times = [start, start + 1, start + 2, boundary - 0.001, boundary, boundary + 1, boundary + 2]
    decisions = both(redis_store, counts("app", quota, times))
    assert [d.allowed for d in decisions] == [True, True, False, False, True, True, False]
    assert decisions[2].retry_after == pytest.approx(boundary - start - 2)
    assert [d.remaining for d in decisions[:2]] == [1, 0]


def test_sliding_window_weighs_the_previous_minute(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    quota = Quota(limit=4, period=QuotaPeriod.MINUTE, window="sliding")
    times = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0, 90.0, 91.0, 105.0, 119.0, 150.0, 300.0]
    decisions = both(redis_store, counts("app", quota, times))
    # At 60 the previous minute (4 calls) weighs fully: refused until it has slid a quarter.
    assert not decisions[5].allowed
    assert decisions[5].retry_after == pytest.approx(15.0)
    assert decisions[6].allowed


def test_sliding_window_full_on_its_own_points_to_the_next_window(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    quota = Quota(limit=3, period=QuotaPeriod.MINUTE, window="sliding")
    decisions = both(redis_store, counts("app", quota, [0.0, 1.0, 2.0, 3.0, 59.0, 70.0, 200.0]))
    assert [d.allowed for d in decisions] == [True, True, True, False, False, False, True]


@pytest.mark.parametrize("window", ["fixed", "sliding"])
def test_calendar_months_across_short_months_leap_years_and_new_year(
    redis_store: Callable[[], RedisCounterStore], window: str
) -> None:
    quota = Quota(limit=2, period=QuotaPeriod.MONTH, window=window)  # type: ignore[arg-type]
    times = [
        epoch(2028, 1, 31, 23, 59, 58),
        epoch(2028, 1, 31, 23, 59, 59),
        epoch(2028, 1, 31, 23, 59, 59, 999000),
        epoch(2028, 2, 1),  # a new month
        epoch(2028, 2, 14),
        epoch(2028, 2, 29, 12),  # a leap day
        epoch(2028, 3, 1),
        epoch(2028, 3, 20),
        epoch(2028, 12, 31, 23, 59),
        epoch(2028, 12, 31, 23, 59, 30),
        epoch(2028, 12, 31, 23, 59, 45),
        epoch(2029, 1, 1),
        epoch(2029, 1, 16, 12),
        epoch(2029, 2, 28, 23),
    ]
    decisions = both(redis_store, counts("app", quota, times))
    assert [d.allowed for d in decisions[:3]] == [True, True, False]
    if window == "fixed":
        assert decisions[2].retry_after == pytest.approx(0.001, abs=1e-6)  # float epoch
        assert decisions[3].allowed


def test_admit_consumes_nothing_from_the_counter_that_did_not_refuse(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    tight_bucket = Limits(1.0, 1, Quota(limit=2, period=QuotaPeriod.MINUTE))
    tight_quota = Limits(1 / 60, 2, Quota(limit=1, period=QuotaPeriod.MINUTE))
    script: list[Step] = [Admit("a", tight_bucket, t, 1000.0 + t) for t in (0, 0, 0, 1, 2, 3)]
    script += [Admit("b", tight_quota, t, 1000.0 + t) for t in (0, 0, 0, 19.9, 20.0, 21.0)]
    decisions = both(redis_store, script)
    assert [d.code for d in decisions[:6]] == [
        None, "TOO_MANY_REQUESTS", "TOO_MANY_REQUESTS", None, "QUOTA_EXCEEDED", "QUOTA_EXCEEDED",
    ]
    # b's quota refusals left its second token in the bucket: at the new minute (1020) it passes.
    assert [d.code for d in decisions[6:]] == [
        None, "QUOTA_EXCEEDED", "QUOTA_EXCEEDED", "QUOTA_EXCEEDED", None, "TOO_MANY_REQUESTS",
    ]
    assert decisions[7].retry_after == pytest.approx(20.0)


def test_admit_without_a_quota_is_the_bucket_alone(
    redis_store: Callable[[], RedisCounterStore],
) -> None:
    limits = Limits(10.0, 2)
    decisions = both(redis_store, [Admit("k", limits, t, 0.0) for t in (0, 0, 0, 0.05, 0.1)])
    assert [d.allowed for d in decisions] == [True, True, False, False, True]
    assert decisions[2].retry_after == pytest.approx(0.1)


_quotas = st.builds(
    Quota,
    limit=st.integers(1, 6),
    period=st.sampled_from([QuotaPeriod.MINUTE, QuotaPeriod.HOUR, QuotaPeriod.MONTH]),
    window=st.sampled_from(["fixed", "sliding"]),
)
_limits = st.builds(
    Limits,
    rate=st.sampled_from([0.1, 1 / 3, 1.0, 2.5, 50.0]),
    burst=st.integers(1, 4),
    quota=st.none() | _quotas,
)
_step = st.tuples(
    st.sampled_from(["take", "count", "admit"]),
    st.sampled_from(["a", "b"]),
    st.floats(0.0, 30.0) | st.sampled_from([0.0, 60.0, 3600.0, 86400.0 * 15]),
    _limits,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, min_size=1, max_size=40), limits=st.lists(_limits, min_size=2))
def test_any_script_gets_the_same_decisions_from_both_stores(
    redis_store: Callable[[], RedisCounterStore],
    steps: list[tuple[str, str, float, Limits]],
    limits: list[Limits],
) -> None:
    fixed = {"a": limits[0], "b": limits[1]}  # mostly the same terms per key, sometimes not
    now, calendar = 0.0, epoch(2028, 1, 30)
    script: list[Step] = []
    for kind, key, dt, drawn in steps:
        now += dt
        calendar += dt
        terms = fixed[key] if dt < 20 else drawn
        quota = terms.quota or Quota(limit=3, period=QuotaPeriod.MINUTE, window="sliding")
        if kind == "take":
            script.append(Take(key, terms.rate, terms.burst, now))
        elif kind == "count":
            script.append(Count(key, quota, calendar))
        else:
            script.append(Admit(key, terms, now, calendar))
    both(redis_store, script)


def test_quotas_survive_a_restart_of_the_gateway(redis_server: str) -> None:
    """A new store object (a restarted process) on the same server continues the count."""
    quota = Quota(limit=3, period=QuotaPeriod.MONTH)
    now = epoch(2028, 5, 10)
    first = RedisCounterStore.from_url(redis_server, prefix="restart:")
    assert first.count_call("app", quota, now).remaining == 2
    assert first.count_call("app", quota, now + 60).remaining == 1
    first.client.close()
    second = RedisCounterStore.from_url(redis_server, prefix="restart:")
    assert second.count_call("app", quota, now + 3600).remaining == 0
    refused = second.count_call("app", quota, now + 7200)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(epoch(2028, 6, 1) - now - 7200)
    second.client.close()


def test_keys_expire_once_they_no_longer_matter(redis_server: str) -> None:
    store = RedisCounterStore.from_url(redis_server, prefix="expiry:")
    store.take_token("app", 2.0, 10, 0.0)  # one token short: full again in 0.5 s
    store.count_call("app", Quota(limit=5, period=QuotaPeriod.MINUTE), 30.0)  # window ends at 60
    store.count_call("s", Quota(limit=5, period=QuotaPeriod.MINUTE, window="sliding"), 30.0)
    client = store.client
    slack = 60_000
    assert 0 < slack < client.pttl("expiry:{app}:b") <= 500 + slack
    assert 30_000 + slack - 1000 < client.pttl("expiry:{app}:q") <= 30_000 + slack
    assert 90_000 + slack - 1000 < client.pttl("expiry:{s}:q") <= 90_000 + slack
    client.close()


def test_the_script_runs_by_its_digest(redis_server: str) -> None:
    store = RedisCounterStore.from_url(redis_server, prefix="sha:")
    for t in range(5):
        store.take_token("app", 1.0, 1, float(t))
    stats = store.client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] >= 5
    store.client.close()


def test_forget_and_tracked_on_both_stores(redis_store: Callable[[], RedisCounterStore]) -> None:
    for store in (InMemoryCounterStore(), redis_store()):
        store.take_token("app-1#free", 1.0, 1, 0.0)
        store.count_call("app-1#gold", Quota(limit=1), 0.0)
        store.take_token("app-10#free", 1.0, 1, 0.0)
        store.take_token("a*p#free", 1.0, 1, 0.0)
        assert store.tracked == 4
        store.forget("app-1#")
        store.forget("a*")  # a literal prefix, not a pattern
        assert store.tracked == 1
        assert store.take_token("app-1#free", 1.0, 1, 0.0).allowed  # fresh again
        assert not store.take_token("app-10#free", 1.0, 1, 0.0).allowed


def test_counter_store_chooses_by_url(redis_server: str) -> None:
    assert isinstance(counter_store(None), InMemoryCounterStore)
    assert isinstance(counter_store(""), InMemoryCounterStore)
    store = counter_store(redis_server, prefix="factory:")
    assert isinstance(store, RedisCounterStore)
    assert store.take_token("app", 1.0, 1, 0.0).allowed
    store.client.close()
