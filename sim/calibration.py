"""Calibration: the simulation, fitted to the live federation, predicts what live does.

The live steps (:mod:`sim.calibration_live`, measured by ``ogsim calibrate``) are a
saturation step (users back to back) and load levels (Poisson arrivals at shares of it).
The levels are fitted into a scenario (:mod:`sim.calibration_scenario`); each level is then
simulated at the rates live served, and the simulated p50 and p95 set beside the live ones
(from the gateways' own histograms, the same span the simulation measures: gateway in to
gateway out). Saturation is predicted, not copied: the simulation, with the CPU per call
fitted on the levels and the waits for a core the kernel reported in the saturation step,
is offered half as much again as it or live could serve (clients that wait as long as it
takes, so the queue's growth costs no timeouts), and its saturation throughput is where the
first operator runs out for the step's mix.

Two more stages follow the ladder: the federation step's tiers (every party under realistic
users, :mod:`sim.calibration_tiers`) and the what-ifs (:mod:`sim.calibration_what_if`).
"""

from __future__ import annotations

import copy
import csv
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from operators import ConfigFileError
from sim.calibration_fit import relative_error
from sim.calibration_live import LiveBackends, LiveStep, OperatorStep
from sim.calibration_scenario import (
    TierModel,
    calibrated_document,
    fit_tiers,
    mean_of,
    with_rates,
    write,
)
from sim.calibration_tiers import TierRow, federation_document, fit_federation, tier_rows
from sim.calibration_what_if import WhatIfRow, what_if_document, what_if_row, write_what_if
from sim.engine import run_scenario
from sim.metrics import quantile
from sim.results import RunResult
from sim.scenario import Scenario

__all__ = [
    "OVERLOAD",
    "Calibration",
    "Row",
    "WhatIf",
    "calibrate",
    "relative_error",
    "simulated_latency",
]

OVERLOAD = 1.5
"""The simulation's offered load for the saturation figure, as a multiple of the larger of
the live saturation throughput and the fitted gateways' capacity."""


FEDERATION_CALLS = 20_000
"""Calls the federation step's simulation runs for (at its light rates, many more virtual
seconds than live measured: the tiers' p95 from a few hundred calls would be noise)."""


def simulated_latency(result: RunResult) -> tuple[float, float]:
    """p50 and p95 in seconds of every successful call of a run (NaN when none)."""
    merged = None
    for stats in result.keys.values():
        if stats.latency.count == 0:
            continue
        if merged is None:
            merged = copy.deepcopy(stats.latency)
        else:
            merged.merge(stats.latency)
    if merged is None:
        return math.nan, math.nan
    return quantile(merged, 0.5) or math.nan, quantile(merged, 0.95) or math.nan


@dataclass(frozen=True)
class Row:
    """One line of the table: a load level (or saturation), live beside simulated."""

    level: str
    users: int
    live_throughput: float
    sim_throughput: float
    live_p50_ms: float
    sim_p50_ms: float
    live_p95_ms: float
    sim_p95_ms: float

    @property
    def errors(self) -> dict[str, float]:
        return {
            "throughput": relative_error(self.sim_throughput, self.live_throughput),
            "p50": relative_error(self.sim_p50_ms, self.live_p50_ms),
            "p95": relative_error(self.sim_p95_ms, self.live_p95_ms),
        }

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), **{f"error_{k}": v for k, v in self.errors.items()}}


@dataclass(frozen=True)
class WhatIf:
    """The questions asked of the calibrated scenario: how much more traffic, over how long
    a run (None: not asked)."""

    scale: float = 100.0
    seconds: float = 240.0


