"""Call statistics: every identified call counted once, across batched writes and stop, with
latency quantiles within the sketch's relative accuracy, and the gateway's hook over HTTP."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest

from operators.gateway.call_statistics import (
    RELATIVE_ACCURACY,
    CallStatistics,
    CallTally,
    LatencyHistogram,
    day_of,
)
from operators.storage import Database

from .conftest import ADMIN, START, FakeClock, Harness

DAY = 86_400.0
TODAY = day_of(START)


class GatedDatabase(Database):
    """A database whose transactions wait for the test's go-ahead (a write in flight), or
    fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failing = False

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("the test never opened the gate")
        if self.failing:
            raise OSError("disk full")
        with super().transaction() as db:
            yield db


def total(statistics: CallStatistics, *, pending: bool = False) -> int:
    tallies = statistics.tallies(["a", "b"], date(2000, 1, 1), date(2100, 1, 1), pending=pending)
    return sum(t.calls for t in tallies)


def by_key(tallies: list[CallTally]) -> dict[tuple[str, str, date, int, str, bool], int]:
    return {(t.client_id, t.api, t.day, t.status, t.code, t.counted): t.calls for t in tallies}


def test_tallies_per_application_api_day_status_and_code() -> None:
    clock = FakeClock()
    statistics = CallStatistics(Database(), clock)
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    statistics.record("a", "sim-swap", 200, "", 0.02, counted=True)
    statistics.record("a", "sim-swap", 429, "QUOTA_EXCEEDED", 0.001, counted=False)
    statistics.record("b", "location-verification", 404, "IDENTIFIER_NOT_FOUND", 0.03,
                      counted=True)
    assert statistics.flush() == 4
    clock.advance(DAY)
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    assert statistics.flush() == 1
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)  # pending, still read
    tomorrow = day_of(clock())
    found = by_key(statistics.tallies(["a", "b"], TODAY, tomorrow))
    assert found == {
        ("a", "sim-swap", TODAY, 200, "", True): 2,
        ("a", "sim-swap", TODAY, 429, "QUOTA_EXCEEDED", False): 1,
        ("b", "location-verification", TODAY, 404, "IDENTIFIER_NOT_FOUND", True): 1,
        ("a", "sim-swap", tomorrow, 200, "", True): 2,
    }
    assert by_key(statistics.tallies(["b"], tomorrow, tomorrow)) == {}
    assert len(statistics.tallies(["a"], TODAY, TODAY)) == 2
    assert statistics.tallies(["a"], tomorrow, TODAY) == []


def test_the_day_is_the_utc_day_of_the_epoch_clock() -> None:
    clock = FakeClock()
    clock.now = 1_767_225_599.5  # 2025-12-31T23:59:59.5Z
    statistics = CallStatistics(Database(), clock)
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    clock.advance(1.0)
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    statistics.flush()
    days = [t.day for t in statistics.tallies(["a"], date(2025, 12, 1), date(2026, 1, 31))]
    assert days == [date(2025, 12, 31), date(2026, 1, 1)]


async def test_no_call_is_lost_across_a_write_in_flight_and_stop() -> None:
    db = GatedDatabase()
    statistics = CallStatistics(db, FakeClock(), interval=3600)
    for _ in range(100):
        statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    db.gate.clear()
    writing = asyncio.create_task(statistics.flush_soon())
    while not db.entered.is_set():  # the batch of 100 is in the worker thread now
        await asyncio.sleep(0)
    for _ in range(37):  # recorded while it is being written: they go in the next batch
        statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    assert statistics.pending_calls == 37
    db.gate.set()
    assert await writing == 100
    await statistics.start()
    for _ in range(5):
        statistics.record("b", "sim-swap", 500, "INTERNAL", 0.2, counted=True)
    await statistics.stop()
    assert statistics.pending_calls == 0
    assert total(statistics) == 142
    assert await statistics.flush_soon() == 0  # nothing written twice
    assert total(statistics) == 142


async def test_a_failed_write_keeps_its_calls_for_the_next_one() -> None:
    db = GatedDatabase()
    statistics = CallStatistics(db, FakeClock())
    for _ in range(10):
        statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    db.failing = True
    assert await statistics.flush_soon() == 0
    statistics.record("a", "sim-swap", 200, "", 0.01, counted=True)
    with pytest.raises(OSError):
        statistics.flush()
    assert statistics.pending_calls == 11
    assert total(statistics, pending=True) == 11  # the reader still shows them
    db.failing = False
    assert statistics.flush() == 11
    assert total(statistics) == 11
    histogram = statistics.tallies(["a"], TODAY, TODAY)[0].latency
    assert histogram.count == 11


