"""A run's output folder: ``summary.json``, time-series CSVs, PNG plots and ``report.html``.

``summary.json`` holds only virtual-time results, rounded and with sorted keys, so the same
scenario and seed give the same bytes (wall-clock figures go to the terminal only). Plots use
matplotlib's Agg backend, one column per variant, so the thundering herd's collapse and
recovery sit side by side; faults and spikes are shaded. A row stamped ``t`` (as the CSVs
keep it) counts ``[ceil(t) - 1, t)``: the plots draw its counts and latencies at the middle of
that interval (per second, so a run's trailing part of a second is not a dip), and gauges
(queues, breakers, replicas), which are sampled at ``t``, at ``t``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from ddsketch import DDSketch
from matplotlib.axes import Axes

from sim.html_report import Figure, HtmlDocument, verdict_cell
from sim.metrics import RELATIVE_ACCURACY, quantile, row_midpoint, row_span
from sim.results import RunResult
from sim.revenue import revenue, revenue_totals
from sim.scenario import ConsentRevocation, ReplicaFailure, Scenario

if TYPE_CHECKING:
    from sim.replications import Interval, RunDigest, VariantSummary

__all__ = [
    "PLOTS",
    "consent_revocations",
    "settlement",
    "summary",
    "write_replication_report",
    "write_report",
]

PLOTS = ("goodput.png", "latency.png", "breakers.png", "queues.png", "replicas.png")
"""The plots of a single run's folder, in the order the HTML report shows them."""


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


def settlement(result: RunResult) -> list[dict[str, Any]]:
    """Settlement records per operator pair and application.

    ``aggregator`` records: from the aggregator to the serving operator, for applications
    that call through it. ``ported`` records: from a ported number's home operator (the
    holder of its range) to the operator serving it now. Billable calls are counted by the live
    rule (:func:`operators.gateway.is_billable`: a 2xx answer; 404 and 422 are not sales);
    operations are every operation that ended, answered or not.
    """
    via = {
        app_id
        for app_id, spec in result.scenario.traffic.applications.items()
        if spec.via_aggregator
    }
    totals: dict[tuple[str, str], list[int]] = {}
    for (operator, _api, application), stats in sorted(result.keys.items()):
        if application in via:
            entry = totals.setdefault((operator, application), [0, 0])
            entry[0] += stats.billable
            entry[1] += stats.completed
    records = [
        {
            "kind": "aggregator",
            "from": "aggregator",
            "to": operator,
            "application": application,
            "billable_calls": ok,
            "operations": completed,
        }
        for (operator, application), (ok, completed) in sorted(totals.items())
    ]
    records.extend(
        {
            "kind": "ported",
            "from": home,
            "to": serving,
            "application": application,
            "billable_calls": ok,
            "operations": completed,
        }
        for (home, serving, application), (ok, completed) in sorted(result.ported.items())
    )
    return records


def consent_revocations(result: RunResult) -> dict[str, Any] | None:
    """The waves as scheduled (lag, where they landed) and the revoked-consent call counts."""
    if not result.consent_waves:
        return None
    return {
        "waves": result.consent_waves,
        "per_operator": result.consent,
        **result.consent_totals(),
    }


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
        "expectations": [v.as_dict() for v in result.verdicts],
        "events": {name: list(span) for name, span in sorted(result.events.items())},
        "breaker_transitions": result.breaker_changes,
        "balancer_transitions": [
            {"at": at, "operator": op, "data_centre": dc, "in_rotation": healthy}
            for at, op, dc, healthy in result.balancer_changes
        ],
        "per_key": per_key,
        "latency_p95": _p95(result),
        "replicas": result.replicas(),
        **({"settlement": records} if (records := settlement(result)) else {}),
        **({"revenue": earned} if (earned := revenue(result)) else {}),
        **({"consent_revocations": consent} if (consent := consent_revocations(result)) else {}),
    }


