"""Simulated API calls per wall-clock second, against a minimal SimPy M/M/1, and memory.

Prints, for the thundering herd scenario (both variants), simulated operations and requests
(retries included) per wall-clock second beside the customers per second of a bare SimPy
M/M/1 queue run in the same process, as a ratio. The M/M/1 runs in small batches between
the scenario's slices (its progress callback), and its time is taken out of the scenario's:
on a shared machine whose load changes during a run, both figures see the same load, so the
ratio holds where the rates alone wander. Each ratio is also given on CPU seconds
(``time.process_time``): on a machine shared with other work, the time this process itself
ran is steadier than the wall clock, for the scenario and the M/M/1 alike. Each variant is
built and run on a collected heap (``gc.collect()`` before it, untimed): a run collects the
heap it starts with, and the earlier variant's world (about 850,000 objects of cyclic
garbage, a second to free) is this benchmark's leftover, not the later run's work.

Then it runs the ``baseline`` federation (three operators, an aggregator, four applications)
at its own fixed rate for long enough to offer about 100k and 1M operations, each size in a
child process so one run's heap does not inflate the next one's, and prints the wall time,
the ratio to the M/M/1 (measured the same way in that child) and the resident memory: at
build, at its peak (``ru_maxrss``), and the growth between them. A run that keeps nothing per
call grows only by its per-second rows, so 10x the calls at the same rate costs 10x the
rows, not 10x the calls' memory.

    python benchmarks/sim_throughput.py            # speed, then baseline at 100k and 1M calls
    python benchmarks/sim_throughput.py --quick    # speed, then baseline at 20k and 100k
    python benchmarks/sim_throughput.py --speed    # speed only (the thundering herd)

With ``PYTHONPATH=.compiled`` (made by ``benchmarks/build_compiled.py``) the hot modules run
compiled by mypyc; the first line printed says which build ran.
"""

from __future__ import annotations

import gc
import importlib
import math
import random
import resource
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

from sim.engine import RunResult, World
from sim.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]

HERD = ROOT / "scenarios" / "thundering_herd.yaml"
FEDERATION = ROOT / "scenarios" / "baseline.yaml"

SLICES = 100
"""Progress slices of a run, each followed by a batch of M/M/1 customers."""


def mm1_seconds(customers: int, seed: int = 1) -> tuple[float, float]:
    """Wall and CPU seconds the simplest SimPy M/M/1 (load 0.8) takes to serve ``customers``."""
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
    started, cpu = time.perf_counter(), time.process_time()
    env.run()
    return time.perf_counter() - started, time.process_time() - cpu