def test_quantiles_within_the_documented_relative_accuracy() -> None:
    rng = random.Random(13)
    latencies = [rng.lognormvariate(-3.5, 0.8) for _ in range(5000)]  # ~30 ms median
    clock = FakeClock()
    statistics = CallStatistics(Database(), clock)
    for i, seconds in enumerate(latencies):  # spread over two days, two statuses, two flushes
        if i == 2500:
            statistics.flush()
            clock.advance(DAY)
        status = 200 if i % 7 else 404
        statistics.record("a", "sim-swap", status, "", seconds, counted=True)
    statistics.flush()
    merged = LatencyHistogram()
    for tally in statistics.tallies(["a"], TODAY, day_of(clock())):
        merged.merge(tally.latency)
    assert merged.count == len(latencies)
    ordered = sorted(latencies)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        exact = ordered[int(q * (len(ordered) - 1))]
        estimate = merged.quantile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact * (1 + 1e-9), q


def test_known_latencies_and_an_empty_histogram() -> None:
    histogram = LatencyHistogram()
    assert histogram.quantile(0.5) is None
    for ms in range(1, 101):  # 1 ms .. 100 ms
        histogram.add(ms / 1000)
    p50, p95 = histogram.quantile(0.5), histogram.quantile(0.95)
    assert p50 == pytest.approx(0.050, rel=RELATIVE_ACCURACY)
    assert p95 == pytest.approx(0.095, rel=RELATIVE_ACCURACY)
    histogram.add(0.0)  # below the floor: counted, as the smallest latency
    assert histogram.count == 101 and histogram.quantile(0.0) == pytest.approx(1e-6, rel=0.01)
    with pytest.raises(ValueError):
        histogram.quantile(1.5)


# -- the gateway's hook, over HTTP ---------------------------------------------------------


async def test_the_gateway_counts_every_identified_call_refused_ones_too(
    harness: Harness,
) -> None:
    statistics = harness.operator.gateway.statistics
    subscribed = await harness.http.put(
        "/admin/subscriptions/fraud-app/sim-swap", json={"plan": "tiny"}, headers=ADMIN
    )
    assert subscribed.status_code == 200
    token = await harness.three_legged()
    assert (await harness.check(token)).status_code == 200
    number = harness.number("approves")
    assert (await harness.check(token, {"maxAge": 24, "phoneNumber": number})).status_code == 422
    assert (await harness.check(token)).status_code == 200
    assert (await harness.check(token)).status_code == 429  # the tiny plan's quota is 3
    assert (await harness.check(None)).status_code == 401  # nobody identified: not counted
    assert (await harness.check("not-a-token")).status_code == 401
    scopeless = await harness.two_legged(scope="device-roaming-status:read "
                                         "dpv:FraudPreventionAndDetection")
    assert (await harness.check(scopeless)).status_code == 403
    disabled = await harness.http.post(
        f"{harness.operator.issuer}/admin/clients/fraud-app/disable", headers=ADMIN
    )
    assert disabled.status_code in (200, 204), disabled.text
    refused = await harness.check(token)  # a valid token of a disabled client
    assert refused.status_code == 403 and "client_disabled" in refused.json()["message"]
    assert statistics.pending_calls == 6
    await harness.operator.stop()  # stopping writes what is pending
    assert statistics.pending_calls == 0
    found = by_key(statistics.tallies(["fraud-app"], TODAY, TODAY))
    assert found == {
        ("fraud-app", "sim-swap", TODAY, 200, "", True): 2,
        ("fraud-app", "sim-swap", TODAY, 422, "UNNECESSARY_IDENTIFIER", True): 1,
        ("fraud-app", "sim-swap", TODAY, 429, "QUOTA_EXCEEDED", False): 1,
        ("fraud-app", "sim-swap", TODAY, 403, "PERMISSION_DENIED", False): 2,
    }


async def test_statistics_are_written_at_the_operators_stop(
    harness: Harness, clock: FakeClock
) -> None:
    operator = harness.operator
    await operator.start()
    token = await harness.three_legged()
    for _ in range(3):
        assert (await harness.check(token)).status_code == 200
    await operator.stop()
    rows = operator.db.all("SELECT SUM(calls) AS n FROM call_statistics")
    assert rows[0]["n"] == 3
