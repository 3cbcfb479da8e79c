"""A business run's folder: ``summary.json``, CSVs, PNG plots and ``report.html``.

``summary.json`` is :func:`sim.business.results.summary` (deterministic under a seed); the
wall time and peak memory of the run appear in ``report.html`` and on the terminal only.
Plots use matplotlib's Agg backend: the precision/recall curve of the threshold sweep, the
funnel against its truth, the cohorts' retention, revenue per API, and calls per day with
the abuse cases marked.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sim.analytics_plots import Bars, RevenuePanel, cohort_plot, funnel_plot, revenue_plot
from sim.business.results import BusinessResult, summary
from sim.business.scenario import ABUSE_KINDS
from sim.business.scoring import ALERT_KINDS
from sim.html_report import Cell, Figure, HtmlDocument, verdict_cell

__all__ = ["PLOTS", "RunCost", "closing_note", "write_business_report"]

PLOTS = ("precision_recall.png", "funnel.png", "cohorts.png", "revenue.png", "calls.png")
"""The plots of a business run's folder, in the order report.html shows them."""
COLOURS = {
    "credential_theft": "tab:red",
    "enumeration": "tab:purple",
    "quota_farming": "tab:orange",
}

RunCost = tuple[float, float]
"""Wall seconds and peak resident memory (MiB) of the run."""


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def closing_note(result: BusinessResult, cost: RunCost) -> str:
    """The sentence the report closes on: precision, recall and time to detect per kind,
    the funnel's error, the wall time and the memory."""
    parts = []
    for kind in ABUSE_KINDS:
        k = result.kinds[kind]
        parts.append(
            f"{kind}: precision {_fmt(k.precision)}, recall {_fmt(k.recall)} "
            f"({k.detected}/{k.cases}), time to detect median {_fmt(k.time_to_detect_hours)} h "
            f"(p90 {_fmt(k.time_to_detect_p90_hours)} h)"
        )
    wall, memory = cost
    days = result.scenario.days
    calls = sum(d.calls for d in result.days)
    return (
        "; ".join(parts)
        + f". Funnel error {_fmt(result.metrics['funnel_error'])}; churn risk precision "
        f"{_fmt(result.churn.precision)}, recall {_fmt(result.churn.recall)}. "
        f"{result.population['developers']:,} developers, {calls:,} calls over {days:g} "
        f"simulated days in {wall:.1f} s of wall time, peak memory {memory:.0f} MiB."
    )


# -- CSV -----------------------------------------------------------------------------------


def _csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(
                ["" if v is None else f"{v:.6g}" if isinstance(v, float) else v for v in row]
            )


def _write_csvs(result: BusinessResult, out: Path) -> None:
    kinds = list(ABUSE_KINDS)
    _csv(
        out / "daily.csv",
        ["day", "calls", "successes", "errors", "throttled", "live_applications"]
        + [f"abusive.{k}" for k in kinds],
        (
            [d.day, d.calls, d.successes, d.errors, d.throttled, d.live_applications]
            + [d.abusive.get(k, 0) for k in kinds]
            for d in result.days
        ),
    )
    epoch = result.scenario.epoch
    _csv(
        out / "alerts.csv",
        ["raised_day", "kind", "client_id", "api", "developer_id", "score", "observed", "baseline"],
        (
            [
                (a.raised_at - epoch) / 86400,
                a.kind,
                a.client_id,
                a.api,
                a.developer_id,
                a.score,
                a.observed,
                a.baseline,
            ]
            for a in result.alerts
        ),
    )
    _csv(
        out / "cases.csv",
        ["kind", "entity", "developer_id", "start_day", "end_day", "detected_after_hours"],
        (
            [c.kind, c.entity, c.developer_id, c.start_day, c.end_day, c.detected_after_hours]
            for c in result.cases
        ),
    )
    _csv(
        out / "sweep.csv",
        ["kind", "threshold", "precision", "recall", "flagged", "time_to_detect_hours"],
        (
            [p.kind, p.threshold, p.precision, p.recall, p.flagged, p.time_to_detect_hours]
            for p in result.sweep
        ),
    )
    table = result.revenue
    _csv(
        out / "revenue.csv",
        ["dimension", "group", "currency", "amount", "calls"],
        (
            [dimension, r.group, r.currency, str(r.amount), r.calls]
            for dimension in ("api", "plan", "org")
            for r in table.rows(dimension)
        ),
    )
    weeks = result.cohorts.weeks
    _csv(
        out / "cohorts.csv",
        ["week_start", "size", *(f"week{k}" for k in range(weeks))],
        ([_date(c.week_start), c.size, *c.retention] for c in result.cohorts.cohorts),
    )


