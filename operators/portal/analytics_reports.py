"""The analytics the admin pages show, as plain JSON-able data read from the operator's records.

Every report is computed from what the operator keeps in its database, so any replica serving
the page answers the same: the developers' milestones (:class:`~operators.analytics.
activity_log.ActivityLog`), the usage buckets (:class:`~operators.analytics.usage_recorder.
UsageRecorder`), the monitor's alerts table (:class:`~operators.analytics.monitor.AlertLog`),
the metering's usage events and the plan history (for revenue, through
:func:`operators.billing.rate_month`).

Funnels, cohorts, segments and timelines come from an :class:`~operators.analytics.engine.
Analytics` fed by :func:`~operators.analytics.monitor.replay`: every milestone, and the usage
buckets of the last :data:`REPLAY_WEEKS` whole weeks up to the end of the current bucket (so
the part of the bucket under way already written counts). It is not the monitor's live
instance: a replica that runs no monitor serves the pages too, and the live one only knows
what it replayed at its start plus what it has scored since. A replay is kept and reused
while nothing it read has changed (the newest milestone row, and the number and call total of
the buckets in its range), so repeated page loads cost two small queries.

A bad query parameter raises :class:`AnalyticsQueryError` naming it; the pages turn it into a
400 (or 404) page, JSON body or text.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..analytics.activity_log import ActivityLog
from ..analytics.alerts import ALERT_KINDS, Alert
from ..analytics.baselines import week_of, week_start
from ..analytics.engine import Analytics
from ..analytics.funnels import FunnelStep
from ..analytics.monitor import AlertLog, analytics_settings, replay
from ..analytics.quotas import monthly_limit
from ..analytics.records import ACTIVITY_KINDS
from ..analytics.revenue import RevenueRow, revenue_table
from ..analytics.segments import SegmentEntry, Segments
from ..analytics.settings import DAY, AnalyticsSettings
from ..analytics.usage_recorder import UsageRecorder
from ..billing import Month, MonthError, rate_month

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .host import PortalHost

__all__ = [
    "COHORT_WEEKS",
    "MAX_ALERTS_SHOWN",
    "MAX_DAYS",
    "MAX_WINDOW",
    "REPLAY_WEEKS",
    "SEGMENTS",
    "AnalyticsQueryError",
    "AnalyticsSource",
    "anomalies_report",
    "cohorts_report",
    "developer_report",
    "funnel_report",
    "overview_report",
    "parse_duration",
    "report_csv",
    "segments_report",
]

REPLAY_WEEKS = 13
"""Whole weeks of usage buckets replayed (a quarter: cohorts of up to 12 weeks, churn over 4)."""
COHORT_WEEKS = 12
"""The most weeks after sign-up a cohort table shows (what the replay covers)."""
MAX_DAYS = 366
MAX_WINDOW = 90 * DAY
MAX_ALERTS_SHOWN = 500
SEGMENTS = ("churn_risk", "power_users", "upsell", "dormant")
DEFAULT_STEPS = ("signed_up", "application_created", "first_token", "first_success")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


class AnalyticsQueryError(Exception):
    """A query a report refuses: the HTTP status, the parameter at fault and why."""

    def __init__(self, status: int, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.status = status
        self.parameter = parameter
        self.message = message


# -- parameters ----------------------------------------------------------------------------------


def parse_duration(text: str, parameter: str, *, most: float = MAX_WINDOW) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` or ``2w`` in seconds, above 0 and at most
    ``most``; :class:`AnalyticsQueryError` naming ``parameter`` otherwise."""
    found = _DURATION.match(text.strip().lower())
    seconds = float(found.group(1)) * _UNITS[found.group(2)] if found else math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise AnalyticsQueryError(
            400, parameter, f"{text[:40]!r} is not a duration; write e.g. 90s, 15m, 24h or 7d."
        )
    if seconds > most:
        raise AnalyticsQueryError(
            400, parameter, f"{text[:40]!r} is longer than {most / DAY:g} days."
        )
    return seconds


def _whole(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"\d{1,6}", raw) or not low <= int(raw) <= high:
        raise AnalyticsQueryError(
            400, name, f"{raw[:40]!r} is not a whole number from {low} to {high}."
        )
    return int(raw)