def _p95(result: RunResult) -> float | None:
    """The 95th percentile latency of every successful operation of the run."""
    merged = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for stats in result.keys.values():
        merged.merge(stats.latency)
    return quantile(merged, 0.95)


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


MIDDLE = "virtual time (s), each second drawn at its middle"
"""The x label of plots of what a second counted (drawn where it was counted)."""
SAMPLED = "virtual time (s), sampled at each second's end"
"""The x label of plots of gauges (sampled as a row closes, at its stamp)."""


def _middles(rows: list[dict[str, float]]) -> list[float]:
    """Where each row's counts belong on a time axis: the middle of the interval they count
    (before, at its end, so a spike from 60 s showed from 61 s)."""
    return [row_midpoint(row["t"]) for row in rows]


def _per_second(rows: list[dict[str, float]], key: str) -> list[float]:
    """A count column as a rate: each row's count over the seconds it covers (1, or less for
    a run's trailing part of a second)."""
    return [row.get(key, 0.0) / row_span(row["t"]) for row in rows]


def _grid(results: Sequence[RunResult], title: str) -> tuple[Any, list[Axes]]:
    fig, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 4), sharey=True, squeeze=False
    )
    fig.suptitle(title)
    return fig, list(axes[0])


def _plot_goodput(results: Sequence[RunResult], out: Path) -> None:
    fig, axes = _grid(results, "offered load, attempts and goodput (per second)")
    for ax, result in zip(axes, results, strict=True):
        rows = result.rows
        t = _middles(rows)
        ax.plot(
            t,
            _per_second(rows, "attempts"),
            label="attempts (with retries)",
            lw=0.8,
            color="tab:gray",
        )
        ax.plot(t, _per_second(rows, "offered"), label="offered", lw=1.0, color="tab:blue")
        ax.plot(t, _per_second(rows, "goodput"), label="goodput", lw=1.4, color="tab:green")
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel(MIDDLE)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("operations / s")
    fig.tight_layout()
    fig.savefig(out / "goodput.png", dpi=100)
    plt.close(fig)


def _plot_latency(results: Sequence[RunResult], out: Path) -> None:
    fig, axes = _grid(results, "latency of successful operations (s)")
    for ax, result in zip(axes, results, strict=True):
        t = _middles(result.rows)
        ax.plot(t, _series(result.rows, "latency_p50"), label="p50", lw=1.0)
        ax.plot(t, _series(result.rows, "latency_p99"), label="p99", lw=1.0)
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel(MIDDLE)
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
        ax.set_xlabel(SAMPLED)
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)


def _scales(scenario: Scenario) -> bool:
    """Whether the scenario's gateway replica counts can change (autoscaled or failing)."""
    return any(isinstance(fault, ReplicaFailure) for fault in scenario.faults) or any(
        dc.autoscale is not None
        for op in scenario.topology.operators.values()
        for dc in op.data_centres.values()
    )


def _replica_keys(result: RunResult) -> list[str]:
    rows = result.rows
    return sorted({k for k in rows[0] if k.startswith("replicas.")}) if rows else []