@dataclass(frozen=True)
class Calibration:
    """The outcome: the table, the fitted tiers, the what-if answers, where the files went."""

    rows: list[Row]
    tiers: list[dict[str, Any]]
    scenario: Path
    files: list[Path]
    what_if: list[WhatIfRow] = field(default_factory=list)
    by_tier: list[TierRow] = field(default_factory=list)
    """The federation step's tiers, live beside simulated or fitted (empty without one)."""
    federation: dict[str, Any] = field(default_factory=dict)
    """What the federation step fitted (gateways at its mix, backends, the aggregator)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": [r.as_json() for r in self.rows],
            "tiers": self.tiers,
            "scenario": str(self.scenario),
            "by_tier": [r.as_json() for r in self.by_tier],
            "federation": self.federation,
            "what_if": [r.as_json() for r in self.what_if],
        }


def _levels(steps: list[LiveStep]) -> list[tuple[str, LiveStep]]:
    """Three load levels: the lightest, the middle and the busiest step."""
    ordered = sorted(steps, key=lambda s: s.throughput)
    picks = [("light", ordered[0]), ("medium", ordered[len(ordered) // 2]), ("heavy", ordered[-1])]
    seen: set[int] = set()
    chosen = []
    for name, step in picks:
        if id(step) not in seen:
            seen.add(id(step))
            chosen.append((name, step))
    return chosen


def _saturation(result: RunResult, shares: dict[str, float]) -> float:
    """The total rate at which the first operator saturates, for the step's mix."""
    served: dict[str, float] = {}
    for (operator, _api, _app), stats in result.keys.items():
        served[operator] = served.get(operator, 0.0) + stats.ok
    limits = [
        served.get(op, 0.0) / result.scenario.duration / share
        for op, share in shares.items()
        if share > 0
    ]
    return min(limits) if limits else math.nan


def _capacity_bound(scenario: Scenario, shares: dict[str, float]) -> float:
    """Calls/s at which the first one-worker gateway is busy all the time, for this mix."""
    bounds = []
    for op, share in shares.items():
        spec = scenario.topology.operators.get(op)
        if spec is None or share <= 0:
            continue
        for dc in spec.data_centres.values():
            bounds.append(1 / max(dc.gateway.service_time.mean, 1e-9) / share)
    return min(bounds) if bounds else 0.0


def _live_latency(step: LiveStep) -> tuple[float, float]:
    calls = step.calls()
    if calls is None:
        return math.nan, math.nan
    return calls.quantile(0.5) * 1000, calls.quantile(0.95) * 1000


def _mean_latency_by_operator(result: RunResult) -> dict[str, float]:
    """Mean latency in seconds of each operator's successful calls in a run."""
    sums: dict[str, tuple[float, float]] = {}
    for (operator, _api, _app), stats in result.keys.items():
        sketch = stats.latency
        total, count = sums.get(operator, (0.0, 0.0))
        sums[operator] = (total + sketch.sum, count + sketch.count)
    return {op: total / count for op, (total, count) in sums.items() if count}


def _fit_work_after_answer(
    models: dict[str, TierModel],
    lightest: LiveStep,
    out: Path,
    sim_seconds: float,
    backends: Mapping[str, LiveBackends] | None = None,
) -> None:
    """The share of the loop's time per call that lies outside the gateway's measured span.

    The live histogram ends when the answer starts; the metering commit (and the answer's
    writing) come after it on the same loop. At the lightest level, where calls hardly
    queue, the simulation with all the loop's time before the answer overshoots the live
    mean by about that part: the overshoot over the loop's mean time is the share
    (0 to 0.9). The light level's mean is therefore in-sample; the other levels and the
    saturation are not.
    """
    document = calibrated_document(models, lightest, sim_seconds, backends=backends)
    result = run_scenario(write(document, out / "levels" / "fit.yaml"))
    simulated = _mean_latency_by_operator(result)
    for op, model in models.items():
        step = lightest.operators.get(op)
        calls = step.all_calls() if step is not None else None
        service = document["topology"]["operators"][op]["data_centres"]["live"]["gateway"]
        loop = mean_of(service["service_time"])
        if calls is None or op not in simulated or not loop > 0:
            continue
        overshoot = (simulated[op] - calls.mean) / loop
        model.after_answer = min(max(overshoot, 0.0), 0.9)