def _date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


# -- plots ---------------------------------------------------------------------------------


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_sweep(result: BusinessResult, out: Path) -> None:
    fig, (curve, by_threshold) = plt.subplots(1, 2, figsize=(12, 4.5))
    operating = result.scenario.analytics.settings().detectors.threshold
    for kind in ABUSE_KINDS:
        points = [p for p in result.sweep if p.kind == kind]
        shown = [p for p in points if p.precision is not None and p.recall is not None]
        if shown:
            curve.plot(
                [p.recall for p in shown],
                [p.precision for p in shown],
                marker="o",
                color=COLOURS[kind],
                label=kind,
            )
            for p in shown:
                curve.annotate(f"{p.threshold:g}", (p.recall or 0, p.precision or 0), fontsize=6)
        by_threshold.plot(
            [p.threshold for p in points],
            [np.nan if p.recall is None else p.recall for p in points],
            color=COLOURS[kind],
            label=f"{kind} recall",
        )
        by_threshold.plot(
            [p.threshold for p in points],
            [np.nan if p.precision is None else p.precision for p in points],
            color=COLOURS[kind],
            ls="--",
            label=f"{kind} precision",
        )
    curve.set_xlabel("recall")
    curve.set_ylabel("precision")
    curve.set_xlim(-0.02, 1.02)
    curve.set_ylim(-0.02, 1.02)
    curve.set_title("precision/recall per abuse kind (labels: threshold)")
    curve.legend(fontsize=7)
    by_threshold.axvline(operating, color="gray", lw=0.8, ls=":")
    by_threshold.set_xscale("log")
    by_threshold.set_xlabel("detector threshold (robust score)")
    by_threshold.set_ylim(-0.02, 1.02)
    by_threshold.set_title(f"against the threshold (dotted: the run's, {operating:g})")
    by_threshold.legend(fontsize=6)
    _save(fig, out / "precision_recall.png")


def _plot_funnel(result: BusinessResult, out: Path) -> None:
    steps = result.funnel.steps
    truth = result.funnel_score
    true = [1.0, truth.true_token_conversion or 0.0, truth.true_conversion or 0.0]
    funnel_plot(
        out / "funnel.png",
        [s.name for s in steps],
        [
            Bars("analytics' funnel", [s.overall or 0.0 for s in steps], "tab:blue"),
            Bars("ground truth", true[: len(steps)], "tab:gray"),
        ],
        notes=[f"{s.entered:,}" for s in steps],
        ylabel="share of sign-ups",
        title=f"funnel within {result.funnel.window / 3600:g} h of sign-up",
    )


def _plot_cohorts(result: BusinessResult, out: Path) -> None:
    cohorts = result.cohorts.cohorts
    cohort_plot(
        out / "cohorts.png",
        [f"{_date(c.week_start)} ({c.size})" for c in cohorts],
        [c.retention for c in cohorts],
        weeks=result.cohorts.weeks,
        title="retention by sign-up week (a successful call in the week)",
    )


def _plot_revenue(result: BusinessResult, out: Path) -> None:
    revenue = result.revenue
    revenue_plot(
        out / "revenue.png",
        [
            RevenuePanel(
                f"per {title}",
                [r.group for r in rows],
                [float(r.amount) for r in rows],
                ", ".join(sorted({r.currency for r in rows})) or "amount",
            )
            for title, rows in (("API", revenue.by_api), ("plan", revenue.by_plan))
        ],
        title="revenue, rated by the operator's billing",
    )