def _plot_replicas(results: Sequence[RunResult], out: Path) -> None:
    """Gateway replicas per data centre (all that cost, and those ready) against the load."""
    fig, axes = _grid(results, "gateway replicas per data centre, and the offered load")
    for ax, result in zip(axes, results, strict=True):
        rows = result.rows
        t = _series(rows, "t")
        for key in _replica_keys(result):
            where = key.split(".", 1)[1]
            line = ax.step(t, _series(rows, key), where="post", lw=1.4, label=f"{where} replicas")
            ax.step(
                t,
                _series(rows, f"replicas_ready.{where}"),
                where="post",
                lw=0.8,
                ls="--",
                color=line[0].get_color(),
                label=f"{where} ready",
            )
        load = ax.twinx()
        load.plot(_middles(rows), _per_second(rows, "offered"), lw=0.6, color="tab:gray", alpha=0.4)
        ax.set_zorder(load.get_zorder() + 1)  # the replicas in front of the load
        ax.patch.set_visible(False)
        load.set_ylabel("offered operations / s", color="tab:gray", fontsize=8)
        _shade(ax, result)
        ax.set_title(result.scenario.variant)
        ax.set_xlabel("virtual time (s): replicas sampled at each second's end, load at its middle")
        ax.legend(fontsize=7, loc="upper left")
    # One scale for all the variants' panels (they share it), set once all are drawn: a
    # limit set on the first panel alone (a fixed single replica) hid a scaled one's 70.
    most = max((max(_series(r.rows, k)) for r in results for k in _replica_keys(r)), default=1)
    axes[0].set_ylim(0, max(most, 1) * 1.1)
    axes[0].set_ylabel("gateway replicas")
    fig.tight_layout()
    fig.savefig(out / "replicas.png", dpi=100)
    plt.close(fig)


def _replicas_section(doc: HtmlDocument, result: RunResult) -> None:
    stats = result.replicas()
    if not _scales(result.scenario) or not stats:
        return
    doc.heading("Gateway replicas (cost)", level=3)
    doc.table(
        ["data centre", "replica-hours", "fewest", "most", "mean"],
        [[where, s["replica_hours"], s["min"], s["max"], s["mean"]] for where, s in stats.items()],
    )


def _bound(lo: float | None, hi: float | None) -> str:
    return " ".join(
        part
        for part in (f"≥ {lo:g}" if lo is not None else "", f"≤ {hi:g}" if hi is not None else "")
        if part
    )


def _variant_sets(source: Path | None) -> dict[str, dict[str, Any]]:
    """Each variant's own ``set:`` overrides, read back from the scenario file."""
    if source is None:
        return {}
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    variants = data.get("variants") or {}
    return {
        name: dict((spec or {}).get("set") or {})
        for name, spec in variants.items()
        if isinstance(spec, dict)
    }


def scenario_section(
    doc: HtmlDocument,
    variants: Sequence[Scenario],
    source: Path | None,
    overrides: Mapping[str, object] | None,
) -> None:
    """The scenario as run: where it came from, every override, each variant in full."""
    doc.heading("Scenario as run")
    if source is not None:
        doc.paragraph(f"file: {source}")
    rows: list[list[str]] = [
        ["command line", key, json.dumps(value, default=str)]
        for key, value in (overrides or {}).items()
    ]
    sets = _variant_sets(source)
    for scenario in variants:
        for key, value in sets.get(scenario.variant, {}).items():
            rows.append([f"variant {scenario.variant}", key, json.dumps(value, default=str)])
    if rows:
        doc.table(["from", "key", "value"], rows)
    else:
        doc.paragraph("no overrides: the file as written")
    for scenario in variants:
        text = yaml.safe_dump(
            scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100
        )
        doc.code(text, summary=f"variant {scenario.variant}: every field, defaults included")


def _events_section(doc: HtmlDocument, scenario: Scenario) -> None:
    events = scenario.events()
    if not events:
        return
    doc.heading("Faults and spikes on the time axis (shaded in every plot)")
    kinds: dict[str, str] = {}
    for index, fault in enumerate(scenario.faults):
        kinds[fault.name or f"fault{index}"] = fault.kind
    doc.table(
        ["event", "kind", "start (s)", "end (s)"],
        [
            [name, kinds.get(name, "spike"), start, end]
            for name, (start, end) in sorted(events.items(), key=lambda item: item[1])
        ],
    )
    revocations = [f for f in scenario.faults if isinstance(f, ConsentRevocation)]
    if revocations:
        doc.heading("Consent revocations", level=3)
        doc.table(
            [
                "at (s)",
                "spread (s)",
                "operator",
                "share of subscribers",
                "recorded in",
                "replication lag between DCs (s)",
            ],
            [
                [
                    f.at,
                    f.spread,
                    f.operator or "every operator",
                    f.share,
                    f.data_centre or "a DC by weight",
                    f.replication_lag,
                ]
                for f in revocations
            ],
        )


