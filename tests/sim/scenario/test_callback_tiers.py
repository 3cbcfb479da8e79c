"""The two drivers of the guarded backend call decide alike; the deadline heap keeps time.

:func:`operators.integrator.run_async` (asyncio, what the live gateway runs) and
:func:`sim.tiers.integrator.run_flow` (SimPy, what the scenario engine runs) are the only
drivers of :class:`operators.integrator.GuardedCall`. For the same arrivals against backends
that draw the same service times and failures, they must admit, buffer, refuse, time out and
fail the same calls at the same instants, with the breaker moving through the same states.
The live driver runs on a virtual-time event loop (:mod:`tests.sim.virtual_time`), so both
run on the same clock and the comparison is exact.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Generator
from typing import Any

import simpy

from operators.core import (
    BackendError,
    BackendFailure,
    Hlr,
    LiveNetworkFunction,
    MsisdnQuery,
    NetworkFunctionKind,
)
from operators.core.description import ExponentialServiceTime, Faults, NetworkFunctionSpec
from operators.errors import CamaraError
from operators.integrator import BackendCall, BackendGuard, Flow, GuardSettings, run_async
from operators.integrator import operations as ops
from operators.policies import CircuitBreakerConfig
from operators.subscriber_base import SubscriberBase
from sim.tiers.deadlines import Deadlines
from sim.tiers.integrator import run_flow
from sim.tiers.network_function import Answered, CallbackNetworkFunction
from tests.sim.virtual_time import run_in_virtual_time

KIND = NetworkFunctionKind.SIM_DATA_REGISTER
SPEC = NetworkFunctionSpec(
    name="hlr",
    kind=KIND,
    servers=64,  # never the bottleneck: the guards decide who waits and who is refused
    service_time=ExponentialServiceTime(mean=0.1),
    faults=Faults(error_rate=0.15),
)
SETTINGS = GuardSettings(
    max_concurrent=3,
    max_waiting=4,
    max_wait=0.2,
    call_timeout=0.25,
    shed_target=0.15,  # every path taken: shed, buffered too long, timed out, open
    breaker=CircuitBreakerConfig(
        failure_rate_threshold=40.0,
        minimum_number_of_calls=10,
        sliding_window_size=20,
        wait_duration_in_open_state=1.0,
        permitted_number_of_calls_in_half_open_state=3,
    ),
)
Ending = tuple[int, float, str]
"""A call's index, when it ended (rounded to the nanosecond) and how."""


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


def ending(index: int, at: float, error: CamaraError | None) -> Ending:
    return index, round(at, 9), "ok" if error is None else f"{error.status} {error.message}"


def watched_guard(clock: Callable[[], float], states: list[str]) -> BackendGuard:
    guard = BackendGuard("hlr", clock, SETTINGS)
    guard.breaker.add_listener(lambda e: states.append(f"{e.at:.6f} {e.to_state.value}"))
    return guard


def with_asyncio() -> tuple[list[Ending], list[str]]:
    """The live driver over the live network function, on a virtual-time loop."""
    endings: list[Ending] = []
    states: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        function: LiveNetworkFunction[int, int] = LiveNetworkFunction(
            SPEC, lambda r: r, random.Random(9), clock=loop.time
        )
        guard = watched_guard(loop.time, states)

        async def call(index: int, at: float) -> None:
            await asyncio.sleep(at)
            try:
                await run_async(lookup(index), {KIND: function}, {KIND: guard})
            except CamaraError as error:
                endings.append(ending(index, loop.time(), error))
            else:
                endings.append(ending(index, loop.time(), None))

        await asyncio.gather(*(call(index, at) for index, at in enumerate(arrivals())))

    run_in_virtual_time(main())
    return sorted(endings), states