def _duration_text(seconds: float) -> str:
    for unit, size in (("w", 7 * DAY), ("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def iso(at: float | None) -> str | None:
    """Epoch seconds as ``2026-01-31T10:00:00Z`` (None stays None)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


# -- the records ---------------------------------------------------------------------------------


@dataclass
class _Replay:
    key: tuple[Any, ...]
    analytics: Analytics


@dataclass
class AnalyticsSource:
    """What the reports read: the serving party's parts and its analytics records."""

    host: PortalHost
    accounts: DeveloperAccounts
    activity: ActivityLog
    usage: UsageRecorder
    alert_log: AlertLog
    settings: AnalyticsSettings
    _cached: _Replay | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, host: PortalHost, accounts: DeveloperAccounts) -> AnalyticsSource | None:
        """The party's analytics records; None for a party that keeps none (the aggregator:
        its calls are the operators')."""
        if host.activity is None or host.usage is None:
            return None
        analytics = host.config.analytics
        usage = UsageRecorder(host.db, host.clock, bucket_seconds=analytics.bucket_seconds)
        return cls(
            host, accounts, host.activity, usage, AlertLog(host.db), analytics_settings(analytics)
        )

    @property
    def seconds(self) -> float:
        return self.usage.seconds

    def now(self) -> float:
        return self.host.clock()

    def replay_range(self, now: float) -> tuple[float, float]:
        """``[since, until)``: :data:`REPLAY_WEEKS` whole weeks, to the current bucket's end."""
        since = week_start(week_of(now) - REPLAY_WEEKS)
        until = (math.floor(now / self.seconds) + 1) * self.seconds
        return since, until

    def _signature(self, since: float, until: float) -> tuple[Any, ...]:
        db = self.host.db
        newest = db.one("SELECT MAX(id) AS newest FROM analytics_activities")
        buckets = db.one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(calls), 0) AS calls FROM analytics_usage_buckets"
            " WHERE seconds = ? AND start >= ? AND start < ?",
            (self.seconds, since, until),
        )
        return (
            since,
            until,
            newest["newest"] if newest else None,
            (buckets["n"], buckets["calls"]) if buckets else None,
        )

    def analytics(self, now: float) -> Analytics:
        """The records replayed into an engine (reused while they have not changed)."""
        since, until = self.replay_range(now)
        with self._lock:
            key = self._signature(since, until)
            if self._cached is None or self._cached.key != key:
                engine = Analytics(self.settings)
                replay(engine, self.activity, self.usage, since=since, until=until)
                engine.advance(until)
                self._cached = _Replay(key, engine)
            return self._cached.analytics

    # -- names -----------------------------------------------------------------------------

    def developer(self, developer_id: str) -> dict[str, Any]:
        found = self.accounts.developer(developer_id) if developer_id else None
        return {
            "developerId": developer_id,
            "email": found.email if found else None,
            "name": found.name if found else None,
        }

    def organisation_name(self, org_id: str) -> str | None:
        found = self.accounts.organisation(org_id) if org_id else None
        return found.name if found else None

    def application_name(self, client_id: str) -> str | None:
        found = self.accounts.application(client_id) if client_id else None
        return found.name if found else None

    def known_client(self, client_id: str) -> bool:
        if self.accounts.application(client_id) is not None:
            return True
        if self.host.identity.clients.get(client_id) is not None:
            return True
        row = self.host.db.one(
            "SELECT 1 AS found FROM analytics_alerts WHERE client_id = ? LIMIT 1", (client_id,)
        )
        return row is not None


class _Names:
    """Per-report memo of the lookups a table repeats for every row."""

    def __init__(self, source: AnalyticsSource) -> None:
        self.source = source
        self._developers: dict[str, dict[str, Any]] = {}
        self._orgs: dict[str, str | None] = {}
        self._apps: dict[str, str | None] = {}

    def developer(self, developer_id: str) -> dict[str, Any]:
        if developer_id not in self._developers:
            self._developers[developer_id] = self.source.developer(developer_id)
        return self._developers[developer_id]

    def organisation(self, org_id: str) -> str | None:
        if org_id not in self._orgs:
            self._orgs[org_id] = self.source.organisation_name(org_id)
        return self._orgs[org_id]

    def application(self, client_id: str) -> str | None:
        if client_id not in self._apps:
            self._apps[client_id] = self.source.application_name(client_id)
        return self._apps[client_id]

    def who(self, developer_id: str, org_id: str) -> dict[str, Any]:
        developer = self.developer(developer_id)
        return {
            "developerId": developer_id,
            "email": developer["email"],
            "orgId": org_id,
            "organisation": self.organisation(org_id),
        }


