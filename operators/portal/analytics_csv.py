"""The analytics reports as CSV: one table per report, cells a spreadsheet will not run.

Revenue rows for the overview, steps and stuck developers for a funnel, retention per cohort,
alerts, segment entries, timeline entries; chosen by the report's ``report`` field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["report_csv"]


def _cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _overview_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    yield ["dimension", "group", "name", "currency", "amount", "calls"]
    revenue = report["revenue"]
    for dimension, key in (("api", "byApi"), ("plan", "byPlan"), ("organisation", "byOrg")):
        for row in revenue[key]:
            yield [
                dimension,
                row["group"],
                row.get("name") or "",
                row["currency"],
                row["amount"],
                row["calls"],
            ]


def _funnel_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    yield [
        "step",
        "entered",
        "conversion",
        "overall",
        "in_progress",
        "stuck_developer_id",
        "stuck_email",
        "stuck_organisation",
    ]
    for step in report["steps"]:
        head = [
            step["name"],
            step["entered"],
            _share(step["conversion"]),
            _share(step["overall"]),
            step["inProgress"],
        ]
        if not step["stuck"]:
            yield [*head, "", "", ""]
        for who in step["stuck"]:
            yield [*head, who["developerId"], who["email"], who["organisation"]]


def _cohort_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    yield ["week_start", "size", *(f"week_{k}" for k in range(report["weeks"]))]
    for cohort in report["cohorts"]:
        yield [cohort["weekStart"], cohort["size"], *map(_share, cohort["retention"])]


_ALERT_COLUMNS = (
    "raisedAt",
    "kind",
    "clientId",
    "application",
    "api",
    "developerId",
    "email",
    "orgId",
    "organisation",
    "bucketStart",
    "score",
    "observed",
    "baseline",
    "detail",
)


def _alert_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    yield list(_ALERT_COLUMNS)
    for alert in report["alerts"]:
        yield [alert[c] for c in _ALERT_COLUMNS]


def _segment_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    columns = (
        "clientId",
        "application",
        "developerId",
        "email",
        "orgId",
        "organisation",
        "api",
        "reason",
        "value",
    )
    yield ["segment", *columns]
    for name, entries in report["segments"].items():
        for entry in entries:
            yield [name, *(entry[c] for c in columns)]


def _developer_rows(report: Mapping[str, Any]) -> Iterable[list[object]]:
    columns = ("at", "kind", "clientId", "application", "api", "detail", "count")
    yield list(columns)
    for entry in report["timeline"]:
        yield [entry[c] for c in columns]


_CSV: dict[str, Callable[[Mapping[str, Any]], Iterable[list[object]]]] = {
    "overview": _overview_rows,
    "funnel": _funnel_rows,
    "cohorts": _cohort_rows,
    "anomalies": _alert_rows,
    "segments": _segment_rows,
    "developer": _developer_rows,
}


def report_csv(report: Mapping[str, Any]) -> str:
    """A report's table as CSV (by its ``report`` field): revenue rows for the overview, steps
    and stuck developers for a funnel, retention per cohort, alerts, segment entries, timeline
    entries."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in _CSV[report["report"]](report):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