def _consent_section(doc: HtmlDocument, result: RunResult) -> None:
    if not result.consent_waves:
        return
    doc.heading("Revoked consents: waves and calls", level=3)
    doc.table(
        ["wave", "operator", "at (s)", "replication lag (s)", "lines revoked", "recorded in"],
        [
            [
                w["name"],
                w["operator"],
                w["at"],
                w["replication_lag"],
                w["lines"],
                ", ".join(f"{dc}: {n}" for dc, n in w["landed"].items()) or "—",
            ]
            for w in result.consent_waves
        ],
    )
    doc.table(
        [
            "operator",
            "calls refused (403)",
            "successes within the lag (allowed)",
            "successes after instant + lag (must be 0)",
        ],
        [
            [op, c["refused"], c["successes_within_lag"], c["successes_after_lag"]]
            for op, c in result.consent.items()
        ],
    )


def _run_html(
    results: Sequence[RunResult],
    out: Path,
    source: Path | None,
    overrides: Mapping[str, object] | None,
) -> Path:
    first = results[0].scenario
    passed = all(r.passed for r in results)
    doc = HtmlDocument(f"{first.name}: {'PASS' if passed else 'FAIL'}")
    doc.paragraph(
        f"{first.description} — seed {first.seed}, {first.duration:g} virtual seconds, "
        f"variants: {', '.join(r.scenario.variant for r in results)}."
    )
    scenario_section(doc, [r.scenario for r in results], source, overrides)
    _events_section(doc, first)
    for result in results:
        scenario = result.scenario
        doc.heading(f"Variant {scenario.variant}: {'PASS' if result.passed else 'FAIL'}")
        if scenario.description:
            doc.paragraph(scenario.description)
        doc.heading("Expectations", level=3)
        doc.table(
            ["expectation", "metric", "value", "bound", "verdict"],
            [
                [
                    v.label,
                    v.metric,
                    v.value,
                    _bound(v.min, v.max),
                    verdict_cell("pass" if v.passed else "fail"),
                ]
                for v in result.verdicts
            ],
        )
        for v in result.verdicts:
            if v.note is not None:
                doc.paragraph(f"{v.label}: {v.note}", note=True)
        doc.heading("Summary", level=3)
        doc.table(["measure", "value"], [[k, v] for k, v in result.totals().items()])
        little = result.little
        doc.paragraph(
            f"Little's law (client operations): L = {little.mean_in_system:.4g}, "
            f"λW = {little.product:.4g}, relative error {little.relative_error:.2%} "
            f"({'holds' if little.holds else 'does not hold'})."
        )
        records = settlement(result)
        if records:
            doc.heading("Settlement records per operator pair", level=3)
            doc.paragraph(
                "aggregator: from the aggregator to the serving operator; ported: from a "
                "ported number's home operator (its range holder) to the serving operator."
            )
            doc.table(
                ["kind", "from", "to", "application", "billable calls", "operations"],
                [
                    [
                        r["kind"],
                        r["from"],
                        r["to"],
                        r["application"],
                        r["billable_calls"],
                        r["operations"],
                    ]
                    for r in records
                ],
            )
        _revenue_section(doc, result)
        _consent_section(doc, result)
        _replicas_section(doc, result)
    doc.heading("Plots")
    for name in PLOTS:
        path = out / name
        if path.exists():
            doc.figure(Figure.from_file(path, f"{name}: faults and spikes shaded in red"))
    return doc.write(out / "report.html")


