"""Independent replications of a scenario, their 95 % Student-t intervals, and where they run.

A replication is one run of one variant with a seed derived from the scenario's seed
(replication 0 keeps the seed itself, so it is the plain ``ogsim run``; the others hash
``base:i``), and every variant gets the same seeds (common random numbers). Each run is
reduced in its worker to a small picklable :class:`RunDigest`; the digests of one variant
give each metric's mean with a Student-t interval, and each expectation is judged on that
interval: it passes when the whole interval lies within its bounds, fails when the whole
interval lies outside or some replication had no value, and is undecided (which does not
pass) otherwise.

:func:`execute` runs tasks in this process (one worker), in local worker processes
(``concurrent.futures``), or on a Dask distributed cluster given a scheduler address; results
come back in task order whatever the order of completion, so all three give the same list.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from sim.engine import World
from sim.results import RunResult
from sim.scenario import Scenario
from sim.student_t import student_t_quantile

__all__ = [
    "CONFIDENCE",
    "Interval",
    "IntervalVerdict",
    "RunDigest",
    "RunTask",
    "VariantSummary",
    "digest_result",
    "execute",
    "interval",
    "judge",
    "plan_replications",
    "replication_seeds",
    "run_task",
    "student_t_quantile",
    "summarise",
]

CONFIDENCE = 0.95
SERIES = ("offered", "attempts", "goodput", "completed", "latency_p50", "latency_p99")
"""The per-second columns a digest keeps for plots (means over replications)."""

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Interval:
    """A metric's mean over replications and its two-sided Student-t confidence interval.

    ``n`` counts the replications where the metric was defined. With fewer than two there
    is no interval (``low == high == mean``, ``half_width`` NaN). When some replication
    measured infinity (a recovery that never came), the mean is infinite and the interval
    runs from the smallest value measured to infinity.
    """

    mean: float
    low: float
    high: float
    n: int
    std: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        if self.n < 2 or not math.isfinite(self.mean):
            return math.nan
        return (self.high - self.low) / 2.0


def interval(values: Sequence[float | None], confidence: float = CONFIDENCE) -> Interval | None:
    """The Student-t interval of the defined values, or None when none is defined."""
    data = [v for v in values if v is not None and not math.isnan(v)]
    n = len(data)
    if n == 0:
        return None
    if any(math.isinf(v) for v in data):
        finite_low = min(data)
        return Interval(math.inf, finite_low, math.inf, n, math.nan, confidence)
    mean = math.fsum(data) / n
    if n == 1:
        return Interval(mean, mean, mean, 1, math.nan, confidence)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half = student_t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, confidence)


Outcome = Literal["pass", "fail", "undecided"]


@dataclass(frozen=True, slots=True)
class IntervalVerdict:
    """An expectation judged on the interval of its metric over ``runs`` replications.

    A replication where the value is undefined (a latency quantile over a window without a
    call, a ratio of nothing) makes the expectation fail, whatever the interval of the
    others. Dropping it would judge the mean of the replications that happened to have a
    value: a sample selected by its outcome, so the interval no longer estimates the mean of
    the quantity the expectation names, which is itself undefined when some runs have none.
    Undecided would say that more replications could settle it, and they cannot: an undefined
    value recurs with its own probability. So it fails, as a single run without a value does
    (every replication is such a run); ``interval.n`` of ``runs`` shows how many had one.
    """

    label: str
    metric: str
    interval: Interval | None
    min: float | None
    max: float | None
    runs: int = 0
    """Replications judged (``interval.n`` of them had a value); 0: as many as had one."""

    @property
    def undefined(self) -> int:
        """Replications without a value."""
        defined = 0 if self.interval is None else self.interval.n
        return max(0, self.runs - defined)

    @property
    def outcome(self) -> Outcome:
        """Pass: the whole interval within bounds; fail: wholly outside, or a replication
        without a value; else undecided."""
        iv = self.interval
        if iv is None or self.undefined:
            return "fail"
        low_ok = self.min is None or iv.low >= self.min
        high_ok = self.max is None or iv.high <= self.max
        if low_ok and high_ok:
            return "pass"
        if (self.min is not None and iv.high < self.min) or (
            self.max is not None and iv.low > self.max
        ):
            return "fail"
        return "undecided"

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"


def judge(
    label: str, metric: str, values: Sequence[float | None], lo: float | None, hi: float | None
) -> IntervalVerdict:
    """One expectation's verdict on the interval of ``values`` (one per replication; None
    or NaN where a replication had no value, which fails it)."""
    return IntervalVerdict(label, metric, interval(values), lo, hi, len(values))


# -- runs -----------------------------------------------------------------------------------


def replication_seeds(base: int, count: int) -> list[int]:
    """``count`` seeds: ``base`` itself, then 32-bit hashes of ``base:i`` (stable anywhere)."""
    seeds = [base]
    for i in range(1, count):
        digest = hashlib.sha256(f"ogsim:{base}:{i}".encode()).digest()
        seeds.append(int.from_bytes(digest[:4], "big"))
    return seeds[:count]


@dataclass(frozen=True, slots=True)
class RunTask:
    """One run to make: a variant with its replication's seed, at one point of a grid."""

    scenario: Scenario
    point: int = 0
    replication: int = 0


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """An expectation's value in one run (the engine's Verdict, without its methods)."""

    label: str
    metric: str
    value: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class RunDigest:
    """What a worker sends back from one run: totals (``metrics``), expectation values
    (``verdicts``, in the scenario's order), a few series."""

    point: int
    variant: str
    replication: int
    seed: int
    metrics: dict[str, float | None]
    verdicts: tuple[VerdictRow, ...]
    rows: tuple[dict[str, float | None], ...]
    events: dict[str, tuple[float, float]]
    wall: float = field(default=0.0, compare=False)

    @property
    def passed(self) -> bool:
        return all(
            v.value is not None
            and not math.isnan(v.value)
            and (v.min is None or v.value >= v.min)
            and (v.max is None or v.value <= v.max)
            for v in self.verdicts
        )


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def digest_result(result: RunResult, point: int = 0, replication: int = 0) -> RunDigest:
    """Reduce a run to its digest: the totals as ``metrics``, the expectations' values apart
    in ``verdicts`` (in the scenario's order), so an expectation named like a total does not
    replace it."""
    metrics: dict[str, float | None] = {
        # an undefined total (availability of a run where nothing completed) stays None:
        # its interval leaves it out instead of averaging a made-up 0 in
        k: None if v is None else float(v)
        for k, v in result.totals().items()
    }
    rows = tuple(
        {"t": row["t"], **{key: _number(float(row.get(key, 0.0))) for key in SERIES}}
        for row in result.rows
    )
    return RunDigest(
        point=point,
        variant=result.scenario.variant,
        replication=replication,
        seed=result.scenario.seed,
        metrics=metrics,
        verdicts=tuple(
            VerdictRow(v.label, v.metric, _number(v.value), v.min, v.max) for v in result.verdicts
        ),
        rows=rows,
        events=dict(result.events),
    )


