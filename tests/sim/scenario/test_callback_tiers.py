"""The callback tiers against the process realisations they replace, and the deadline heap.

``run_flow`` over a :class:`CallbackNetworkFunction` must take every decision that
:func:`operators.integrator.run_process` over :class:`sim.core.SimNetworkFunction` takes: the
same calls admitted, buffered, refused, timed out or failed, at the same virtual times, with
the breaker in the same states, for the same arrivals and the same service-time stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Generator
from typing import Any

import pytest
import simpy

from operators.core import BackendError, NetworkFunctionKind
from operators.core.description import ExponentialServiceTime, Faults, NetworkFunctionSpec
from operators.errors import CamaraError
from operators.integrator import BackendCall, BackendGuard, Flow, GuardSettings, run_process
from operators.policies import CircuitBreakerConfig
from sim.core import SimNetworkFunction
from sim.tiers.deadlines import Deadlines
from sim.tiers.integrator import run_flow
from sim.tiers.network_function import CallbackNetworkFunction

KIND = NetworkFunctionKind.SIM_DATA_REGISTER
SPEC = NetworkFunctionSpec(
    name="hlr",
    kind=KIND,
    servers=2,
    queue_limit=6,
    service_time=ExponentialServiceTime(mean=0.1),
    faults=Faults(error_rate=0.15),
)
SETTINGS = GuardSettings(
    max_concurrent=3,
    max_waiting=4,
    max_wait=0.2,
    call_timeout=0.25,
    breaker=CircuitBreakerConfig(
        minimum_number_of_calls=10,
        sliding_window_size=20,
        wait_duration_in_open_state=1.0,
        permitted_number_of_calls_in_half_open_state=3,
    ),
)
Outcome = tuple[int, float, str]


def lookup(index: int) -> Flow[int]:
    """A one-call flow: the backend echoes the request."""
    record: int = yield BackendCall(KIND, index)
    return record


def arrivals(count: int = 600) -> list[float]:
    rng, t, times = random.Random(3), 0.0, []
    for _ in range(count):
        t += rng.expovariate(25.0)
        times.append(t)
    return times


def with_processes() -> tuple[list[Outcome], list[str]]:
    env = simpy.Environment()
    function: SimNetworkFunction[int, int] = SimNetworkFunction(
        env, SPEC, lambda r: r, random.Random(9)
    )
    guard = BackendGuard("hlr", lambda: env.now, SETTINGS)
    states: list[str] = []
    guard.breaker.add_listener(lambda e: states.append(f"{e.at:.6f} {e.to_state.value}"))
    outcomes: list[Outcome] = []

    def call(index: int, at: float) -> Generator[Any, Any, None]:
        yield env.timeout(at)
        try:
            yield from run_process(env, lookup(index), {KIND: function}, {KIND: guard})
            outcomes.append((index, env.now, "ok"))
        except CamaraError as error:
            outcomes.append((index, env.now, f"{error.status} {error.message}"))

    for index, at in enumerate(arrivals()):
        env.process(call(index, at))
    env.run()
    return sorted(outcomes), states


def with_callbacks() -> tuple[list[Outcome], list[str], int]:
    env = simpy.Environment()
    function: CallbackNetworkFunction[int, int] = CallbackNetworkFunction(
        env, SPEC, lambda r: r, random.Random(9)
    )
    guard = BackendGuard("hlr", lambda: env.now, SETTINGS)
    states: list[str] = []
    guard.breaker.add_listener(lambda e: states.append(f"{e.at:.6f} {e.to_state.value}"))
    deadlines = Deadlines(env)
    outcomes: list[Outcome] = []

    def start(index: int) -> None:
        def ended(error: CamaraError | None) -> None:
            status = "ok" if error is None else f"{error.status} {error.message}"
            outcomes.append((index, env.now, status))

        run_flow(env, lookup(index), {KIND: function}, {KIND: guard}, deadlines, ended)

    for index, at in enumerate(arrivals()):
        env.timeout(at).callbacks.append(lambda _, index=index: start(index))  # type: ignore[misc]
    env.run()
    return sorted(outcomes), states, len(deadlines)


def test_run_flow_decides_as_run_process_does() -> None:
    expected, expected_states = with_processes()
    got, states, pending = with_callbacks()
    kinds = {status.split(":")[0] for _, _, status in expected}
    # The workload exercises every path: served, injected errors, buffer, timeouts, breaker.
    assert {"ok", "503 hlr unavailable", "504 hlr did not answer within 0.25s"} <= kinds
    assert any("circuit open" in status for _, _, status in expected)
    assert any("waited too long" in status for _, _, status in expected)
    assert [(i, round(t, 9), what) for i, t, what in got] == [
        (i, round(t, 9), what) for i, t, what in expected
    ]
    assert states == expected_states
    assert pending == 0


def test_callback_function_keeps_the_same_books_as_the_process_one() -> None:
    results = []
    for cls in (SimNetworkFunction, CallbackNetworkFunction):
        env = simpy.Environment()
        function: SimNetworkFunction[int, int] = cls(env, SPEC, lambda r: r, random.Random(4))
        if isinstance(function, CallbackNetworkFunction):
            for at in arrivals(300):
                env.timeout(at).callbacks.append(
                    lambda _, f=function: f.submit(0, lambda ok, payload: None)  # type: ignore[misc]
                )
        else:

            def caller(
                at: float, f: Any = function, env: simpy.Environment = env
            ) -> Generator[Any, Any, None]:
                yield env.timeout(at)
                with contextlib.suppress(BackendError):
                    yield from f.call(0)

            for at in arrivals(300):
                env.process(caller(at))
        env.run()
        results.append(dataclasses.asdict(function.snapshot()))
    assert results[0].keys() == results[1].keys()
    for key, value in results[0].items():
        assert results[1][key] == pytest.approx(value), key


class Entry:
    def __init__(self, name: str, log: list[tuple[float, str]], env: simpy.Environment) -> None:
        self.name, self.log, self.env, self.active = name, log, env, True

    def expire(self) -> None:
        self.active = False
        self.log.append((self.env.now, self.name))


def test_deadlines_expire_in_time_order_and_skip_answered_ones() -> None:
    env = simpy.Environment()
    deadlines = Deadlines(env)
    log: list[tuple[float, str]] = []
    entries = {name: Entry(name, log, env) for name in "abcde"}
    deadlines.add(5.0, entries["a"])
    deadlines.add(2.0, entries["b"])  # earlier than the armed timer: re-armed
    deadlines.add(3.0, entries["c"])
    deadlines.add(3.0, entries["d"])
    deadlines.add(9.0, entries["e"])
    entries["c"].active = False  # answered before its deadline
    entries["e"].active = False
    env.run()
    assert log == [(2.0, "b"), (3.0, "d"), (5.0, "a")]
    assert env.now == 5.0  # nothing armed for the answered entry at 9
    assert len(deadlines) == 0


def test_answered_deadlines_cost_no_wake_ups() -> None:
    env = simpy.Environment()
    deadlines = Deadlines(env)
    log: list[tuple[float, str]] = []
    wakes = 0

    def tick() -> Generator[Any, Any, None]:
        nonlocal wakes
        for step in range(1000):
            entry = Entry(str(step), log, env)
            deadlines.add(env.now + 1.0, entry)
            yield env.timeout(0.01)
            entry.active = False  # answered in 10 ms, well before its deadline
            wakes = len(env._queue)  # the heap: the one armed timer

    env.process(tick())
    env.run()
    assert log == []
    assert wakes <= 2
