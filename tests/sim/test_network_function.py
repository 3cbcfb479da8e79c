"""The SimPy network function: FIFO servers, a bounded waiting room, faults on a timeline."""

from __future__ import annotations

import random
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
    SubscriberUnknown,
)
from sim.tiers.network_function import CallbackNetworkFunction, FaultChange


def station(
    env: simpy.Environment, servers: int, queue_limit: int | None, service: float = 1.0
) -> CallbackNetworkFunction[str, str]:
    spec = NetworkFunctionSpec(
        name="pcf",
        kind=NetworkFunctionKind.POLICY_FUNCTION,
        servers=servers,
        queue_limit=queue_limit,
        service_time=ConstantServiceTime(value=service),
    )
    return CallbackNetworkFunction(env, spec, str.upper, random.Random(1))


def outcomes(
    env: simpy.Environment, nf: CallbackNetworkFunction[str, str], arrivals: list[float]
) -> list[tuple[float, str]]:
    """Each call's finish time and record (or error code)."""
    results: list[tuple[float, str]] = []

    def answered(ok: bool, payload: Any) -> None:
        results.append((env.now, payload if ok else payload.code))

    for at in arrivals:
        env.timeout(at).callbacks.append(lambda _: nf.submit("r", answered))
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

    def answered(ok: bool, payload: Any) -> None:
        if not ok:
            caught.append(type(payload))

    nf.set_faults(Faults(outage=True))
    nf.submit("x", answered)  # refused at once
    nf.set_faults(Faults(error_rate=1.0))
    nf.submit("x", answered)  # served, then fails
    nf.set_faults(Faults())
    nf.submit("y", answered)  # the one server is busy and there is no waiting room
    env.run()
    assert caught == [BackendUnavailable, BackendBusy, BackendFailure]


def test_a_handler_error_is_answered_and_frees_the_server() -> None:
    env = simpy.Environment()
    nf = station(env, servers=1, queue_limit=None)

    def handler(request: str) -> str:
        if request == "unknown":
            raise SubscriberUnknown("pcf", "no such subscriber")
        return request.upper()

    nf.handler = handler
    answers: list[tuple[float, bool, Any]] = []
    for request in ("unknown", "known"):
        nf.submit(request, lambda ok, payload: answers.append((env.now, ok, payload)))
    env.run()
    assert [(t, ok) for t, ok, _ in answers] == [(1.0, False), (2.0, True)]
    assert isinstance(answers[0][2], SubscriberUnknown) and answers[1][2] == "KNOWN"
    snapshot = nf.snapshot()
    assert (snapshot.served, snapshot.failed, snapshot.in_service) == (1, 1, 0)
