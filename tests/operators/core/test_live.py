from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from operators.core import (
    BackendBusy,
    BackendFailure,
    BackendUnavailable,
    ConstantServiceTime,
    Faults,
    LiveNetworkFunction,
    NetworkFunctionKind,
    NetworkFunctionSpec,
)

SCALE = 0.001  # one spec second is one wall millisecond


def station(
    servers: int, queue_limit: int | None, service: float = 20.0
) -> LiveNetworkFunction[str, str]:
    spec = NetworkFunctionSpec(
        name="hlr",
        kind=NetworkFunctionKind.SIM_DATA_REGISTER,
        servers=servers,
        queue_limit=queue_limit,
        service_time=ConstantServiceTime(value=service),
    )
    return LiveNetworkFunction(spec, str.upper, random.Random(1), time_scale=SCALE)


async def test_answers_the_handlers_record() -> None:
    assert await station(1, None, service=1.0).call("msisdn") == "MSISDN"


async def test_rejects_at_once_when_servers_and_waiting_room_are_full() -> None:
    nf = station(servers=2, queue_limit=1)
    admitted = [asyncio.create_task(nf.call("a")) for _ in range(3)]
    await asyncio.sleep(0)
    assert (nf.in_service, nf.queue_length) == (2, 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BackendBusy):
        await nf.call("b")
    assert loop.time() - started < 0.005  # no waiting: rejected on arrival
    assert await asyncio.gather(*admitted) == ["A", "A", "A"]
    snapshot = nf.snapshot()
    assert (snapshot.served, snapshot.rejected, snapshot.offered) == (3, 1, 4)
    assert (nf.in_service, nf.queue_length) == (0, 0)


async def test_waiters_are_served_first_in_first_out() -> None:
    nf = station(servers=1, queue_limit=None, service=2.0)
    order: list[int] = []

    async def client(i: int) -> None:
        await nf.call("x")
        order.append(i)

    await asyncio.gather(*(client(i) for i in range(6)))
    assert order == list(range(6))


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` with a generous bound (the services here last milliseconds)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


async def test_a_cancelled_waiter_keeps_its_place_and_is_served_for_nobody() -> None:
    """A caller that stops waiting leaves its request behind, as a real backend and the
    simulated function do: its place in the queue, then a server for the time it drew."""
    nf = station(servers=1, queue_limit=1)
    first = asyncio.create_task(nf.call("a"))
    waiter = asyncio.create_task(nf.call("b"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert nf.queue_length == 1, "its place is kept"
    with pytest.raises(BackendBusy):
        await nf.call("c")  # the waiting room is still full
    assert await first == "A"
    await _until(lambda: nf.snapshot().served == 2)
    assert (nf.in_service, nf.queue_length) == (0, 0)
    assert await nf.call("c") == "C"


async def test_a_call_cancelled_in_service_holds_its_server_until_its_time_is_up() -> None:
    nf = station(servers=1, queue_limit=0)
    holder = asyncio.create_task(nf.call("a"))
    await asyncio.sleep(0)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert nf.in_service == 1
    with pytest.raises(BackendBusy):
        await nf.call("b")
    await _until(lambda: nf.in_service == 0)
    assert nf.snapshot().served == 1
    assert await nf.call("b") == "B"


async def test_faults_switch_at_run_time() -> None:
    nf = station(servers=2, queue_limit=2, service=1.0)
    assert await nf.call("a") == "A"
    nf.set_faults(Faults(outage=True))
    with pytest.raises(BackendUnavailable):
        await nf.call("a")
    nf.set_faults(Faults(error_rate=1.0))
    with pytest.raises(BackendFailure):
        await nf.call("a")
    nf.set_faults(Faults(extra_latency=30.0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await nf.call("a") == "A"
    assert loop.time() - started >= 0.031 * 0.99
    nf.set_faults(Faults())
    assert await nf.call("a") == "A"
    snapshot = nf.snapshot()
    assert (snapshot.served, snapshot.failed, snapshot.refused) == (3, 1, 1)
