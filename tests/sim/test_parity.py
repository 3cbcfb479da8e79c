"""Both realisations of one description: same records, same draws, same errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Generator
from typing import Any

import simpy

from operators.core import (
    CoreSpec,
    Hlr,
    IpQuery,
    KycRegister,
    LiveNetworkFunction,
    LocationServer,
    LognormalServiceTime,
    MsisdnQuery,
    NetworkFunctionSpec,
    NvAuthenticator,
    ServiceModel,
)
from operators.subscriber_base import SubscriberBase
from sim.core import SimNetworkFunction


def run_sim(spec: NetworkFunctionSpec, handler: Callable[[Any], Any], request: object) -> object:
    env = simpy.Environment()
    nf = SimNetworkFunction(env, spec, handler, random.Random(1))
    process = env.process(nf.call(request))
    env.run()
    return process.value


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
    simulated = SimNetworkFunction(env, spec, str, random.Random(42))
    reference = ServiceModel(spec, random.Random(42))
    expected = [reference.draw().duration for _ in range(20)]

    async def live_calls() -> None:
        await asyncio.gather(*(live.call(i) for i in range(20)))

    asyncio.run(live_calls())
    finished: list[float] = []

    def caller(i: int) -> Generator[simpy.Event, Any, None]:
        yield from simulated.call(i)
        finished.append(env.now)

    for i in range(20):
        env.process(caller(i))
    env.run()
    assert sorted(finished) == sorted(expected)
    assert live.snapshot().served == simulated.snapshot().served == 20
    # after the same number of calls both models are at the same point of the stream
    assert live.model.draw() == simulated.model.draw() == reference.draw()