# -- overview: revenue, active applications, calls per day -----------------------------------


def _month(params: Mapping[str, str], now: float) -> Month:
    raw = params.get("month", "").strip()
    if not raw:
        return Month.of(now)
    try:
        month = Month.parse(raw)
    except MonthError as error:
        raise AnalyticsQueryError(400, "month", str(error)) from None
    if month.start > now:
        raise AnalyticsQueryError(400, "month", f"{month} has not begun.")
    return month


def _revenue_rows(rows: Iterable[RevenueRow], names: _Names | None) -> list[dict[str, Any]]:
    return [
        {
            "group": row.group,
            **({"name": names.organisation(row.group)} if names is not None else {}),
            "currency": row.currency,
            "amount": str(row.amount),
            "calls": row.calls,
        }
        for row in rows
    ]


def _revenue(source: AnalyticsSource, month: Month, now: float, names: _Names) -> dict[str, Any]:
    host = source.host
    ledger = host.usage
    events = ledger.events() if ledger is not None else []
    final = now >= month.end
    applications = source.analytics(now).applications()
    created = {c: a.created_at for c, a in applications.items() if a.created_at is not None}
    lines = rate_month(
        events,
        host.plans.history,
        month,
        subscribed=list(host.plans.held()),
        since=created,
        until=None if final else now,
    )
    table = revenue_table(lines, source.accounts.owners())
    return {
        "month": str(month),
        "status": "final" if final else "draft",
        "totals": {currency: str(amount) for currency, amount in table.totals.items()},
        "byApi": _revenue_rows(table.by_api, None),
        "byPlan": _revenue_rows(table.by_plan, None),
        "byOrg": _revenue_rows(table.by_org, names),
    }


