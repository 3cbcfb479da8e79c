"""The cheap clocks and timers take the places SimPy's own would, so results do not move."""

from __future__ import annotations

import math
import random

import simpy

from sim.engine import _run_until
from sim.metrics import _MAPPING, Metrics
from sim.tiers.timers import Timer, calendar, call_later, clock


def _interleaved(use_timers: bool) -> list[tuple[float, str]]:
    """Callbacks from timers (or Timeouts) mixed with a process and zero delays, in order."""
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []
    rng = random.Random(3)

    def later(delay: float, name: str) -> None:
        def fire(event: object) -> None:
            seen.append((env.now, name))
            if name.startswith("chain") and len(seen) < 200:
                later(rng.choice((0.0, 0.5, 1.0)), f"chain{len(seen)}")

        if use_timers:
            call_later(env, delay, fire, name)
        else:
            env.timeout(delay, name).callbacks.append(fire)

    def process() -> simpy.events.ProcessGenerator:
        for step in range(20):
            yield env.timeout(0.5)
            seen.append((env.now, f"process{step}"))
            later(0.0, f"zero{step}")

    env.process(process())
    for index in range(30):
        later(rng.choice((0.0, 0.5, 1.0, 2.5)), f"chain-start{index}")
    env.run(until=15)
    return seen


def test_call_later_keeps_the_order_of_timeouts() -> None:
    assert _interleaved(use_timers=True) == _interleaved(use_timers=False)


def test_timer_carries_its_value() -> None:
    env = simpy.Environment()
    got: list[object] = []

    def fire(timer: Timer) -> None:
        got.append((env.now, timer.value))

    call_later(env, 2.0, fire, "payload")
    env.run()
    assert got == [(2.0, "payload")]


def test_clocks_read_virtual_time() -> None:
    env = simpy.Environment(initial_time=5.0)
    now, wall = clock(env), calendar(env, 1_700_000_000.0)
    env.run(until=7.5)
    assert now() == 7.5
    assert wall() == 1_700_000_007.5


def test_run_until_stops_where_run_does() -> None:
    def trace(fast: bool) -> tuple[list[float], float, int]:
        env = simpy.Environment()
        fired: list[float] = []
        for delay in (0.5, 1.0, 1.0, 2.0, 3.0):
            env.timeout(delay).callbacks.append(lambda event: fired.append(env.now))
        if fast:
            _run_until(env, 2.0)
        else:
            env.run(until=2.0)
        return fired, env.now, next(env._eid)  # the ids taken so far

    assert trace(fast=True) == trace(fast=False)


def test_latency_bucket_is_the_sketch_mapping() -> None:
    now = [0.0]
    metrics = Metrics(lambda: now[0])
    stats = metrics.key("op", "api", "app")
    rng = random.Random(11)
    expected: dict[int, int] = {}
    for _ in range(5_000):
        metrics.offered(stats, "app", "op")
        elapsed = rng.expovariate(1 / rng.choice((0.001, 0.05, 1.0, 30.0)))
        now[0] += elapsed
        metrics.finished(stats, "app", "op", True, now[0] - elapsed)
        key = _MAPPING.key(now[0] - (now[0] - elapsed))
        expected[key] = expected.get(key, 0) + 1
    assert dict(stats.pending) == expected


def test_little_area_from_starts_and_sojourns() -> None:
    now = [0.0]
    metrics = Metrics(lambda: now[0])
    stats = metrics.key("op", "api", "app")
    # Three operations: [0, 4), [1, 2), [3, still in flight at 5).
    metrics.offered(stats, "app", "op")
    now[0] = 1.0
    metrics.offered(stats, "app", "op")
    now[0] = 2.0
    metrics.finished(stats, "app", "op", True, 1.0)
    now[0] = 3.0
    metrics.offered(stats, "app", "op")
    now[0] = 4.0
    metrics.finished(stats, "app", "op", True, 0.0)
    now[0] = 5.0
    check = metrics.little()
    assert math.isclose(check.mean_in_system, (4 + 1 + 2) / 5)
    assert math.isclose(check.mean_time_in_system, (4 + 1) / 2)