def _split(steps: list[LiveStep]) -> tuple[list[LiveStep], LiveStep]:
    """The load levels and the saturation step (the busiest when none ran back to back,
    then also a level)."""
    saturating = [s for s in steps if s.saturating]
    levels = [s for s in steps if not s.saturating] or steps
    pool = saturating or steps
    return levels, max(pool, key=lambda s: s.throughput)


def calibrate(
    steps: list[LiveStep],
    out: Path,
    sim_seconds: float = 60.0,
    what_if: WhatIf | None = None,
    progress: Callable[[str], None] = lambda line: None,
    federation: LiveStep | None = None,
    backends: Mapping[str, LiveBackends] | None = None,
) -> Calibration:
    """Fit the tiers, write the calibrated scenario, simulate each level and saturation,
    then fit and simulate the ``federation`` step's tiers and (``what_if``) ask the
    calibrated federation what live cannot answer.

    Writes ``calibrated.yaml`` (the busiest level's rates), ``calibration.json``,
    ``calibration.csv`` and ``calibration.png`` into ``out`` as soon as the ladder is
    simulated; then ``federation.yaml``, ``by_tier.csv`` and ``by_tier.png`` for the
    federation step, and ``what_if.yaml`` and its report under ``what-if/``. A later stage
    that cannot be built (a scenario the loader refuses) is reported through ``progress``
    and leaves the earlier outputs. Raises ValueError when no step served a call.

    ``backends`` sizes and protects each simulated operator's network functions as the live
    one's were (:func:`sim.calibration_live.live_backends`); an operator it does not name gets
    the defaults.
    """
    useful = [s for s in steps if s.throughput > 0]
    if not useful:
        raise ValueError("no step served any call: nothing to calibrate")
    levels, saturation = _split(useful)
    models = fit_tiers(levels)
    out.mkdir(parents=True, exist_ok=True)
    lightest = min(levels, key=lambda s: s.throughput)
    busiest = max(levels, key=lambda s: s.throughput)
    _fit_work_after_answer(models, lightest, out, sim_seconds, backends)
    scenario_path = out / "calibrated.yaml"
    write(calibrated_document(models, busiest, sim_seconds, backends=backends), scenario_path)
    rows = [*_level_rows(models, levels, out, sim_seconds, backends)]
    rows.append(_saturation_row(models, saturation, out, sim_seconds, backends))
    progress(
        f"saturation: {rows[-1].sim_throughput:.1f} calls/s simulated, "
        f"{saturation.throughput:.1f} live"
    )
    calibration = Calibration(
        rows, [m.as_json() for m in models.values()], scenario_path, [scenario_path]
    )
    calibration = _written(calibration, useful, out)
    if federation is not None and federation.throughput > 0:
        try:
            calibration = _federation_stage(
                calibration, models, federation, out, sim_seconds, backends
            )
        except (ConfigFileError, ValueError) as error:
            progress(f"federation step not fitted: {error}")
        else:
            progress(f"federation step: {len(calibration.by_tier)} tiers fitted and simulated")
    if what_if is not None:
        light = calibrated_document(models, lightest, sim_seconds, backends=backends)
        heavy = calibrated_document(models, busiest, sim_seconds, backends=backends)
        document = what_if_document(light, heavy, what_if.scale, what_if.seconds)
        try:
            answers, report = _ask(document, out, progress)
        except (ConfigFileError, ValueError) as error:
            progress(f"what-ifs not run: {error}")
        else:
            calibration = replace(
                calibration,
                what_if=answers,
                files=[*calibration.files, out / "what_if.yaml", report],
            )
    return _written(calibration, useful, out)


def _written(calibration: Calibration, steps: list[LiveStep], out: Path) -> Calibration:
    """The calibration with its table, JSON, CSVs and plots (re)written beside its files."""
    written = _write_outputs(calibration, steps, out)
    kept = [f for f in calibration.files if f not in written]
    return replace(calibration, files=[*kept, *written])


