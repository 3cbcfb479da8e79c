"""Holds the network core's two realisations against queueing theory, and says pass or fail.

For each model the SimPy realisation that the scenario engine runs
(:class:`sim.tiers.network_function.CallbackNetworkFunction` driving the shared
:class:`~operators.core.service_model.ServiceModel`) runs several seeded replications with
Poisson arrivals; the warm-up of each is discarded and a 95 % Student-t confidence interval
is formed over the replications. The live asyncio realisation runs M/M/c with times scaled to
milliseconds, with batch means over one run for its interval.

Verdict: a row passes when theory lies inside the 95 % interval, or when the measured value is
within the row's stated relative tolerance of theory (so a very tight interval does not fail on
a difference nobody cares about). Little's law rows compare the time-average number in system
L with λW measured on the same run and pass within 1 %. Live rows use a wider tolerance
(25 %), because the event loop's timer granularity (about a millisecond) lengthens service.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import selectors
import statistics
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import simpy
from rich.progress import Progress
from rich.table import Table

from operators.core import (
    BackendError,
    ExponentialServiceTime,
    LiveNetworkFunction,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    OccupancySnapshot,
)
from sim.queueing import QueueMetrics, mmc, mmck
from sim.student_t import student_t_quantile
from sim.tiers.network_function import CallbackNetworkFunction

__all__ = ["ValidationRow", "render", "run_validation", "t_quantile_975"]

LITTLE_TOLERANCE = 0.01
LIVE_TOLERANCE = 0.25


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}, the two-sided 95 % quantile: :func:`sim.student_t.student_t_quantile`."""
    if df < 1:
        raise ValueError("need at least one degree of freedom")
    return student_t_quantile(0.975, df)


