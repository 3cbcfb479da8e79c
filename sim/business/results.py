"""What a simulated business run produced and how it was judged: records and the digest.

:func:`summary` is the deterministic digest written to ``summary.json``: virtual-time results
only, floats rounded, keys sorted, so one scenario and seed give the same bytes. Wall time
and memory go to the terminal and ``report.html`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sim.business.scenario import ABUSE_KINDS, AbuseKind, BusinessScenario
from sim.business.scoring import (
    ChurnScore,
    FunnelScore,
    IntegrationTruth,
    KindScore,
    SweepPoint,
)
from sim.business.truth import GroundTruth
from sim.business.world import DayRow
from sim.results import Verdict

if TYPE_CHECKING:
    from operators.analytics import Alert, CohortTable, FunnelReport, RevenueTable, Segments

__all__ = ["BusinessResult", "CaseRow", "metrics_of", "summary"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One abuse case and when (if) the analytics caught it."""

    kind: str
    entity: str
    developer_id: str
    start_day: float
    end_day: float
    detected_after_hours: float | None


@dataclass(slots=True)
class BusinessResult:
    """Everything a run measured; ``verdicts`` judge its expectations."""

    scenario: BusinessScenario
    days: list[DayRow]
    truth: GroundTruth
    alerts: tuple[Alert, ...]
    scores_kept: int
    scores_dropped: int
    kinds: Mapping[AbuseKind, KindScore]
    cases: list[CaseRow]
    confusion: dict[str, dict[str, int]]
    sweep: list[SweepPoint]
    funnel: FunnelReport
    funnel_score: FunnelScore
    integration: IntegrationTruth
    cohorts: CohortTable
    segments: Segments
    churn: ChurnScore
    revenue: RevenueTable
    population: dict[str, int]
    false_alarms: tuple[int, int]
    """Normal applications with at least one alert, and normal applications that called."""
    metrics: dict[str, float | None]
    verdicts: list[Verdict]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def metrics_of(
    kinds: Mapping[AbuseKind, KindScore],
    funnel: FunnelScore,
    churn: ChurnScore,
    false_alarms: tuple[int, int],
) -> dict[str, float | None]:
    """Every metric an expectation may name (see :func:`sim.business.scenario.metric_names`)."""
    values: dict[str, float | None] = {}
    for kind in ABUSE_KINDS:
        score = kinds[kind]
        values[f"precision.{kind}"] = score.precision
        values[f"recall.{kind}"] = score.recall
        values[f"time_to_detect_hours.{kind}"] = score.time_to_detect_hours
        values[f"time_to_detect_p90_hours.{kind}"] = score.time_to_detect_p90_hours
    flagged, normal = false_alarms
    values |= {
        "funnel_error": funnel.error,
        "funnel_conversion": funnel.conversion,
        "true_conversion": funnel.true_conversion,
        "integration_error": funnel.integration_error,
        "churn_precision": churn.precision,
        "churn_recall": churn.recall,
        "false_alarm_share": flagged / normal if normal else None,
    }
    return values


def _clean(value: Any) -> Any:
    """Round floats, Decimals as text, infinities and NaNs JSON-safe, recursively."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return round(value, 6)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _revenue(table: RevenueTable) -> dict[str, Any]:
    def rows(dimension: str) -> list[dict[str, Any]]:
        return [
            {"group": r.group, "currency": r.currency, "amount": r.amount, "calls": r.calls}
            for r in table.rows(dimension)  # type: ignore[arg-type]
        ]

    return {
        "by_api": rows("api"),
        "by_plan": rows("plan"),
        "by_org_top10": rows("org")[:10],
        "organisations": len(table.by_org),
        "totals": dict(table.totals),
    }


def summary(result: BusinessResult) -> dict[str, Any]:
    """The deterministic digest of a run (``summary.json``)."""
    scenario = result.scenario
    segments = result.segments
    alert_kinds: dict[str, int] = {}
    for alert in result.alerts:
        alert_kinds[alert.kind] = alert_kinds.get(alert.kind, 0) + 1
    return _clean(
        {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "days": scenario.days,
            "start": scenario.start.isoformat(),
            "passed": result.passed,
            "population": result.population,
            "calls": {
                "calls": sum(d.calls for d in result.days),
                "successes": sum(d.successes for d in result.days),
                "errors": sum(d.errors for d in result.days),
                "throttled": sum(d.throttled for d in result.days),
            },
            "alerts": dict(sorted(alert_kinds.items())),
            "scores_kept": result.scores_kept,
            "scores_dropped": result.scores_dropped,
            "detection": {kind: asdict(score) for kind, score in result.kinds.items()},
            "cases": [asdict(case) for case in result.cases],
            "confusion": result.confusion,
            "sweep": [asdict(point) for point in result.sweep],
            "funnel": {
                "steps": [asdict(step) for step in result.funnel.steps],
                "window_hours": result.funnel.window / 3600,
                "stuck": {k: len(v) for k, v in result.funnel.stuck.items()},
                "integration": asdict(result.integration),
                "truth": asdict(result.funnel_score)
                | {
                    "error": result.funnel_score.error,
                    "integration_error": result.funnel_score.integration_error,
                },
            },
            "cohorts": [
                {
                    "week_start": cohort.week_start,
                    "size": cohort.size,
                    "retention": list(cohort.retention),
                }
                for cohort in result.cohorts.cohorts
            ],
            "segments": {
                "churn_risk": len(segments.churn_risk),
                "power_users": len(segments.power_users),
                "upsell": len(segments.upsell),
                "dormant": len(segments.dormant),
            },
            "churn": asdict(result.churn) | {"flagged_developers": None},
            "revenue": _revenue(result.revenue),
            "metrics": result.metrics,
            "expectations": [v.as_dict() for v in result.verdicts],
            "daily": [asdict(day) for day in result.days],
        }
    )
