"""Simulated API calls per wall second, against a minimal SimPy M/M/1, and peak memory.

Prints, for the thundering herd scenario (both variants), simulated operations and requests
(retries included) per wall-clock second beside the customers per second of a bare SimPy
M/M/1 queue run in the same process, as a ratio. Then the peak traced memory (tracemalloc)
of a scaled protected-herd world at about 100k and 1M operations: rates and capacities are
scaled together over a fixed duration, so only the call count changes. Each size runs in a
child process so one run's heap does not inflate the next one's peak.

    python benchmarks/sim_throughput.py            # speed, then memory at 100k and 1M calls
    python benchmarks/sim_throughput.py --quick    # speed, then memory at 20k and 100k
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.engine import run_scenario  # noqa: E402
from sim.scenario import Scenario, load_scenario  # noqa: E402

HERD = ROOT / "scenarios" / "thundering_herd.yaml"
OPERATIONS_PER_SCALE = 29_500  # protected herd over 300 s at scale 1


def mm1(customers: int, seed: int = 1) -> float:
    """Customers per wall second of the simplest SimPy M/M/1 (load 0.8)."""
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    rng = random.Random(seed)

    def customer() -> Generator[simpy.Event, Any, None]:
        with server.request() as slot:
            yield slot
            yield env.timeout(rng.expovariate(1.0))

    def source() -> Generator[simpy.Event, Any, None]:
        for _ in range(customers):
            yield env.timeout(rng.expovariate(0.8))
            env.process(customer())

    env.process(source())
    started = time.perf_counter()
    env.run()
    return customers / (time.perf_counter() - started)


def scaled_herd(scale: float) -> Scenario:
    """The protected herd with every rate and capacity multiplied by ``scale``."""
    servers = max(1, round(4 * scale))
    overrides: dict[str, object] = {
        "traffic.applications.herd-app.arrival.rate": 10 * scale,
        "traffic.applications.bank.arrival.rate": 50 * scale,
        "topology.operators.telco-es.core.sim_data_register.servers": servers,
        "topology.operators.telco-es.policies.buffer.max_concurrent": servers,
        "topology.operators.telco-es.policies.buffer.max_waiting": 4 * servers,
        "topology.operators.telco-es.policies.throttling.plans": [
            {"name": "enterprise", "rate_per_second": 500 * scale, "burst": round(1000 * scale)},
            {"name": "standard", "rate_per_second": 75 * scale, "burst": round(150 * scale)},
        ],
        "topology.operators.telco-es.data_centres.mad-1.gateway.workers": round(256 * scale),
    }
    variants = load_scenario(HERD, overrides=overrides)
    return next(v for v in variants if v.variant == "protected")


def memory_child(calls: int) -> None:
    """Run the scaled world under tracemalloc and print ``calls peak_bytes wall``."""
    scenario = scaled_herd(calls / OPERATIONS_PER_SCALE)
    tracemalloc.start()
    started = time.perf_counter()
    result = run_scenario(scenario)
    wall = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    print(result.calls, peak, wall)


def main(quick: bool) -> None:
    print("simulated throughput (thundering_herd, this process)")
    reference = mm1(200_000)
    print(f"  minimal SimPy M/M/1: {reference:,.0f} customers / wall s")
    for scenario in load_scenario(HERD):
        started = time.perf_counter()
        result = run_scenario(scenario)
        wall = time.perf_counter() - started
        requests = result.totals()["attempts"]
        ops_rate, req_rate = result.calls / wall, requests / wall
        print(
            f"  {scenario.variant:>11}: {result.calls:,} operations, {requests:,.0f} requests"
            f" in {wall:.1f} s: {ops_rate:,.0f} ops/s, {req_rate:,.0f} requests/s"
            f" = {req_rate / reference:.2f} x M/M/1"
        )
    print("peak traced memory, scaled protected herd (fixed 300 s, rates x k)")
    sizes = (20_000, 100_000) if quick else (100_000, 1_000_000)
    for calls in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory", str(calls)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        done, peak, wall = int(out[0]), int(out[1]), float(out[2])
        print(
            f"  {done:>9,} operations: peak {peak / 2**20:,.1f} MiB,"
            f" {peak / done:,.0f} B/operation, {wall:.1f} s under tracemalloc"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
    else:
        main(quick="--quick" in sys.argv)