def _level_rows(
    models: dict[str, TierModel],
    levels: list[LiveStep],
    out: Path,
    sim_seconds: float,
    backends: Mapping[str, LiveBackends] | None = None,
) -> list[Row]:
    """Each load level simulated at the rates live served, beside live."""
    rows = []
    for level, step in _levels(levels):
        scenario = write(
            calibrated_document(models, step, sim_seconds, backends=backends),
            out / "levels" / f"{level}.yaml",
        )
        result = run_scenario(scenario)
        p50, p95 = simulated_latency(result)
        live_p50, live_p95 = _live_latency(step)
        goodput = result.counts()["goodput_per_second"]
        rows.append(
            Row(
                level,
                step.users,
                step.throughput,
                goodput,
                live_p50,
                p50 * 1000,
                live_p95,
                p95 * 1000,
            )
        )
    return rows


def _saturation_row(
    models: dict[str, TierModel],
    saturation: LiveStep,
    out: Path,
    sim_seconds: float,
    backends: Mapping[str, LiveBackends] | None = None,
) -> Row:
    """Saturation predicted: the simulation offered more than it or live could serve."""
    shares = {op: s.call_count for op, s in saturation.operators.items() if op in models}
    total = sum(shares.values())
    mix = {op: n / total for op, n in shares.items()}
    document = calibrated_document(models, saturation, sim_seconds, backends=backends)
    at_live = write(document, out / "levels" / "saturation.yaml")
    bound = max(_capacity_bound(at_live, mix), saturation.throughput)
    factor = OVERLOAD * bound / saturation.throughput
    overload = write(
        with_rates(document, factor, timeout=10 * sim_seconds), out / "levels" / "overload.yaml"
    )
    saturated = _saturation(run_scenario(overload), mix)
    return Row("saturation", saturation.users, saturation.throughput, saturated, *([math.nan] * 4))


def _federation_stage(
    calibration: Calibration,
    models: dict[str, TierModel],
    federation: LiveStep,
    out: Path,
    sim_seconds: float,
    backends: Mapping[str, LiveBackends] | None = None,
) -> Calibration:
    """The federation step's tiers fitted, simulated for about :data:`FEDERATION_CALLS`
    calls, and set beside live."""
    fit = fit_federation(federation, models)
    path = out / "federation.yaml"
    seconds = min(max(FEDERATION_CALLS / federation.throughput, sim_seconds), 3600.0)
    result = run_scenario(write(federation_document(fit, federation, seconds, backends), path))
    return replace(
        calibration,
        by_tier=tier_rows(fit, federation, result),
        federation=fit.as_json(),
        files=[*calibration.files, path],
    )


def _ask(
    document: dict[str, Any], out: Path, progress: Callable[[str], None]
) -> tuple[list[WhatIfRow], Path]:
    """Run every what-if variant; their rows, and the report folder (as ``ogsim run``'s)."""
    from sim.report import write_report  # matplotlib only once there is something to plot

    variants = write_what_if(out / "what_if.yaml", document)
    results = []
    rows = []
    for variant in variants:
        result = run_scenario(variant)
        results.append(result)
        rows.append(what_if_row(variant, result, simulated_latency(result)))
        row = rows[-1]
        progress(
            f"what if {variant.variant}: {row.goodput_per_second:.0f} of"
            f" {row.offered_per_second:.0f} calls/s served, p95 {row.p95_ms:.0f} ms,"
            f" up to {row.replicas_max:.0f} replicas; failed: {row.failure_shares()}"
        )
    folder = out / "what-if"
    write_report(results, folder, source=out / "what_if.yaml")
    return rows, folder