def _daily(
    source: AnalyticsSource, first_day: float, until: float, client_ids: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Calls per UTC day from the usage buckets (the current bucket's written part too)."""
    where = "seconds = ? AND start >= ? AND start < ?"
    params: list[object] = [source.seconds, first_day, until]
    if client_ids is not None:
        if not client_ids:
            client_ids = [""]
        where += f" AND client_id IN ({','.join('?' for _ in client_ids)})"
        params.extend(client_ids)
    rows = source.host.db.all(
        "SELECT CAST(start / 86400 AS INTEGER) AS day, SUM(calls) AS calls,"
        " SUM(successes) AS successes, SUM(errors) AS errors, SUM(throttled) AS throttled,"
        " COUNT(DISTINCT client_id) AS applications"
        f" FROM analytics_usage_buckets WHERE {where} GROUP BY day",
        params,
    )
    by_day = {int(row["day"]): row for row in rows}
    days: list[dict[str, Any]] = []
    first = math.floor(first_day / DAY)
    for day in range(first, math.floor((until - 1) / DAY) + 1):
        row = by_day.get(day)
        days.append(
            {
                "date": _date(day * DAY),
                "calls": int(row["calls"]) if row else 0,
                "successes": int(row["successes"]) if row else 0,
                "errors": int(row["errors"]) if row else 0,
                "throttled": int(row["throttled"]) if row else 0,
                "activeApplications": int(row["applications"]) if row else 0,
            }
        )
    return days


def _active(
    source: AnalyticsSource, since: float, until: float, names: _Names
) -> list[dict[str, Any]]:
    rows = source.host.db.all(
        "SELECT client_id, SUM(calls) AS calls, SUM(successes) AS successes,"
        " SUM(errors) AS errors, SUM(throttled) AS throttled, MAX(start) AS last"
        " FROM analytics_usage_buckets WHERE seconds = ? AND start >= ? AND start < ?"
        " GROUP BY client_id ORDER BY calls DESC, client_id",
        (source.seconds, since, until),
    )
    owners = source.accounts.owners()
    active: list[dict[str, Any]] = []
    for row in rows:
        client_id = str(row["client_id"])
        application = source.accounts.application(client_id)
        developer_id = application.developer_id if application else ""
        active.append(
            {
                "clientId": client_id,
                "application": names.application(client_id),
                **names.who(developer_id, owners.get(client_id, "")),
                "calls": int(row["calls"]),
                "successes": int(row["successes"]),
                "errors": int(row["errors"]),
                "throttled": int(row["throttled"]),
                "lastCall": iso(float(row["last"])),
            }
        )
    return active


def overview_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """Revenue of ``month`` per API, plan and organisation; the applications with calls over
    the last ``days`` days; calls and active applications per day."""
    now = source.now()
    month = _month(params, now)
    days = _whole(params, "days", 30, 1, 90)
    names = _Names(source)
    first_day = (math.floor(now / DAY) - days + 1) * DAY
    _, until = source.replay_range(now)
    return {
        "report": "overview",
        "generatedAt": iso(now),
        "days": days,
        "from": _date(first_day),
        "revenue": _revenue(source, month, now, names),
        "activeApplications": _active(source, first_day, until, names),
        "daily": _daily(source, first_day, until, None),
    }


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
    analytics = source.analytics(now)
    report = analytics.funnel(steps, window=window, now=now)
    names = _Names(source)
    developers = analytics.developers()
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
        "windowText": _duration_text(window),
        "steps": results,
    }


# -- cohorts -------------------------------------------------------------------------------------


def cohorts_report(source: AnalyticsSource, params: Mapping[str, str]) -> dict[str, Any]:
    """Retention by sign-up week: the share of each week's sign-ups with a successful call in
    each following week. Cohorts older than the replay are left out (their first weeks were
    not replayed, so they would read as inactive)."""
    weeks = _whole(params, "weeks", 8, 1, COHORT_WEEKS)
    now = source.now()
    since, _ = source.replay_range(now)
    table = source.analytics(now).cohorts(now=now, weeks=weeks)
    return {
        "report": "cohorts",
        "generatedAt": iso(now),
        "weeks": weeks,
        "since": _date(since),
        "cohorts": [
            {
                "weekStart": _date(c.week_start),
                "size": c.size,
                "active": list(c.active),
                "retention": list(c.retention),
            }
            for c in table.cohorts
            if c.week_start >= since
        ],
    }


# -- anomalies -----------------------------------------------------------------------------------


def _alert_json(alert: Alert, names: _Names) -> dict[str, Any]:
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
    days = _whole(params, "days", 30, 1, MAX_DAYS)
    now = source.now()
    since = now - days * DAY
    found = source.alert_log.read(since, None, client_id=client_id)
    if kind is not None:
        found = [a for a in found if a.kind == kind]
    counts = {k: 0 for k in ALERT_KINDS}
    for alert in found:
        counts[alert.kind] += 1
    names = _Names(source)
    first_day = (math.floor(now / DAY) - min(days, 30) + 1) * DAY
    per_day: dict[str, dict[str, int]] = {}
    for day in range(math.floor(first_day / DAY), math.floor(now / DAY) + 1):
        per_day[_date(day * DAY)] = {k: 0 for k in ALERT_KINDS}
    for alert in found:
        cell = per_day.get(_date(alert.raised_at))
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


def _last_calls_before(source: AnalyticsSource, before: float) -> dict[str, float]:
    rows = source.host.db.all(
        "SELECT client_id, MAX(start) AS last FROM analytics_usage_buckets"
        " WHERE seconds = ? AND start < ? AND calls > 0 GROUP BY client_id",
        (source.seconds, before),
    )
    return {str(r["client_id"]): float(r["last"]) + source.seconds for r in rows}


def _dormant(
    source: AnalyticsSource, entries: Sequence[SegmentEntry], since: float, now: float
) -> list[SegmentEntry]:
    """The engine saw only the replay: an application whose last call is older reads as never
    called; its real last call is read from the buckets and the reason told again."""
    never = [e for e in entries if e.reason.startswith("created")]
    if not never:
        return list(entries)
    older = _last_calls_before(source, since)
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
    analytics = source.analytics(now)
    found: Segments = analytics.segments(now=now, quotas=_quotas(source, analytics))
    since, _ = source.replay_range(now)
    names = _Names(source)
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
    analytics = source.analytics(now)
    info = analytics.developers().get(developer_id)
    account = source.accounts.developer(developer_id)
    if info is None and account is None:
        raise AnalyticsQueryError(404, "developer_id", "no such developer.")
    names = _Names(source)
    org_id = info.org_id if info is not None else account.org_id if account else ""
    entries = analytics.timeline(developer_id) if info is not None else []
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
    _, until = source.replay_range(now)
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
        "daily": _daily(source, first_day, until, applications),
        "alerts": [_alert_json(a, names) for a in alerts[:MAX_ALERTS_SHOWN]],
    }


# -- CSV -----------------------------------------------------------------------------------------


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
