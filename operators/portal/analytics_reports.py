"""The analytics pages' reports as plain JSON-able data: funnel, cohorts, anomalies, segments
and one developer's timeline (the overview is :mod:`operators.portal.analytics_overview`).

Each report reads an :class:`~operators.portal.analytics_source.AnalyticsSource`: the replayed
engine for funnels, cohorts, segments and timelines, the monitor's alerts table for anomalies,
the buckets table for calls per day. :data:`REPORTS` names every page's report; a bad query
parameter raises :class:`~operators.portal.analytics_parameters.AnalyticsQueryError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..analytics.alerts import ALERT_KINDS, Alert
from ..analytics.engine import Analytics
from ..analytics.funnels import FunnelStep
from ..analytics.quotas import monthly_limit
from ..analytics.records import ACTIVITY_KINDS
from ..analytics.segments import SegmentEntry, Segments
from ..analytics.settings import DAY
from .analytics_overview import overview_report
from .analytics_parameters import (
    MAX_DAYS,
    AnalyticsQueryError,
    date_text,
    duration_text,
    iso,
    parse_duration,
    whole_number,
)
from .analytics_source import AnalyticsSource, Names

__all__ = [
    "COHORT_WEEKS",
    "MAX_ALERTS_SHOWN",
    "REPORTS",
    "SEGMENTS",
    "Report",
    "anomalies_report",
    "cohorts_report",
    "developer_report",
    "funnel_report",
    "segments_report",
]

Report = dict[str, Any]
COHORT_WEEKS = 12
"""The most weeks after sign-up a cohort table shows (what the replay covers)."""
MAX_ALERTS_SHOWN = 500
SEGMENTS = ("churn_risk", "power_users", "upsell", "dormant")
DEFAULT_STEPS = ("signed_up", "application_created", "first_token", "first_success")


# -- funnel --------------------------------------------------------------------------------------


def _steps(params: Mapping[str, str], api: str) -> list[FunnelStep]:
    raw = params.get("steps", "").strip()
    kinds = [k.strip() for k in raw.split(",")] if raw else list(DEFAULT_STEPS)
    if not 1 <= len(kinds) <= 10 or any(k not in ACTIVITY_KINDS for k in kinds):
        bad = next((k for k in kinds if k not in ACTIVITY_KINDS), raw)
        raise AnalyticsQueryError(
            400,
            "steps",
            f"{bad[:40]!r} is not a milestone; give 1 to 10 of {', '.join(ACTIVITY_KINDS)}"
            " separated by commas.",
        )
    per_api = {"first_success", "plan_changed"}
    steps = [FunnelStep(k, api if k in per_api else "") for k in kinds]
    if len({s.name for s in steps}) != len(steps):
        raise AnalyticsQueryError(400, "steps", "a step is named twice.")
    return steps


def _api(params: Mapping[str, str], apis: Sequence[str]) -> str:
    raw = params.get("api", "").strip()
    if not raw:
        return "sim-swap" if "sim-swap" in apis else apis[0]
    if raw not in apis:
        raise AnalyticsQueryError(
            400, "api", f"{raw[:60]!r} is not an API served here ({', '.join(apis)})."
        )
    return raw


def funnel_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """Developers through ordered milestones within a conversion window from the first; who is
    stuck at each step once their window has elapsed."""
    api = _api(params, source.host.apis)
    raw_window = params.get("window", "").strip()
    window = parse_duration(raw_window, "window") if raw_window else source.settings.funnel_window
    steps = _steps(params, api)
    now = source.now()
    with source.analytics(now) as analytics:
        report = analytics.funnel(steps, window=window, now=now)
        developers = dict(analytics.developers())
    names = Names(source)
    results = []
    for step in report.steps:
        stuck = report.stuck.get(step.name, [])
        results.append(
            {
                "name": step.name,
                "entered": step.entered,
                "conversion": step.conversion,
                "overall": step.overall,
                "stuck": [
                    names.who(d, developers[d].org_id if d in developers else "") for d in stuck
                ],
                "inProgress": len(report.in_progress.get(step.name, [])),
            }
        )
    return {
        "report": "funnel",
        "generatedAt": iso(now),
        "api": api,
        "window": window,
        "windowText": duration_text(window),
        "steps": results,
    }


# -- cohorts -------------------------------------------------------------------------------------


def cohorts_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """Retention by sign-up week: the share of each week's sign-ups with a successful call in
    each following week. Cohorts older than the replay are left out (their first weeks were
    not replayed, so they would read as inactive)."""
    weeks = whole_number(params, "weeks", 8, 1, COHORT_WEEKS)
    now = source.now()
    since = source.since(now)
    with source.analytics(now) as analytics:
        table = analytics.cohorts(now=now, weeks=weeks)
    return {
        "report": "cohorts",
        "generatedAt": iso(now),
        "weeks": weeks,
        "since": date_text(since),
        "cohorts": [
            {
                "weekStart": date_text(c.week_start),
                "size": c.size,
                "active": list(c.active),
                "retention": list(c.retention),
            }
            for c in table.cohorts
            if c.week_start >= since
        ],
    }


# -- anomalies -----------------------------------------------------------------------------------


def _alert_json(alert: Alert, names: Names) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "clientId": alert.client_id,
        "application": names.application(alert.client_id),
        "api": alert.api,
        **names.who(alert.developer_id, alert.org_id),
        "bucketStart": iso(alert.bucket_start),
        "raisedAt": iso(alert.raised_at),
        "score": round(alert.score, 3),
        "observed": round(alert.observed, 4),
        "baseline": round(alert.baseline, 4),
        "detail": alert.detail,
    }


def anomalies_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """The alerts the monitor kept over the last ``days`` days, newest first, optionally of
    one ``kind`` and one ``application`` (at most :data:`MAX_ALERTS_SHOWN`)."""
    kind = params.get("kind", "").strip() or None
    if kind is not None and kind not in ALERT_KINDS:
        raise AnalyticsQueryError(
            400, "kind", f"{kind[:40]!r} is not an alert kind ({', '.join(ALERT_KINDS)})."
        )
    client_id = params.get("application", "").strip() or None
    if client_id is not None and not source.known_client(client_id[:128]):
        raise AnalyticsQueryError(404, "application", "no such application here.")
    days = whole_number(params, "days", 30, 1, MAX_DAYS)
    now = source.now()
    since = now - days * DAY
    found = source.alert_log.read(since, None, client_id=client_id)
    if kind is not None:
        found = [a for a in found if a.kind == kind]
    counts = {k: 0 for k in ALERT_KINDS}
    for alert in found:
        counts[alert.kind] += 1
    names = Names(source)
    first_day = (math.floor(now / DAY) - min(days, 30) + 1) * DAY
    per_day: dict[str, dict[str, int]] = {}
    for day in range(math.floor(first_day / DAY), math.floor(now / DAY) + 1):
        per_day[date_text(day * DAY)] = {k: 0 for k in ALERT_KINDS}
    for alert in found:
        cell = per_day.get(date_text(alert.raised_at))
        if cell is not None:
            cell[alert.kind] += 1
    return {
        "report": "anomalies",
        "generatedAt": iso(now),
        "kind": kind,
        "application": client_id,
        "days": days,
        "total": len(found),
        "counts": counts,
        "perDay": [{"date": d, **c} for d, c in per_day.items()],
        "alerts": [_alert_json(a, names) for a in found[:MAX_ALERTS_SHOWN]],
    }


# -- segments ------------------------------------------------------------------------------------


def _quotas(source: AnalyticsSource, analytics: Analytics) -> dict[tuple[str, str], int]:
    quotas: dict[tuple[str, str], int] = {}
    for client_id, info in analytics.applications().items():
        for api in info.apis:
            limit = monthly_limit(source.host.plans.plan_for(client_id, api))
            if limit:
                quotas[client_id, api] = limit
    return quotas


def _dormant(
    source: AnalyticsSource, entries: Sequence[SegmentEntry], since: float, now: float
) -> list[SegmentEntry]:
    """The engine saw only the replay: an application whose last call is older reads as never
    called; its real last call is read from the buckets and the reason told again."""
    never = [e for e in entries if e.reason.startswith("created")]
    if not never:
        return list(entries)
    older = source.last_calls_before(since)
    fixed: list[SegmentEntry] = []
    for entry in entries:
        last = older.get(entry.client_id) if entry in never else None
        if last is None:
            fixed.append(entry)
        else:
            idle = (now - last) / DAY
            fixed.append(replace(entry, reason=f"no call for {idle:.0f} days", value=idle))
    return fixed


def segments_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """Churn risk, power users, upsell candidates and dormant applications with reasons."""
    wanted = params.get("segment", "").strip() or None
    if wanted is not None and wanted not in SEGMENTS:
        raise AnalyticsQueryError(
            400, "segment", f"{wanted[:40]!r} is not a segment ({', '.join(SEGMENTS)})."
        )
    now = source.now()
    with source.analytics(now) as analytics:
        found: Segments = analytics.segments(now=now, quotas=_quotas(source, analytics))
    since = source.since(now)
    names = Names(source)
    lists: dict[str, list[SegmentEntry]] = {
        "churn_risk": list(found.churn_risk),
        "power_users": list(found.power_users),
        "upsell": list(found.upsell),
        "dormant": _dormant(source, found.dormant, since, now),
    }
    return {
        "report": "segments",
        "generatedAt": iso(now),
        "segment": wanted,
        "segments": {
            name: [
                {
                    "clientId": e.client_id,
                    "application": names.application(e.client_id),
                    **names.who(e.developer_id, e.org_id),
                    "api": e.api,
                    "reason": e.reason,
                    "value": round(e.value, 4),
                }
                for e in entries
            ]
            for name, entries in lists.items()
            if wanted is None or name == wanted
        },
    }


# -- one developer -------------------------------------------------------------------------------


def developer_report(source: AnalyticsSource, developer_id: str) -> dict[str, Any]:
    """One developer's timeline (milestones, first successes, days with errors or throttled
    calls), their applications' calls per day and their alerts; 404 for one unknown."""
    developer_id = developer_id[:64]
    now = source.now()
    with source.analytics(now) as analytics:
        info = analytics.developers().get(developer_id)
        entries = analytics.timeline(developer_id) if info is not None else []
    account = source.accounts.developer(developer_id)
    if info is None and account is None:
        raise AnalyticsQueryError(404, "developer_id", "no such developer.")
    names = Names(source)
    org_id = info.org_id if info is not None else account.org_id if account else ""
    applications = list(info.applications) if info is not None else []
    if account is not None:
        owned = [a.client_id for a in source.accounts.applications(account.org_id)]
        applications += [
            c
            for c in owned
            if c not in applications
            and (app := source.accounts.application(c))
            and app.developer_id == developer_id
        ]
    first_day = (math.floor(now / DAY) - 34) * DAY
    until = source.current_end(now)
    alerts = [
        a
        for a in source.alert_log.read(now - MAX_DAYS * DAY, None)
        if a.developer_id == developer_id or a.client_id in applications
    ]
    return {
        "report": "developer",
        "generatedAt": iso(now),
        **names.who(developer_id, org_id),
        "name": account.name if account else None,
        "signedUpAt": iso(info.signed_up_at if info else account.created_at if account else None),
        "applications": [
            {"clientId": c, "application": names.application(c)} for c in applications
        ],
        "timeline": [
            {
                "at": iso(e.at),
                "kind": e.kind,
                "clientId": e.client_id,
                "application": names.application(e.client_id) if e.client_id else None,
                "api": e.api,
                "detail": e.detail,
                "count": e.count,
            }
            for e in entries
        ],
        "daily": source.daily(first_day, until, applications),
        "alerts": [_alert_json(a, names) for a in alerts[:MAX_ALERTS_SHOWN]],
    }


REPORTS: dict[str, Callable[[AnalyticsSource, Mapping[str, str]], Report]] = {
    "overview": overview_report,
    "funnel": funnel_report,
    "cohorts": cohorts_report,
    "anomalies": anomalies_report,
    "segments": segments_report,
}
"""Every page's report but the developer's (which takes the developer from the path)."""