def _revenue_section(doc: HtmlDocument, result: RunResult) -> None:
    """Billable calls rated by the operators' billing code, per operator and API."""
    totals = revenue_totals(revenue(result))
    if totals:
        doc.heading("Revenue per operator and API", level=3)
        doc.paragraph(
            "Billable calls rated with each application's plan by the operators' own billing "
            "code; monthly fees prorated for the simulated seconds."
        )
        doc.table(
            ["operator", "API", "billable calls", "revenue"],
            [
                [r["operator"], r["api"], r["billable_calls"], f"{r['total']} {r['currency']}"]
                for r in totals
            ],
        )


def write_report(
    results: Sequence[RunResult],
    out: Path,
    *,
    source: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Write summary.json, the CSVs, the plots and report.html under ``out``.

    ``source`` (the scenario file) and ``overrides`` (from the command line) are shown in
    the HTML report's "scenario as run" section. Returns the summary.
    """
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
    if any(_scales(result.scenario) for result in results):
        _plot_replicas(results, out)
    _run_html(results, out, source, overrides)
    return digest


# -- replications ---------------------------------------------------------------------------


def _interval_json(iv: Interval | None) -> dict[str, Any] | None:
    if iv is None:
        return None
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n, "std": iv.std}


def replication_summary(summaries: Sequence[VariantSummary], confidence: float) -> dict[str, Any]:
    """The deterministic digest of a replicated run (means, intervals, verdicts)."""
    return _clean(
        {
            "confidence": confidence,
            "judged_on": "interval: pass when the whole interval lies within the bounds, "
            "fail when it lies wholly outside or a replication has no value, undecided "
            "otherwise (not a pass)",
            "passed": all(s.passed for s in summaries),
            "variants": {
                s.variant: {
                    "seeds": list(s.seeds),
                    "passed": s.passed,
                    "metrics": {k: _interval_json(v) for k, v in s.metrics.items()},
                    "expectations": [
                        {
                            "name": v.label,
                            "metric": v.metric,
                            "min": v.min,
                            "max": v.max,
                            "interval": _interval_json(v.interval),
                            "replications": v.runs,
                            "undefined": v.undefined,
                            "outcome": v.outcome,
                        }
                        for v in s.verdicts
                    ],
                }
                for s in summaries
            },
        }
    )


def _interval_text(iv: Interval | None) -> str:
    if iv is None:
        return "—"
    if iv.n < 2:
        return f"{iv.mean:.4g} (one value)"
    if math.isinf(iv.mean):
        return f"[{iv.low:.4g}, ∞)"
    return f"[{iv.low:.4g}, {iv.high:.4g}]"


def _band(
    ax: Axes,
    t: list[float],
    series: list[Interval | None],
    label: str,
    color: str,
    per_second: bool,
) -> None:
    """One measure's mean and interval per row, drawn at the middle of the row's interval;
    a count as a rate (``per_second``: over the seconds its row covers)."""
    scale = [row_span(at) if per_second else 1.0 for at in t]
    mean = [math.nan if iv is None else iv.mean / k for iv, k in zip(series, scale, strict=True)]
    low = [math.nan if iv is None else iv.low / k for iv, k in zip(series, scale, strict=True)]
    high = [math.nan if iv is None else iv.high / k for iv, k in zip(series, scale, strict=True)]
    middles = [row_midpoint(at) for at in t]
    ax.plot(middles, mean, label=label, lw=1.2, color=color)
    ax.fill_between(middles, low, high, color=color, alpha=0.2, lw=0)


def _shade_events(ax: Axes, events: Mapping[str, tuple[float, float]]) -> None:
    for name, (start, end) in sorted(events.items()):
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


def _plot_bands(
    summaries: Sequence[VariantSummary],
    out: Path,
    keys: tuple[tuple[str, str, str], ...],
    title: str,
    name: str,
    per_second: bool = False,
) -> None:
    fig, axes = plt.subplots(
        1, len(summaries), figsize=(6.5 * len(summaries), 4), sharey=True, squeeze=False
    )
    fig.suptitle(title)
    for ax, s in zip(axes[0], summaries, strict=True):
        for key, label, color in keys:
            _band(ax, s.t, s.series[key], label, color, per_second)
        _shade_events(ax, s.events)
        ax.set_title(f"{s.variant} ({len(s.seeds)} replications)")
        ax.set_xlabel(MIDDLE)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / name, dpi=100)
    plt.close(fig)


def _plot_expectations(
    summaries: Sequence[VariantSummary], digests: Sequence[RunDigest], out: Path
) -> None:
    count = max((len(s.verdicts) for s in summaries), default=0)
    if count == 0:
        return
    fig, axes = plt.subplots(
        count, len(summaries), figsize=(5.5 * len(summaries), 1.6 * count + 0.8), squeeze=False
    )
    fig.suptitle("expectations: runs (dots), mean and 95 % interval, bounds (red)", fontsize=9)
    for column, s in enumerate(summaries):
        runs = [d for d in digests if d.point == s.point and d.variant == s.variant]
        for row in range(count):
            ax = axes[row][column]
            if row >= len(s.verdicts):
                ax.axis("off")
                continue
            v = s.verdicts[row]
            values = [d.verdicts[row].value if row < len(d.verdicts) else None for d in runs]
            finite = [x for x in values if x is not None and math.isfinite(x)]
            ax.plot(finite, [0.0] * len(finite), "o", color="tab:gray", alpha=0.6, ms=4)
            iv = v.interval
            if iv is not None and math.isfinite(iv.mean):
                ax.errorbar(
                    [iv.mean],
                    [0.0],
                    xerr=[[iv.mean - iv.low], [iv.high - iv.mean]],
                    fmt="s",
                    color="black",
                    capsize=4,
                )
            for bound in (v.min, v.max):
                if bound is not None:
                    ax.axvline(bound, color="tab:red", lw=1.2)
            ax.set_yticks([])
            ax.set_title(f"{s.variant}: {v.label} — {v.outcome.upper()}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "expectations.png", dpi=100)
    plt.close(fig)


REPLICATION_PLOTS = ("goodput.png", "latency.png", "expectations.png")


def write_replication_report(
    summaries: Sequence[VariantSummary],
    digests: Sequence[RunDigest],
    variants: Sequence[Scenario],
    out: Path,
    *,
    confidence: float,
    source: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """summary.json, replications.csv, mean time series (CSV), band plots and report.html."""
    out.mkdir(parents=True, exist_ok=True)
    digest = replication_summary(summaries, confidence)
    first = variants[0]
    digest = {
        "scenario": first.name,
        "base_seed": first.seed,
        "duration": first.duration,
        "replications": len(summaries[0].seeds) if summaries else 0,
        **digest,
    }
    (out / "summary.json").write_text(
        json.dumps(digest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    names = list(dict.fromkeys(k for d in digests for k in d.metrics))
    checks = list(dict.fromkeys(v.label for d in digests for v in d.verdicts))
    with (out / "replications.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        # expectations after the totals, each column marked as one (its label may be a
        # total's name: "availability" of one application, say)
        writer.writerow(
            ["variant", "replication", "seed", *names, *(f"expectation: {c}" for c in checks)]
        )
        for d in digests:
            values = {v.label: v.value for v in d.verdicts}
            writer.writerow(
                [d.variant, d.replication, d.seed]
                + ["" if (value := d.metrics.get(n)) is None else f"{value:.6g}" for n in names]
                + ["" if (value := values.get(c)) is None else f"{value:.6g}" for c in checks]
            )
    for s in summaries:
        with (out / f"timeseries-{s.variant}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            keys = list(s.series)
            writer.writerow(["t", *keys, *(f"{k} low" for k in keys), *(f"{k} high" for k in keys)])
            for i, t in enumerate(s.t):
                cells = [s.series[k][i] for k in keys]
                writer.writerow(
                    [f"{t:g}"]
                    + [_csv_value(math.nan if iv is None else iv.mean) for iv in cells]
                    + [_csv_value(math.nan if iv is None else iv.low) for iv in cells]
                    + [_csv_value(math.nan if iv is None else iv.high) for iv in cells]
                )
    _plot_bands(
        summaries,
        out,
        (
            ("attempts", "attempts (with retries)", "tab:gray"),
            ("offered", "offered", "tab:blue"),
            ("goodput", "goodput", "tab:green"),
        ),
        f"mean per second with its {confidence:.0%} interval over replications",
        "goodput.png",
        per_second=True,
    )
    _plot_bands(
        summaries,
        out,
        (("latency_p50", "p50", "tab:blue"), ("latency_p99", "p99", "tab:orange")),
        f"latency of successful operations (s), mean and {confidence:.0%} interval",
        "latency.png",
    )
    _plot_expectations(summaries, digests, out)
    passed = all(s.passed for s in summaries)
    n = len(summaries[0].seeds) if summaries else 0
    doc = HtmlDocument(f"{first.name}: {n} replications: {'PASS' if passed else 'FAIL'}")
    doc.paragraph(
        f"{first.description} — {first.duration:g} virtual seconds, base seed {first.seed}, "
        f"{n} independent replications per variant."
    )
    doc.paragraph(
        f"Each metric is reported as its mean over the replications with a two-sided "
        f"{confidence:.0%} Student-t confidence interval (mean ± t(n-1) · s / √n). Each "
        "expectation is judged on that interval, not on a single run: PASS when the whole "
        "interval lies within the bounds, FAIL when it lies wholly outside them, UNDECIDED "
        "when it straddles a bound (more replications may decide it; it does not count as a "
        "pass). A metric that was infinite in some replication (a recovery that never came) "
        "has an infinite mean and the interval [smallest value, ∞). Replication 0 uses the "
        "scenario's seed; the others use seeds derived from it, the same for every variant.",
        note=True,
    )
    scenario_section(doc, variants, source, overrides)
    _events_section(doc, first)
    for s in summaries:
        doc.heading(f"Variant {s.variant}: {'PASS' if s.passed else 'FAIL'}")
        doc.paragraph("seeds: " + ", ".join(str(seed) for seed in s.seeds))
        doc.heading(f"Expectations, judged on the {confidence:.0%} interval", level=3)
        doc.table(
            [
                "expectation",
                "metric",
                "mean",
                f"{confidence:.0%} interval",
                "n",
                "bound",
                "verdict",
            ],
            [
                [
                    v.label,
                    v.metric,
                    None if v.interval is None else v.interval.mean,
                    _interval_text(v.interval),
                    f"{0 if v.interval is None else v.interval.n} of {v.runs}",
                    _bound(v.min, v.max),
                    verdict_cell(v.outcome),
                ]
                for v in s.verdicts
            ],
        )
        doc.heading("Summary", level=3)
        doc.table(
            ["measure", "mean", f"{confidence:.0%} interval", "std", "n"],
            [
                [
                    key,
                    None if iv is None else iv.mean,
                    _interval_text(iv),
                    None if iv is None or math.isnan(iv.std) else iv.std,
                    None if iv is None else iv.n,
                ]
                for key, iv in s.metrics.items()
            ],
        )
        runs = [d for d in digests if d.point == s.point and d.variant == s.variant]
        doc.heading("Every replication", level=3)
        doc.table(
            ["replication", "seed", *(v.label for v in s.verdicts)],
            [[d.replication, d.seed, *(w.value for w in d.verdicts)] for d in runs],
        )
    doc.heading("Plots")
    for name in REPLICATION_PLOTS:
        path = out / name
        if path.exists():
            doc.figure(Figure.from_file(path, f"{name}: faults and spikes shaded in red"))
    doc.write(out / "report.html")
    return digest