class Reference:
    """The M/M/1, run in batches between a scenario's slices: customers, wall and CPU seconds."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.customers = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def run_batch(self, _: float = 0.0) -> None:
        wall, cpu = mm1_seconds(self.batch, seed=self.customers + 1)
        self.seconds += wall
        self.cpu_seconds += cpu
        self.customers += self.batch

    @property
    def rate(self) -> float:
        """Customers per wall second."""
        return self.customers / self.seconds

    @property
    def cpu_rate(self) -> float:
        """Customers per CPU second of this process."""
        return self.customers / self.cpu_seconds


def timed_run(world: World, reference: Reference) -> tuple[RunResult, float, float]:
    """Run ``world`` with a reference batch after each slice; the run's own wall and CPU
    seconds (the reference's taken out)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = world.run(reference.run_batch, slices=SLICES)
    wall = time.perf_counter() - started - reference.seconds
    return result, wall, time.process_time() - cpu - reference.cpu_seconds


def offered_rate(scenario: Scenario) -> float:
    """Operations per second the scenario's applications offer (spikes aside)."""
    return sum(app.arrival.rate for app in scenario.traffic.applications.values())


def federation_run(calls: int) -> Scenario:
    """The baseline federation at its own rate, long enough to offer about ``calls``."""
    (base,) = load_scenario(FEDERATION)
    (scenario,) = load_scenario(FEDERATION, duration=math.ceil(calls / offered_rate(base)))
    return scenario


def _memory_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, from ``/proc``.

    Not ``ru_maxrss``: on Linux it survives ``exec``, so a child would report its parent's.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: the peak so far is the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith(field))
    return int(kib) / 1024


def memory_child(calls: int) -> None:
    """Run the federation for ``calls``; print calls, duration, wall, RSS built/end/peak, rows
    and the M/M/1's customers per wall second measured between the slices."""
    scenario = federation_run(calls)
    world = World(scenario)
    reference = Reference(batch=1000)
    built = _memory_mib("VmRSS:")
    result, wall, cpu = timed_run(world, reference)
    end, peak = _memory_mib("VmRSS:"), _memory_mib("VmHWM:")
    print(
        result.calls,
        scenario.duration,
        wall,
        built,
        end,
        peak,
        len(result.series),
        reference.rate,
        cpu,
        reference.cpu_rate,
    )


def build() -> str:
    """Which build runs: pure Python, or how many of the hot modules mypyc compiled."""
    from build_compiled import MODULES, STAMP, source_digest

    compiled = [
        name
        for name in (m.removesuffix(".py").replace("/", ".") for m in MODULES)
        if not str(getattr(importlib.import_module(name), "__file__", "")).endswith(".py")
    ]
    if not compiled:
        return "pure Python"
    origin = Path(str(importlib.import_module("sim").__file__)).parent.parent
    stamp = origin / STAMP
    built_from = stamp.read_text().strip() if stamp.exists() else "unknown sources"
    stale = "" if built_from == source_digest() else "; STALE: the checkout changed since the build"
    return f"{len(compiled)} of {len(MODULES)} hot modules compiled by mypyc (from {origin}){stale}"


def speed() -> None:
    """The thundering herd, both variants, against the M/M/1 in the same process."""
    print(f"build: {build()}")
    print("simulated throughput (thundering_herd, this process)")
    for scenario in load_scenario(HERD):
        gc.collect()
        reference = Reference(batch=2000)
        result, wall, cpu = timed_run(World(scenario), reference)
        requests = result.totals()["attempts"]
        ops_rate, req_rate = result.calls / wall, requests / wall
        cpu_ratio = result.calls / cpu / reference.cpu_rate
        print(
            f"  {scenario.variant:>11}: {result.calls:,} operations, {requests:,.0f} requests"
            f" in {wall:.2f} s: {ops_rate:,.0f} ops/s = {ops_rate / reference.rate:.2f} x"
            f" M/M/1 ({reference.rate:,.0f} customers/s between its slices),"
            f" {req_rate:,.0f} requests/s = {req_rate / reference.rate:.2f} x M/M/1;"
            f" on CPU seconds {cpu_ratio:.2f} x"
        )


def main(quick: bool) -> None:
    speed()
    (base,) = load_scenario(FEDERATION)
    print(
        f"federation (baseline: 3 operators, aggregator, 4 apps) at a fixed"
        f" {offered_rate(base):,.0f} ops/s, longer runs; each in its own process"
    )
    sizes = (20_000, 100_000) if quick else (100_000, 1_000_000)
    for calls in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory", str(calls)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        done, duration, wall = int(out[0]), float(out[1]), float(out[2])
        built, end, peak, rows = float(out[3]), float(out[4]), float(out[5]), int(out[6])
        reference, cpu, cpu_reference = float(out[7]), float(out[8]), float(out[9])
        print(
            f"  {done:>9,} operations over {duration:,.0f} virtual s in {wall:.1f} wall s"
            f" ({done / wall:,.0f} ops/s = {done / wall / reference:.2f} x M/M/1 at"
            f" {reference:,.0f} customers/s; {cpu:.1f} CPU s, on CPU seconds"
            f" {done / cpu / cpu_reference:.2f} x): RSS {built:,.1f} MiB built, {end:,.1f} MiB"
            f" at the end (+{end - built:,.1f} MiB, {rows:,} per-second rows), peak"
            f" {peak:,.1f} MiB"
        )


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
    elif len(sys.argv) == 3 and sys.argv[1] == "--memory":
        memory_child(int(sys.argv[2]))
    elif "--speed" in sys.argv:
        speed()
    else:
        main(quick="--quick" in sys.argv)