def _plot_calls(result: BusinessResult, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(12, 4.5))
    days = [d.day for d in result.days]
    ax.plot(days, [d.calls for d in result.days], color="tab:blue", label="calls")
    ax.plot(days, [d.throttled for d in result.days], color="tab:gray", lw=0.8, label="throttled")
    for kind in ABUSE_KINDS:
        ax.plot(
            days,
            [d.abusive.get(kind, 0) for d in result.days],
            color=COLOURS[kind],
            lw=0.8,
            label=f"{kind} calls",
        )
    for case in result.cases:
        ax.axvline(case.start_day, color=COLOURS[case.kind], lw=0.6, alpha=0.5)
        marker = "v" if case.detected_after_hours is not None else "x"
        ax.plot(
            [case.start_day],
            [1.0],
            marker=marker,
            color=COLOURS[case.kind],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
    ax.set_yscale("symlog", linthresh=100)
    ax.set_xlabel("simulated day")
    ax.set_ylabel("calls per day")
    ax.set_title("calls per day; abuse starts marked (▼ detected, x missed)")
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, out / "calls.png")


# -- HTML ----------------------------------------------------------------------------------


def _detection_rows(result: BusinessResult) -> list[list[str | float | int | Cell | None]]:
    rows: list[list[str | float | int | Cell | None]] = []
    for kind in ABUSE_KINDS:
        k = result.kinds[kind]
        rows.append(
            [
                kind,
                ", ".join(ALERT_KINDS[kind]),
                k.cases,
                k.detected,
                k.flagged,
                k.precision,
                k.recall,
                k.time_to_detect_hours,
                k.time_to_detect_p90_hours,
            ]
        )
    return rows


