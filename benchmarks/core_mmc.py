"""SimPy M/M/c customers per wall second: the core's model against a minimal hand-written one.

The core's model (the scenario engine's CallbackNetworkFunction: ServiceModel draws, Occupancy
bookkeeping, a callback per call instead of a process) pays for its shared decision object,
waiting-room check and time averages; the hand-written one is the textbook SimPy M/M/c with
nothing else. Both run the same load in the same process; the ratio is what the shared
description costs. Run: ``.venv/bin/python benchmarks/core_mmc.py``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from typing import Any

import simpy

from operators.core.description import (
    ExponentialServiceTime,
    NetworkFunctionKind,
    NetworkFunctionSpec,
)
from sim.tiers.network_function import CallbackNetworkFunction

SERVERS = 8
ARRIVAL_RATE = 6.4  # 80 % load with mean service 1
HORIZON = 50_000.0
ROUNDS = 3


def handwritten(seed: int) -> int:
    """The textbook SimPy M/M/c: a Resource, a source and a customer process."""
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)
    rng = random.Random(seed)
    served = 0

    def customer() -> Generator[simpy.Event, Any, None]:
        nonlocal served
        with servers.request() as slot:
            yield slot
            yield env.timeout(rng.expovariate(1.0))
        served += 1

    def source() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(rng.expovariate(ARRIVAL_RATE))
            env.process(customer())

    env.process(source())
    env.run(until=HORIZON)
    return served


def core_model(seed: int) -> int:
    """The same M/M/c as the network core realises it in virtual time."""
    env = simpy.Environment()
    spec = NetworkFunctionSpec(
        name="hlr",
        kind=NetworkFunctionKind.SIM_DATA_REGISTER,
        servers=SERVERS,
        service_time=ExponentialServiceTime(mean=1.0),
    )
    station: CallbackNetworkFunction[None, None] = CallbackNetworkFunction(
        env, spec, lambda request: request, random.Random(seed)
    )
    arrivals = random.Random(seed + 1)

    def answered(ok: bool, payload: Any) -> None:
        """Nothing to do with the answer: the station's own books count the customers."""

    def source() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(arrivals.expovariate(ARRIVAL_RATE))
            station.submit(None, answered)

    env.process(source())
    env.run(until=HORIZON)
    return station.snapshot().served


def rate(model: Any, seed: int) -> float:
    """Best of a few rounds, in customers served per wall second."""
    best = 0.0
    for round_ in range(ROUNDS):
        started = time.perf_counter()
        served = model(seed + round_)
        best = max(best, served / (time.perf_counter() - started))
    return best


def main() -> None:
    plain = rate(handwritten, 1)
    core = rate(core_model, 1)
    print(f"M/M/{SERVERS} at 80 % load, {HORIZON:g} time units, best of {ROUNDS}")
    print(f"hand-written SimPy M/M/c : {plain:>10,.0f} customers/s")
    print(f"core network function    : {core:>10,.0f} customers/s")
    print(f"core / hand-written      : {core / plain:>10.2f}")


if __name__ == "__main__":
    main()
