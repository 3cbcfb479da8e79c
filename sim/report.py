"""A run's output folder: ``summary.json``, one time-series CSV per variant, and PNG plots.

``summary.json`` holds only virtual-time results, rounded and with sorted keys, so the same
scenario and seed give the same bytes (wall-clock figures go to the terminal only). Plots use
matplotlib's Agg backend, one column per variant, so the thundering herd's collapse and
recovery sit side by side; faults and spikes are shaded.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from sim.engine import RunResult
from sim.metrics import quantile

__all__ = ["summary", "write_report"]


def _clean(value: Any) -> Any:
    """Round floats and make infinities and NaNs JSON-safe, recursively."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return round(value, 6)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _variant(result: RunResult) -> dict[str, Any]:
    little = result.little
    per_key = []
    for (operator, api, application), stats in sorted(result.keys.items()):
        per_key.append(
            {
                "operator": operator,
                "api": api,
                "application": application,
                "offered": stats.offered,
                "attempts": stats.attempts,
                "succeeded": stats.ok,
                "throttled": stats.throttled,
                "errors": dict(sorted(stats.errors.items())),
                "latency_p50": quantile(stats.latency, 0.5),
                "latency_p99": quantile(stats.latency, 0.99),
            }
        )
    return {
        "description": result.scenario.description,
        "passed": result.passed,
        "totals": result.totals(),
        "little": {
            "mean_in_system": little.mean_in_system,
            "arrival_rate": little.arrival_rate,
            "mean_time_in_system": little.mean_time_in_system,
            "lambda_w": little.product,
            "relative_error": little.relative_error,
            "holds": little.holds,
        },
        "stations": [
            {
                "name": s.name,
                "mean_in_system": s.mean_in_system,
                "throughput": s.throughput,
                "mean_sojourn": s.mean_sojourn,
                "relative_error": s.relative_error,
            }
            for s in result.stations
        ],
        "expectations": [
            {
                "name": v.label,
                "metric": v.metric,
                "value": v.value,
                "min": v.min,
                "max": v.max,
                "passed": v.passed,
            }
            for v in result.verdicts
        ],
        "events": {name: list(span) for name, span in sorted(result.events.items())},
        "breaker_transitions": result.breaker_changes,
        "balancer_transitions": [
            {"at": at, "operator": op, "data_centre": dc, "in_rotation": healthy}
            for at, op, dc, healthy in result.balancer_changes
        ],
        "per_key": per_key,
    }


def summary(results: Sequence[RunResult]) -> dict[str, Any]:
    """The deterministic digest of every variant's run."""
    first = results[0].scenario
    return _clean(
        {
            "scenario": first.name,
            "seed": first.seed,
            "duration": first.duration,
            "passed": all(r.passed for r in results),
            "variants": {r.scenario.variant: _variant(r) for r in results},
        }
    )


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    columns = sorted({key for row in rows for key in row} - {"t"})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", *columns])
        for row in rows:
            writer.writerow([row["t"], *(_csv_value(row.get(column, 0)) for column in columns)])


def _csv_value(value: float) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _shade(ax: Axes, result: RunResult) -> None:
    for name, (start, end) in sorted(result.events.items()):
        ax.axvspan(start, end, color="tab:red", alpha=0.12)
        ax.text(
            start,
            1.0,
            f" {name}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            color="tab:red",
        )


def _series(rows: list[dict[str, float]], key: str) -> list[float]:
    return [row.get(key, 0.0) for row in rows]


def _grid(results: Sequence[RunResult], title: str) -> tuple[Any, list[Axes]]:
    fig, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 4), sharey=True, squeeze=False
    )
    fig.suptitle(title)
    return fig, list(axes[0])


def _plot_goodput(results: Sequence[RunResult], out: Path) -> None:
    fig, axes = _grid(results, "offered load, attempts and goodput (per second)")
    for ax, result in zip(axes, results, strict=True):
        t = _series(result.rows, "t")
        ax.plot(
            t,
            _series(result.rows, "attempts"),
            label="attempts (with retries)",
            lw=0.8,
            color="tab:gray",
        )
        ax.plot(t, _series(result.rows, "offered"), label="offered", lw=1.0, color="tab:blue")
        ax.plot(t, _series(result.rows, "goodput"), label="goodput", lw=1.4, color="tab:green")
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel("virtual time (s)")
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("operations / s")
    fig.tight_layout()
    fig.savefig(out / "goodput.png", dpi=100)
    plt.close(fig)


def _plot_latency(results: Sequence[RunResult], out: Path) -> None:
    fig, axes = _grid(results, "latency of successful operations (s)")
    for ax, result in zip(axes, results, strict=True):
        t = _series(result.rows, "t")
        ax.plot(t, _series(result.rows, "latency_p50"), label="p50", lw=1.0)
        ax.plot(t, _series(result.rows, "latency_p99"), label="p99", lw=1.0)
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel("virtual time (s)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)


def _plot_prefixed(
    results: Sequence[RunResult], out: Path, prefixes: tuple[str, ...], title: str, name: str
) -> None:
    fig, axes = _grid(results, title)
    for ax, result in zip(axes, results, strict=True):
        t = _series(result.rows, "t")
        keys = sorted(
            {k for row in result.rows for k in row if k.startswith(prefixes)},
        )
        drawn = 0
        for key in keys:
            values = _series(result.rows, key)
            if any(values):
                ax.plot(t, values, label=key.split(".", 1)[1], lw=1.0)
                drawn += 1
        if drawn == 0:
            ax.text(0.5, 0.5, "all zero", transform=ax.transAxes, ha="center")
        elif drawn <= 12:
            ax.legend(fontsize=6)
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel("virtual time (s)")
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)


def write_report(results: Sequence[RunResult], out: Path) -> dict[str, Any]:
    """Write summary.json, the CSVs and the plots under ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    digest = summary(results)
    (out / "summary.json").write_text(
        json.dumps(digest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    for result in results:
        _write_csv(out / f"timeseries-{result.scenario.variant}.csv", result.rows)
    _plot_goodput(results, out)
    _plot_latency(results, out)
    _plot_prefixed(
        results,
        out,
        ("breaker.",),
        "breaker states (0 closed, 1 half-open, 2 open)",
        "breakers.png",
    )
    _plot_prefixed(
        results,
        out,
        ("queue.", "buffer."),
        "queue lengths (network functions, buffers)",
        "queues.png",
    )
    return digest