def with_simpy() -> tuple[list[Ending], list[str], int]:
    """The SimPy driver over the SimPy network function the scenario engine runs."""
    env = simpy.Environment()
    function: CallbackNetworkFunction[int, int] = CallbackNetworkFunction(
        env, SPEC, lambda r: r, random.Random(9)
    )
    states: list[str] = []
    guard = watched_guard(lambda: env.now, states)
    deadlines = Deadlines(env)
    endings: list[Ending] = []

    def start(index: int) -> None:
        def ended(error: CamaraError | None) -> None:
            endings.append(ending(index, env.now, error))

        run_flow(env, lookup(index), {KIND: function}, {KIND: guard}, deadlines, ended)

    for index, at in enumerate(arrivals()):
        env.timeout(at).callbacks.append(lambda _, index=index: start(index))  # type: ignore[misc]
    env.run()
    return sorted(endings), states, len(deadlines)


def test_asyncio_and_simpy_drivers_decide_alike() -> None:
    live, live_states = with_asyncio()
    simulated, states, pending = with_simpy()
    kinds = {status.split(":")[0] for _, _, status in live}
    # The workload exercises every path: served, injected errors, buffer, timeouts, breaker.
    assert {"ok", "503 hlr unavailable", "504 hlr did not answer within 0.25s"} <= kinds
    for why in ("circuit open", "waited too long", "request buffer full", "load shed"):
        assert any(why in status for _, _, status in live), why
    assert simulated == live
    assert states == live_states and states
    assert pending == 0


class Flaky:
    """The HLR, failing until it is made healthy."""

    def __init__(self, subscribers: SubscriberBase) -> None:
        self.hlr = Hlr(subscribers)
        self.healthy = False

    def answer(self, request: MsisdnQuery) -> Any:
        if not self.healthy:
            raise BackendFailure("hlr", "injected")
        return self.hlr(request)


class LiveFlaky(Flaky):
    async def call(self, request: MsisdnQuery) -> Any:
        return self.answer(request)


class SimFlaky(Flaky):
    def submit(self, request: MsisdnQuery, done: Answered) -> None:
        try:
            record = self.answer(request)
        except BackendError as error:
            done(False, error)
        else:
            done(True, record)  # before submit returns, as a backend may


def tight(clock: Callable[[], float]) -> BackendGuard:
    settings = GuardSettings(
        max_concurrent=1,
        max_waiting=0,
        breaker=CircuitBreakerConfig(
            minimum_number_of_calls=2, sliding_window_size=2, wait_duration_in_open_state=30,
            permitted_number_of_calls_in_half_open_state=2,
        ),
    )
    return BackendGuard("hlr", clock, settings)


def test_breaker_opens_and_closes_alike_in_both_drivers(subscribers: SubscriberBase) -> None:
    number = subscribers.test_number("approves")
    script = [False] * 3 + [True] * 3  # three calls while the HLR fails, then healthy ones

    live: list[str] = []
    live_state: list[str] = []

    async def live_calls() -> None:
        loop = asyncio.get_running_loop()
        guard, hlr = tight(loop.time), LiveFlaky(subscribers)
        for healthy in script:
            hlr.healthy = healthy
            try:
                await run_async(ops.reachability_status(number), {KIND: hlr}, {KIND: guard})
                live.append("ok")
            except CamaraError as error:
                live.append(error.message)
            await asyncio.sleep(20.0)
        live_state.append(guard.breaker.state)

    run_in_virtual_time(live_calls())

    env = simpy.Environment()
    guard, hlr = tight(lambda: env.now), SimFlaky(subscribers)
    deadlines = Deadlines(env)
    simulated: list[str] = []

    def sim_calls() -> Generator[simpy.Event, Any, None]:
        for healthy in script:
            hlr.healthy = healthy
            ended = env.event()
            run_flow(
                env,
                ops.reachability_status(number),
                {KIND: hlr},
                {KIND: guard},
                deadlines,
                ended.succeed,
            )
            error = yield ended
            simulated.append("ok" if error is None else error.message)
            yield env.timeout(20.0)

    env.process(sim_calls())
    env.run()
    assert simulated == live
    assert live[2] == "hlr unavailable: circuit open"  # opened after two failures
    assert live[-1] == "ok"  # half-open probes succeeded after the wait
    assert live_state == [guard.breaker.state] == ["CLOSED"]


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