def _write_outputs(calibration: Calibration, steps: list[LiveStep], out: Path) -> list[Path]:
    data = calibration.as_json()
    data["steps"] = [
        {
            "users": s.users,
            "seconds": s.seconds,
            "throughput": s.throughput,
            "p50_ms": _live_latency(s)[0],
            "p95_ms": _live_latency(s)[1],
            "client": s.client,
            "saturating": s.saturating,
            "load_average": s.load_average,
            "busy_cores": s.busy_cores,
            "locust_cores": s.client_cores,
            "operators": {op: _scheduler(o) for op, o in s.operators.items()},
        }
        for s in sorted(steps, key=lambda s: (not s.saturating, s.throughput))
    ]
    json_path = out / "calibration.json"
    json_path.write_text(json.dumps(data, indent=1, default=str).replace("NaN", "null"))
    csv_path = out / "calibration.csv"
    with csv_path.open("w", newline="") as handle:
        rows = [r.as_json() for r in calibration.rows]
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written = [json_path, csv_path]
    if calibration.by_tier:
        tiers_path = out / "by_tier.csv"
        with tiers_path.open("w", newline="") as handle:
            tiers = [r.as_json() for r in calibration.by_tier]
            writer = csv.DictWriter(handle, fieldnames=list(tiers[0]))
            writer.writeheader()
            writer.writerows(tiers)
        written.append(tiers_path)
    png = out / "calibration.png"
    _plot(calibration.rows, steps, png)
    written.append(png)
    if calibration.by_tier:
        written.append(_plot_tiers(calibration.by_tier, out / "by_tier.png"))
    return written


def _scheduler(step: OperatorStep) -> dict[str, float | None]:
    """What the kernel said about an operator's event loop in a step, per call."""
    calls = step.call_count
    if not calls:
        return {}
    return {
        "calls_per_second": calls / step.seconds,
        "process_cpu_per_call_ms": step.cpu / calls * 1000,
        "loop_cpu_per_call_ms": step.ran / calls * 1000,
        "loop_waits_per_call": step.slices / calls,
        "loop_wait_ms": step.waited / step.slices * 1000 if step.slices else None,
        "stretch": step.stretch,
        "loop_busy": (step.ran + step.waited) / step.seconds,
    }


def _plot(rows: list[Row], steps: list[LiveStep], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    levels = [r for r in rows if r.level != "saturation"]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    places = list(range(len(rows)))
    left.bar([i - 0.2 for i in places], [r.live_throughput for r in rows], 0.4, label="live")
    left.bar([i + 0.2 for i in places], [r.sim_throughput for r in rows], 0.4, label="sim")
    left.set_xticks(places, [r.level for r in rows])
    left.set_ylabel("CAMARA calls/s")
    left.set_title(f"load average {max(s.load_average for s in steps):.1f} at most", fontsize=9)
    left.legend()
    x = [r.live_throughput for r in levels]
    right.plot(x, [r.live_p50_ms for r in levels], "o-", color="tab:blue", label="live p50")
    right.plot(x, [r.sim_p50_ms for r in levels], "s--", color="tab:blue", label="sim p50")
    right.plot(x, [r.live_p95_ms for r in levels], "o-", color="tab:red", label="live p95")
    right.plot(x, [r.sim_p95_ms for r in levels], "s--", color="tab:red", label="sim p95")
    right.set_xlabel("CAMARA calls/s")
    right.set_ylabel("ms at the gateway")
    right.legend()
    figure.suptitle("ogsim calibrate: live federation against the calibrated simulation")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _plot_tiers(rows: list[TierRow], path: Path) -> Path:
    """Each tier's p50 and p95, live beside the model, on a log scale (backends reach
    hundreds of milliseconds, grants a few)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(11, 0.45 * len(rows) + 1.5))
    places = list(range(len(rows)))
    bars = [
        ("live p50", [r.live_p50_ms for r in rows], -0.3, "tab:blue", 1.0),
        ("model p50", [r.model_p50_ms for r in rows], -0.1, "tab:blue", 0.45),
        ("live p95", [r.live_p95_ms for r in rows], 0.1, "tab:red", 1.0),
        ("model p95", [r.model_p95_ms for r in rows], 0.3, "tab:red", 0.45),
    ]
    for label, values, offset, colour, alpha in bars:
        axes.barh([p + offset for p in places], values, 0.2, label=label, color=colour, alpha=alpha)
    axes.set_yticks(places, [f"{r.tier} ({r.basis})" for r in rows])
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("ms")
    axes.legend(loc="lower right")
    axes.set_title("ogsim calibrate: each tier of the federation step, live against the model")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