def mean_and_half_width(values: Sequence[float]) -> tuple[float, float]:
    """Sample mean and 95 % confidence half-width over independent replications."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.inf
    return mean, t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True, slots=True)
class ValidationRow:
    """One comparison: a quantity of a model, its theoretical and measured values, the verdict."""

    model: str
    parameters: str
    quantity: str
    theory: float
    measured: float
    half_width: float
    tolerance: float
    """Relative error accepted even when theory is outside the interval."""

    @property
    def relative_error(self) -> float:
        return abs(self.measured - self.theory) / abs(self.theory) if self.theory else math.inf

    @property
    def passed(self) -> bool:
        inside = abs(self.measured - self.theory) <= self.half_width
        return inside or self.relative_error <= self.tolerance


@dataclass(frozen=True, slots=True)
class _Station:
    """A queueing model to run: its label, the spec that realises it, λ and its theory."""

    model: str
    arrival_rate: float
    spec: NetworkFunctionSpec
    theory: QueueMetrics
    quantity: str  # "wq" or "p_block"
    horizon: float
    warmup: float
    tolerance: float = 0.03

    @property
    def parameters(self) -> str:
        k = "" if self.spec.capacity is None else f" K={self.spec.capacity}"
        return f"λ={self.arrival_rate:g} μ=1 c={self.spec.servers}{k}"


def _spec(servers: int, queue_limit: int | None) -> NetworkFunctionSpec:
    return NetworkFunctionSpec(
        name="station",
        kind=NetworkFunctionKind.SIM_DATA_REGISTER,
        servers=servers,
        queue_limit=queue_limit,
        service_time=ExponentialServiceTime(mean=1.0),
    )


def _stations(scale: float) -> list[_Station]:
    """The SimPy models; ``scale`` shortens the horizons for quick mode."""
    return [
        _Station("M/M/1", 0.7, _spec(1, None), mmc(0.7, 1, 1), "wq", 40_000 * scale, 500),
        _Station("M/M/4", 3.2, _spec(4, None), mmc(3.2, 1, 4), "wq", 8_000 * scale, 200),
        _Station("M/M/3/3", 2.0, _spec(3, 0), mmck(2.0, 1, 3, 3), "p_block", 8_000 * scale, 50),
        _Station("M/M/3/6", 3.0, _spec(3, 3), mmck(3.0, 1, 3, 6), "p_block", 8_000 * scale, 50),
    ]


def _echo(request: object) -> object:
    return request


def _ignore(ok: bool, payload: object) -> None:
    """A customer's answer: theory is held against the station's own books, not the answers."""


def simulate_station(
    spec: NetworkFunctionSpec, arrival_rate: float, horizon: float, warmup: float, seed: str
) -> OccupancySnapshot:
    """One SimPy replication with Poisson arrivals; statistics from the end of warm-up.

    The observation window opens and closes at instants when the station is empty (the
    regeneration points of the queue), so no call straddles its ends and L = λW holds over it
    exactly when the function's bookkeeping is right.
    """
    env = simpy.Environment()
    station: CallbackNetworkFunction[object, object] = CallbackNetworkFunction(
        env, spec, _echo, random.Random(f"{seed}:service")
    )
    arrivals = random.Random(f"{seed}:arrivals")

    def source() -> Generator[simpy.Event, Any, None]:
        while True:
            yield env.timeout(arrivals.expovariate(arrival_rate))
            station.submit(None, _ignore)

    def run_until_empty() -> None:
        while station.in_service + station.queue_length:
            env.step()

    env.process(source())
    env.run(until=warmup)
    run_until_empty()
    station.occupancy.reset()
    env.run(until=env.now + horizon)
    run_until_empty()
    return station.snapshot()


async def _live_run(
    spec: NetworkFunctionSpec,
    arrival_rate: float,
    customers: int,
    batches: int,
    time_scale: float,
    seed: str,
    on_batch: Callable[[], None],
) -> list[OccupancySnapshot]:
    """Poisson arrivals on wall time to a live function; one snapshot per batch after warm-up.

    A batch closes at the first arrival after ``per_batch`` calls that finds the station
    empty: batches are then whole busy cycles, independent of each other (the regenerative
    method), and Little's law holds over each without edge effects.
    """
    station: LiveNetworkFunction[object, object] = LiveNetworkFunction(
        spec, _echo, random.Random(f"{seed}:service"), time_scale=time_scale
    )
    arrivals = random.Random(f"{seed}:arrivals")
    loop = asyncio.get_running_loop()
    per_batch = customers // (batches + 1)  # the first batch is the warm-up
    warmed_up = False
    tasks: set[asyncio.Task[None]] = set()
    snapshots: list[OccupancySnapshot] = []

    async def customer() -> None:
        with contextlib.suppress(BackendError):
            await station.call(None)

    due = loop.time()
    in_batch = 0
    while len(snapshots) < batches:
        due += arrivals.expovariate(arrival_rate) * time_scale
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_batch >= per_batch and station.in_service + station.queue_length == 0:
            if warmed_up:
                snapshots.append(station.snapshot())
                on_batch()
            warmed_up = True
            station.occupancy.reset()
            in_batch = 0
        in_batch += 1
        task = asyncio.create_task(customer())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return snapshots


def _little_row(model: str, parameters: str, runs: Sequence[OccupancySnapshot]) -> ValidationRow:
    """L against λW pooled over the runs: total area under N(t) and total sojourn per second.

    Windows open and close on an empty station, so the two agree up to rounding unless a
    call is lost or counted twice (a cancelled waiter, a server never handed back).
    """
    window = math.fsum(s.window for s in runs)
    area = math.fsum(s.mean_in_system * s.window for s in runs)
    sojourn = math.fsum(s.throughput * s.window * s.mean_sojourn for s in runs)
    return ValidationRow(
        model, parameters, "Little L = λW", sojourn / window, area / window, 0.0, LITTLE_TOLERANCE
    )


def run_validation(
    *,
    quick: bool = False,
    seed: int = 1,
    replications: int = 10,
    progress: Progress | None = None,
    live: bool = True,
) -> list[ValidationRow]:
    """Every comparison, SimPy then live; ``quick`` trades precision for a run of seconds.

    The SimPy rows are deterministic for a seed; the live rows run on wall time and their
    verdict depends on how busy the machine is (``live=False`` leaves them out)."""
    if replications < 2:
        raise ValueError("need at least two replications for a confidence interval")
    stations = _stations(0.1 if quick else 1.0)
    live_customers, live_batches = ((900, 4) if quick else (6000, 8)) if live else (0, 0)
    task = None
    if progress is not None:
        task = progress.add_task("validate", total=len(stations) * replications + live_batches)

    def advance() -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    rows: list[ValidationRow] = []
    for station in stations:
        runs: list[OccupancySnapshot] = []
        for rep in range(replications):
            run_seed = f"{seed}:{station.model}:{rep}"
            runs.append(
                simulate_station(
                    station.spec, station.arrival_rate, station.horizon, station.warmup, run_seed
                )
            )
            advance()
        if station.quantity == "wq":
            measured, half = mean_and_half_width([r.mean_wait for r in runs])
            rows.append(
                ValidationRow(
                    station.model,
                    station.parameters,
                    "Wq (Erlang C)",
                    station.theory.wq,
                    measured,
                    half,
                    station.tolerance,
                )
            )
        else:
            measured, half = mean_and_half_width([r.blocking_probability for r in runs])
            rows.append(
                ValidationRow(
                    station.model,
                    station.parameters,
                    "P(block) (loss)",
                    station.theory.p_block,
                    measured,
                    half,
                    station.tolerance,
                )
            )
        rows.append(_little_row(station.model, station.parameters, runs))

    if live:
        rows.extend(_live_rows(seed, live_customers, live_batches, advance))
    return rows


def _live_rows(
    seed: int, customers: int, batches: int, advance: Callable[[], None]
) -> list[ValidationRow]:
    """M/M/4 at 60 % load with a 5 ms mean service, judged in model time units."""
    time_scale = 0.005
    arrival_rate = 2.4
    spec = _spec(4, None)
    # select() sleeps to the microsecond where epoll rounds every timer up to a millisecond,
    # which would lengthen a 5 ms service by about 10 %.
    with asyncio.Runner(loop_factory=_fine_timer_loop) as runner:
        runs = runner.run(
            _live_run(spec, arrival_rate, customers, batches, time_scale, f"{seed}:live", advance)
        )
    theory = mmc(arrival_rate, 1.0, 4)
    model = "M/M/4 live"
    parameters = f"λ={arrival_rate:g} μ=1 c=4, 1 = {time_scale * 1000:g} ms"
    wq, wq_half = mean_and_half_width([r.mean_wait / time_scale for r in runs])
    service, service_half = mean_and_half_width([r.mean_service / time_scale for r in runs])
    return [
        ValidationRow(model, parameters, "Wq (Erlang C)", theory.wq, wq, wq_half, LIVE_TOLERANCE),
        ValidationRow(
            model, parameters, "mean service", 1.0, service, service_half, LIVE_TOLERANCE
        ),
        _little_row(model, parameters, runs),
    ]


def _fine_timer_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def render(rows: Sequence[ValidationRow]) -> Table:
    """The rows as a rich table."""
    table = Table(title="network core vs queueing theory (95 % CI)")
    for column in ("model", "parameters", "quantity", "theory", "measured", "± 95 %", "verdict"):
        table.add_column(
            column,
            justify="right" if column in {"theory", "measured"} else "left",
            no_wrap=column != "parameters",
        )
    for row in rows:
        half = "-" if row.half_width == 0 else f"{row.half_width:.4f}"
        verdict = "[green]pass[/]" if row.passed else f"[red]FAIL[/] ({row.relative_error:.1%})"
        table.add_row(
            row.model,
            row.parameters,
            row.quantity,
            f"{row.theory:.4f}",
            f"{row.measured:.4f}",
            half,
            verdict,
        )
    return table
