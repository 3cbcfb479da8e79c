"""The engine's loop calls a timer's callback itself; SimPy's own loop gets the same order."""

from __future__ import annotations

import random

import simpy

from sim.engine import _run_until
from sim.tiers.timers import Timer, call_later


def _trace(fast: bool) -> tuple[list[tuple[float, str]], float, int]:
    """Timers and Timeouts mixed, some scheduled from callbacks, run by either loop."""
    env = simpy.Environment()
    seen: list[tuple[float, str]] = []
    rng = random.Random(4)

    def fire(timer: Timer) -> None:
        seen.append((env.now, f"timer {timer.value}"))
        if len(seen) < 300:
            call_later(env, rng.choice((0.0, 0.25, 1.0)), fire, len(seen))
            env.timeout(rng.choice((0.0, 0.25))).callbacks.append(
                lambda _: seen.append((env.now, "timeout"))
            )

    for index in range(20):
        call_later(env, rng.choice((0.0, 0.5, 2.0)), fire, f"start {index}")
    if fast:
        _run_until(env, 6.0)
    else:
        env.run(until=6.0)
    return seen, env.now, next(env._eid)


def test_engine_loop_keeps_simpys_order_and_ids() -> None:
    assert _trace(fast=True) == _trace(fast=False)


def test_simpy_sees_a_processed_timer_as_processed() -> None:
    env = simpy.Environment()
    got: list[Timer] = []
    call_later(env, 1.0, got.append, "payload")
    env.run()
    (timer,) = got
    assert timer.value == "payload"
    assert timer.callbacks is None  # SimPy cleared it, as it clears an event's
