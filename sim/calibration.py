"""Calibration: the simulation, fitted to the live federation, predicts what live does.

The ladder of live steps (:mod:`sim.calibration_live`, measured by ``ogsim calibrate``) is
fitted into a scenario (:mod:`sim.calibration_scenario`); each step is then simulated at
the rates live served, and the simulated p50 and p95 set beside the live ones (from the
gateways' own histograms, the same span the simulation measures: gateway in to gateway
out). Saturation is predicted, not copied: the simulation is offered three times the busiest
step's traffic, and its saturation throughput is where the first operator runs out for the
step's mix (live, Locust's users wait on the slowest operator, so the mix stays fixed).
"""

from __future__ import annotations

import copy
import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.calibration_live import LiveStep
from sim.calibration_scenario import (
    TierModel,
    calibrated_document,
    fit_tiers,
    with_rates,
    write,
)
from sim.engine import run_scenario
from sim.metrics import quantile
from sim.results import RunResult

__all__ = [
    "OVERLOAD",
    "Calibration",
    "Row",
    "calibrate",
    "relative_error",
    "simulated_latency",
]

OVERLOAD = 3.0
"""The simulation's least offered load for the saturation figure, as a multiple of the
busiest step (more when the fitted gateways could serve more than that)."""


def relative_error(simulated: float, live: float) -> float:
    """(simulated - live) / live; NaN when live is zero or either is not a number."""
    if not (math.isfinite(simulated) and math.isfinite(live)) or live == 0:
        return math.nan
    return (simulated - live) / live


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
class Calibration:
    """The outcome: the table, the fitted tiers, and where the files went."""

    rows: list[Row]
    tiers: list[dict[str, Any]]
    scenario: Path
    files: list[Path]

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": [r.as_json() for r in self.rows],
            "tiers": self.tiers,
            "scenario": str(self.scenario),
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


def _capacity_bound(models: dict[str, TierModel], shares: dict[str, float]) -> float:
    """Calls/s at which the first one-worker gateway is busy all the time, for this mix."""
    total = sum(shares.values())
    bounds = [
        1 / models[op].gateway_service()["mean"] / (n / total) for op, n in shares.items() if n
    ]
    return min(bounds) if bounds else 0.0


def _live_latency(step: LiveStep) -> tuple[float, float]:
    calls = step.calls()
    if calls is None:
        return math.nan, math.nan
    return calls.quantile(0.5) * 1000, calls.quantile(0.95) * 1000


def calibrate(steps: list[LiveStep], out: Path, sim_seconds: float = 60.0) -> Calibration:
    """Fit the tiers, write the calibrated scenario, simulate each level and saturation.

    Writes ``calibrated.yaml`` (the busiest step's rates), ``calibration.json``,
    ``calibration.csv`` and ``calibration.png`` into ``out``. Raises ValueError when no
    step served a call.
    """
    useful = [s for s in steps if s.throughput > 0]
    if not useful:
        raise ValueError("no step served any call: nothing to calibrate")
    lightest = min(useful, key=lambda s: s.throughput)
    busiest = max(useful, key=lambda s: s.throughput)
    models = fit_tiers(lightest, busiest)
    out.mkdir(parents=True, exist_ok=True)
    scenario_path = out / "calibrated.yaml"
    document = calibrated_document(models, busiest, sim_seconds)
    write(document, scenario_path)
    rows = []
    for level, step in _levels(useful):
        level_doc = calibrated_document(models, step, sim_seconds)
        scenario = write(level_doc, out / "levels" / f"{level}.yaml")
        result = run_scenario(scenario)
        p50, p95 = simulated_latency(result)
        live_p50, live_p95 = _live_latency(step)
        rows.append(
            Row(
                level,
                step.users,
                step.throughput,
                result.totals()["goodput_per_second"],
                live_p50,
                p50 * 1000,
                live_p95,
                p95 * 1000,
            )
        )
    shares = {op: s.call_count for op, s in busiest.operators.items() if op in models}
    total = sum(shares.values())
    factor = max(OVERLOAD, 1.5 * _capacity_bound(models, shares) / busiest.throughput)
    overload = write(with_rates(document, factor), out / "levels" / "overload.yaml")
    result = run_scenario(overload)
    saturated = _saturation(result, {op: n / total for op, n in shares.items()})
    live_peak = max(s.throughput for s in useful)
    peak_step = max(useful, key=lambda s: s.throughput)
    rows.append(Row("saturation", peak_step.users, live_peak, saturated, *([math.nan] * 4)))
    calibration = Calibration(
        rows, [m.as_json() for m in models.values()], scenario_path, [scenario_path]
    )
    files = [scenario_path, *_write_outputs(calibration, useful, out)]
    return Calibration(rows, calibration.tiers, scenario_path, files)


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
            "cpu_per_call_ms": {
                op: (o.cpu / o.call_count * 1000 if o.call_count else None)
                for op, o in s.operators.items()
            },
        }
        for s in sorted(steps, key=lambda s: s.users)
    ]
    json_path = out / "calibration.json"
    json_path.write_text(json.dumps(data, indent=1, default=str).replace("NaN", "null"))
    csv_path = out / "calibration.csv"
    with csv_path.open("w", newline="") as handle:
        rows = [r.as_json() for r in calibration.rows]
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    png = out / "calibration.png"
    _plot(calibration.rows, steps, png)
    return [json_path, csv_path, png]


def _plot(rows: list[Row], steps: list[LiveStep], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    levels = [r for r in rows if r.level != "saturation"]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4))
    ordered = sorted(steps, key=lambda s: s.users)
    left.plot([s.users for s in ordered], [s.throughput for s in ordered], "o-", label="live")
    saturation = rows[-1]
    left.axhline(saturation.sim_throughput, color="tab:orange", ls="--", label="sim saturation")
    left.set_xlabel("Locust users")
    left.set_ylabel("CAMARA calls/s")
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