def run_task(task: RunTask) -> RunDigest:
    """Run one task in virtual time and digest it (the function shipped to workers)."""
    started = time.perf_counter()
    result = World(task.scenario).run()
    digest = digest_result(result, task.point, task.replication)
    return RunDigest(
        digest.point,
        digest.variant,
        digest.replication,
        digest.seed,
        digest.metrics,
        digest.verdicts,
        digest.rows,
        digest.events,
        wall=time.perf_counter() - started,
    )


def plan_replications(variants: Sequence[Scenario], count: int, point: int = 0) -> list[RunTask]:
    """``count`` replications of every variant, seeds derived from each variant's seed."""
    tasks = []
    for scenario in variants:
        for replication, seed in enumerate(replication_seeds(scenario.seed, count)):
            tasks.append(RunTask(scenario.model_copy(update={"seed": seed}), point, replication))
    return tasks


def execute(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    done: Callable[[int], None] | None = None,
) -> list[R]:
    """``fn`` over ``tasks``: in process, in worker processes, or on a Dask cluster.

    ``workers`` defaults to the CPU count (capped at the number of tasks); 1 runs in this
    process. ``scheduler`` is a Dask scheduler address (``tcp://host:8786``) and wins over
    ``workers``. ``done`` is called with the number of finished tasks after each one.
    """
    results: list[R | None] = [None] * len(tasks)
    finished = 0

    def record(index: int, value: R) -> None:
        nonlocal finished
        results[index] = value
        finished += 1
        if done is not None:
            done(finished)

    if scheduler is not None:
        from distributed import Client
        from distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            futures = client.map(fn, list(tasks), pure=False)
            positions = {future.key: i for i, future in enumerate(futures)}
            for future, value in dask_completed(futures, with_results=True):
                record(positions[future.key], value)
    else:
        count = min(workers or os.cpu_count() or 1, max(1, len(tasks)))
        if count <= 1:
            for i, task in enumerate(tasks):
                record(i, fn(task))
        else:
            with ProcessPoolExecutor(max_workers=count) as pool:
                pending = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
                for future in as_completed(pending):
                    record(pending[future], future.result())
    return [r for r in results if r is not None]


# -- summaries ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One variant (at one grid point) over its replications."""

    point: int
    variant: str
    seeds: tuple[int, ...]
    metrics: dict[str, Interval | None]
    verdicts: tuple[IntervalVerdict, ...]
    series: dict[str, list[Interval | None]]
    t: list[float]
    events: dict[str, tuple[float, float]]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def measures(self) -> list[str]:
        """The names :meth:`measure` knows: expectation labels, then totals."""
        return list(dict.fromkeys([*(v.label for v in self.verdicts), *self.metrics]))

    def measure(self, name: str) -> Interval | None:
        """The interval of an expectation's value by its label, else of a total by its name
        (an expectation's label first: an unnamed whole-run ``availability`` expectation
        measures the total of that name, a named one what it names); None if neither, or
        if no replication had a value."""
        for v in self.verdicts:
            if v.label == name:
                return v.interval
        return self.metrics.get(name)


def summarise(digests: Sequence[RunDigest]) -> list[VariantSummary]:
    """Group digests by (point, variant), in first-seen order, and take their intervals."""
    groups: dict[tuple[int, str], list[RunDigest]] = {}
    for digest in digests:
        groups.setdefault((digest.point, digest.variant), []).append(digest)
    summaries = []
    for (point, variant), runs in groups.items():
        runs = sorted(runs, key=lambda d: d.replication)
        names = list(dict.fromkeys(name for run in runs for name in run.metrics))
        metrics = {name: interval([run.metrics.get(name) for run in runs]) for name in names}
        first = runs[0]
        verdicts = tuple(
            judge(
                v.label,
                v.metric,
                [run.verdicts[i].value if i < len(run.verdicts) else None for run in runs],
                v.min,
                v.max,
            )
            for i, v in enumerate(first.verdicts)
        )
        length = min(len(run.rows) for run in runs)
        t = [float(first.rows[i]["t"] or 0.0) for i in range(length)]
        series = {
            key: [interval([run.rows[i].get(key) for run in runs]) for i in range(length)]
            for key in SERIES
        }
        summaries.append(
            VariantSummary(
                point,
                variant,
                tuple(run.seed for run in runs),
                metrics,
                verdicts,
                series,
                t,
                first.events,
            )
        )
    return summaries
