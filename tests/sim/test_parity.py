"""Both realisations of one description: same records, same draws, same errors, same books.

The live asyncio function (:class:`operators.core.LiveNetworkFunction`) and the SimPy one the
scenario engine runs (:class:`sim.tiers.network_function.CallbackNetworkFunction`) read one
spec and one :class:`ServiceModel`. Run on the same clock (the live one on a virtual-time
event loop), the same arrivals must give the same records, durations and occupancy figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest
import simpy

from operators.core import (
    BackendError,
    CoreSpec,
    ExponentialServiceTime,
    Faults,
    Hlr,
    IpQuery,
    KycRegister,
    LiveNetworkFunction,
    LocationServer,
    LognormalServiceTime,
    MsisdnQuery,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    NvAuthenticator,
    ServiceModel,
)
from operators.subscriber_base import SubscriberBase
from sim.tiers.network_function import CallbackNetworkFunction
from tests.sim.virtual_time import run_in_virtual_time


def run_sim(spec: NetworkFunctionSpec, handler: Callable[[Any], Any], request: object) -> object:
    env = simpy.Environment()
    nf = CallbackNetworkFunction(env, spec, handler, random.Random(1))
    answers: list[object] = []
    nf.submit(request, lambda ok, payload: answers.append(payload))
    env.run()
    [answer] = answers
    return answer


def run_live(spec: NetworkFunctionSpec, handler: Callable[[Any], Any], request: object) -> object:
    nf = LiveNetworkFunction(spec, handler, random.Random(1), time_scale=0.0)
    return asyncio.run(nf.call(request))


def test_same_number_gives_the_same_record_in_both_modes(subscribers: SubscriberBase) -> None:
    core = CoreSpec()
    number = subscribers.test_number("roaming")
    subscriber = subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4 is not None
    cases: list[tuple[NetworkFunctionSpec, Callable[[Any], Any], object]] = [
        (core.sim_data_register, Hlr(subscribers), MsisdnQuery(number)),
        (core.location_server, LocationServer(subscribers), MsisdnQuery(number)),
        (core.kyc_register, KycRegister(subscribers), MsisdnQuery(number)),
        (core.nv_authenticator, NvAuthenticator(subscribers), IpQuery(subscriber.ipv4)),
    ]
    for spec, handler, request in cases:
        live = run_live(spec, handler, request)
        simulated = run_sim(spec, handler, request)
        assert live == simulated
        assert getattr(live, "msisdn", None) == number


def test_same_seed_gives_the_same_draws_in_both_realisations() -> None:
    spec = CoreSpec().location_server.model_copy(
        update={"service_time": LognormalServiceTime(mean=1.0, sigma=1.0), "servers": 50}
    )
    live = LiveNetworkFunction(spec, str, random.Random(42), time_scale=0.0)
    env = simpy.Environment()
    simulated = CallbackNetworkFunction(env, spec, str, random.Random(42))
    reference = ServiceModel(spec, random.Random(42))
    expected = [reference.draw().duration for _ in range(20)]

    async def live_calls() -> None:
        await asyncio.gather(*(live.call(i) for i in range(20)))

    asyncio.run(live_calls())
    finished: list[float] = []
    for i in range(20):
        simulated.submit(i, lambda ok, payload: finished.append(env.now))
    env.run()
    assert sorted(finished) == sorted(expected)
    assert live.snapshot().served == simulated.snapshot().served == 20
    # after the same number of calls both models are at the same point of the stream
    assert live.model.draw() == simulated.model.draw() == reference.draw()


BUSY_SPEC = NetworkFunctionSpec(
    name="hlr",
    kind=NetworkFunctionKind.SIM_DATA_REGISTER,
    servers=2,
    queue_limit=6,
    service_time=ExponentialServiceTime(mean=0.1),
    faults=Faults(error_rate=0.15),
)


def arrivals(count: int = 300) -> list[float]:
    rng, t, times = random.Random(3), 0.0, []
    for _ in range(count):
        t += rng.expovariate(25.0)
        times.append(t)
    return times


def test_both_realisations_keep_the_same_books_on_one_clock() -> None:
    """Queueing, rejections and injected errors: every counter and time average agrees."""

    async def live_run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        live = LiveNetworkFunction(BUSY_SPEC, lambda r: r, random.Random(4), clock=loop.time)

        async def caller(at: float) -> None:
            await asyncio.sleep(at)
            with contextlib.suppress(BackendError):
                await live.call(0)

        await asyncio.gather(*(caller(at) for at in arrivals()))
        return dataclasses.asdict(live.snapshot())

    env = simpy.Environment()
    simulated = CallbackNetworkFunction(env, BUSY_SPEC, lambda r: r, random.Random(4))
    for at in arrivals():
        env.timeout(at).callbacks.append(lambda _: simulated.submit(0, lambda ok, payload: None))
    env.run()
    expected = dataclasses.asdict(simulated.snapshot())
    got = run_in_virtual_time(live_run())
    assert expected["rejected"] > 0 and expected["failed"] > 0 and expected["mean_wait"] > 0
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
