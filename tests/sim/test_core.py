from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import pytest
import simpy

from operators.core import (
    BackendBusy,
    BackendError,
    BackendFailure,
    BackendUnavailable,
    ConstantServiceTime,
    Faults,
    NetworkFunctionKind,
    NetworkFunctionSpec,
)
from sim.core import FaultChange, SimNetworkFunction


def station(
    env: simpy.Environment, servers: int, queue_limit: int | None, service: float = 1.0
) -> SimNetworkFunction[str, str]:
    spec = NetworkFunctionSpec(
        name="pcf",
        kind=NetworkFunctionKind.POLICY_FUNCTION,
        servers=servers,
        queue_limit=queue_limit,
        service_time=ConstantServiceTime(value=service),
    )
    return SimNetworkFunction(env, spec, str.upper, random.Random(1))


def outcomes(
    env: simpy.Environment, nf: SimNetworkFunction[str, str], arrivals: list[float]
) -> list[tuple[float, str]]:
    """Each call's finish time and record (or error code)."""
    results: list[tuple[float, str]] = []

    def caller(at: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(at)
        try:
            record = yield from nf.call("r")
            results.append((env.now, record))
        except BackendError as error:
            results.append((env.now, error.code))

    for at in arrivals:
        env.process(caller(at))
    env.run()
    return results


def test_queues_then_blocks_when_waiting_room_is_full() -> None:
    env = simpy.Environment()
    nf = station(env, servers=2, queue_limit=1)
    results = outcomes(env, nf, [0, 0, 0, 0, 0.5])
    assert sorted(results) == [(0.0, "BUSY"), (0.5, "BUSY"), (1.0, "R"), (1.0, "R"), (2.0, "R")]
    snapshot = nf.snapshot()
    assert (snapshot.offered, snapshot.rejected, snapshot.served) == (5, 2, 3)
    assert snapshot.mean_wait == pytest.approx(1 / 3)
    # Little: area under N(t) = 1+1+2 call-seconds over 2 s; λW = 3 calls * 4/3 s / 2 s
    assert snapshot.mean_in_system == pytest.approx(2.0)
    assert snapshot.throughput * snapshot.mean_sojourn == pytest.approx(2.0)


def test_unbounded_waiting_room_never_rejects() -> None:
    env = simpy.Environment()
    nf = station(env, servers=1, queue_limit=None)
    results = outcomes(env, nf, [0] * 10)
    assert [t for t, _ in sorted(results)] == [float(i) for i in range(1, 11)]
    assert nf.snapshot().mean_queue_length == pytest.approx(4.5)


def test_fault_timeline_switches_faults_in_virtual_time() -> None:
    env = simpy.Environment()
    nf = station(env, servers=1, queue_limit=None)
    nf.schedule_faults(
        [
            FaultChange(at=10, faults=Faults(outage=True)),
            FaultChange(at=20, faults=Faults(error_rate=1.0)),
            FaultChange(at=30, faults=Faults(extra_latency=4.0)),
            FaultChange(at=40, faults=Faults()),
        ]
    )
    results = outcomes(env, nf, [0, 10.5, 20.5, 30.5, 40.5])
    assert results == [
        (1.0, "R"),
        (10.5, "UNAVAILABLE"),
        (21.5, "SYSTEM_FAILURE"),
        (35.5, "R"),
        (41.5, "R"),
    ]


def test_errors_are_the_same_types_as_live() -> None:
    env = simpy.Environment()
    nf = station(env, servers=1, queue_limit=0)
    caught: list[type[BackendError]] = []

    def caller() -> Generator[simpy.Event, Any, None]:
        for faults in (Faults(outage=True), Faults(error_rate=1.0)):
            nf.set_faults(faults)
            try:
                yield from nf.call("x")
            except BackendError as error:
                caught.append(type(error))
        nf.set_faults(Faults())
        env.process(nf.call("y"))
        yield env.timeout(0)
        try:
            yield from nf.call("z")
        except BackendBusy:
            caught.append(BackendBusy)

    env.process(caller())
    env.run()
    assert caught == [BackendUnavailable, BackendFailure, BackendBusy]
