from __future__ import annotations

import itertools
import math

import pytest

from operators.policies import CoDelShedder, LoadShedder, NoShedding
from tests.operators.policies.conftest import FakeClock


def test_refuses_when_expected_wait_exceeds_target() -> None:
    shedder = LoadShedder(target=1.0)
    shedder.record_service_time(0.5)
    assert shedder.admit(queue_length=4, servers=2)  # 4 * 0.5 / 2 = 1.0, at the target
    assert not shedder.admit(queue_length=5, servers=2)  # 1.25 s
    assert shedder.admit(queue_length=5, servers=4)


def test_admits_until_it_has_seen_a_service_time() -> None:
    assert LoadShedder(target=0.0).admit(queue_length=1000, servers=1)


def test_mean_service_time_is_an_ewma() -> None:
    shedder = LoadShedder(target=1.0, alpha=0.5)
    shedder.record_service_time(1.0)
    shedder.record_service_time(3.0)
    assert shedder.mean_service_time == pytest.approx(2.0)
    shedder.record_service_time(0.0)
    assert shedder.mean_service_time == pytest.approx(1.0)


def test_codel_drops_only_after_an_interval_above_target(fake_clock: FakeClock) -> None:
    codel = CoDelShedder(target=0.005, interval=0.1, clock=fake_clock)
    assert not codel.on_dequeue(0.02)  # above target: start the interval
    fake_clock.advance(0.05)
    assert not codel.on_dequeue(0.02)
    fake_clock.advance(0.05)  # a whole interval above target
    assert codel.on_dequeue(0.02)
    assert codel.dropping


def test_codel_resets_when_sojourn_falls_below_target(fake_clock: FakeClock) -> None:
    codel = CoDelShedder(target=0.005, interval=0.1, clock=fake_clock)
    codel.on_dequeue(0.02)
    fake_clock.advance(0.09)
    assert not codel.on_dequeue(0.001)
    fake_clock.advance(0.02)
    assert not codel.on_dequeue(0.02)  # the interval starts over
    assert not codel.dropping


def test_codel_drop_spacing_follows_interval_over_sqrt_count(fake_clock: FakeClock) -> None:
    codel = CoDelShedder(target=0.005, interval=0.1, clock=fake_clock)
    codel.on_dequeue(0.02)
    fake_clock.advance(0.1)
    drops = []
    for _ in range(4000):  # dequeue an item every millisecond, all of them late
        if codel.on_dequeue(0.02):
            drops.append(fake_clock.now)
        fake_clock.advance(0.001)
    gaps = [b - a for a, b in itertools.pairwise(drops)]
    for count, gap in enumerate(gaps[:8], start=1):  # the k-th gap is interval / sqrt(k)
        assert gap == pytest.approx(0.1 / math.sqrt(count), abs=0.0011)
    assert gaps[0] > gaps[-1]


def test_codel_leaves_dropping_state_below_target(fake_clock: FakeClock) -> None:
    codel = CoDelShedder(target=0.005, interval=0.1, clock=fake_clock)
    codel.on_dequeue(0.02)
    fake_clock.advance(0.1)
    assert codel.on_dequeue(0.02)
    assert not codel.on_dequeue(0.001)
    assert not codel.dropping


def test_codel_never_drops_the_last_item(fake_clock: FakeClock) -> None:
    codel = CoDelShedder(target=0.005, interval=0.1, clock=fake_clock)
    codel.on_dequeue(0.02)
    fake_clock.advance(0.2)
    assert not codel.on_dequeue(0.02, backlog=0)


def test_no_shedding_admits_and_keeps_everything() -> None:
    shedder = NoShedding()
    shedder.record_service_time(100.0)
    assert shedder.admit(queue_length=10**6, servers=1)
    assert not shedder.on_dequeue(3600.0)