def _html(result: BusinessResult, out: Path, cost: RunCost, source: Path | None) -> None:
    scenario = result.scenario
    verdict = "PASS" if result.passed else "FAIL"
    doc = HtmlDocument(f"{scenario.name}: {verdict}")
    doc.paragraph(
        f"{scenario.description} — seed {scenario.seed}, {scenario.days:g} simulated days from "
        f"{scenario.start.isoformat()}."
    )
    doc.heading("Expectations")
    doc.table(
        ["expectation", "metric", "value", "min", "max", "verdict"],
        [
            [v.label, v.metric, v.value, v.min, v.max, verdict_cell("pass" if v.passed else "fail")]
            for v in result.verdicts
        ],
    )
    doc.heading("Population")
    doc.table(["measure", "value"], [[k, v] for k, v in result.population.items()])
    doc.heading("Detectors against the ground truth")
    doc.paragraph(
        "Credential theft and enumeration are scored per application, quota farming per "
        "developer. Each flagged application gets one predicted kind: quota farming if its "
        "developer is flagged for it, else enumeration if it has an enumeration alert, else "
        "credential theft if it has a volume_spike, new_source or off_hours alert. A hit is an "
        "alert of a mapped kind raised between the abuse's start and 24 h after its end."
    )
    doc.table(
        [
            "abuse kind",
            "alert kinds",
            "cases",
            "detected",
            "flagged",
            "precision",
            "recall",
            "time to detect, median (h)",
            "p90 (h)",
        ],
        _detection_rows(result),
    )
    flagged, normal = result.false_alarms
    doc.paragraph(
        f"Normal applications with at least one alert (any kind): {flagged} of {normal}. "
        f"Scores kept for the sweep: {result.scores_kept:,} (dropped by the engine's bound: "
        f"{result.scores_dropped:,})."
    )
    doc.heading("Applications by true kind and alert kind", level=3)
    alert_kinds = sorted({k for row in result.confusion.values() for k in row})
    doc.table(
        ["truth", *alert_kinds],
        [[truth, *(row.get(k, 0) for k in alert_kinds)] for truth, row in result.confusion.items()],
    )
    doc.heading("Abuse cases", level=3)
    doc.table(
        ["kind", "entity", "developer", "start (day)", "end (day)", "detected after (h)"],
        [
            [c.kind, c.entity, c.developer_id, c.start_day, c.end_day, c.detected_after_hours]
            for c in result.cases
        ],
    )
    doc.heading("Threshold sweep (from the recorded scores, no re-run)", level=3)
    doc.table(
        ["kind", "threshold", "flagged", "precision", "recall", "time to detect (h)"],
        [
            [p.kind, p.threshold, p.flagged, p.precision, p.recall, p.time_to_detect_hours]
            for p in result.sweep
        ],
    )
    doc.figure(Figure.from_file(out / "precision_recall.png", "precision and recall per kind"))
    doc.heading("Funnel")
    truth = result.funnel_score
    doc.table(
        ["step", "entered", "conversion", "overall", "truth (overall)"],
        [
            [s.name, s.entered, s.conversion, s.overall, t]
            for s, t in zip(
                result.funnel.steps,
                [1.0, truth.true_token_conversion, truth.true_conversion],
                strict=False,
            )
        ],
    )
    doc.paragraph(
        f"Funnel error (|analytics - truth| of the overall conversion): "
        f"{_fmt(truth.error)}; token step: {_fmt(truth.integration_error)}. Stuck developers "
        f"per step: " + ", ".join(f"{k}: {len(v)}" for k, v in result.funnel.stuck.items())
    )
    real = result.integration
    doc.paragraph(
        f"The population's true integration delays (sign-up to first token): "
        f"{real.integrated:,} of {real.developers:,} developers integrated, median "
        f"{_fmt(real.median_hours)} h, p90 {_fmt(real.p90_hours)} h; "
        f"{_fmt(real.share_within_window)} of all developers within the window "
        f"(the funnel's token step says {_fmt(result.funnel.steps[1].overall)})."
    )
    doc.figure(Figure.from_file(out / "funnel.png", "funnel against the truth"))
    doc.heading("Cohorts")
    doc.figure(Figure.from_file(out / "cohorts.png", "retention by sign-up week"))
    doc.heading("Segments")
    segments = result.segments
    doc.table(
        ["segment", "applications", "example reasons"],
        [
            [name, len(entries), "; ".join(e.reason for e in entries[:3])]
            for name, entries in (
                ("churn risk", segments.churn_risk),
                ("power users", segments.power_users),
                ("upsell", segments.upsell),
                ("dormant", segments.dormant),
            )
        ],
    )
    churn = result.churn
    doc.paragraph(
        f"Churn risk against the truth: {churn.flagged} developers flagged, "
        f"{churn.true_positives} of them really churning (precision {_fmt(churn.precision)}); "
        f"{churn.detected} of {churn.churning} developers whose decline began 1 to "
        f"{result.scenario.analytics.settings().churn_weeks + 1} weeks before the end flagged "
        f"(recall {_fmt(churn.recall)})."
    )
    doc.heading("Revenue (the operator's rating code)")
    for dimension, title in (("api", "per API"), ("plan", "per plan")):
        doc.heading(title, level=3)
        doc.table(
            ["group", "currency", "amount", "billable calls"],
            [[r.group, r.currency, str(r.amount), r.calls] for r in result.revenue.rows(dimension)],  # type: ignore[arg-type]
        )
    doc.heading("top organisations", level=3)
    doc.table(
        ["organisation", "currency", "amount", "billable calls"],
        [[r.group, r.currency, str(r.amount), r.calls] for r in result.revenue.by_org[:10]],
    )
    doc.figure(Figure.from_file(out / "revenue.png", "revenue per API"))
    doc.heading("Calls")
    doc.figure(Figure.from_file(out / "calls.png", "calls per day with the abuse cases"))
    doc.heading("Scenario as run")
    if source is not None:
        doc.paragraph(f"file: {source}")
    doc.code(
        yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, width=100),
        summary="every field, defaults included",
    )
    doc.heading("Closing note")
    doc.paragraph(closing_note(result, cost), note=True)
    doc.write(out / "report.html")


def write_business_report(
    result: BusinessResult, out: Path, *, cost: RunCost, source: Path | None = None
) -> Path:
    """Write the run's folder; returns it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps(summary(result), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    _write_csvs(result, out)
    _plot_sweep(result, out)
    _plot_funnel(result, out)
    _plot_cohorts(result, out)
    _plot_revenue(result, out)
    _plot_calls(result, out)
    _html(result, out, cost, source)
    return out
