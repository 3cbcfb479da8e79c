"""An organisation's usage: calls per application, API and UTC day, errors by code, latency
percentiles and quota used and left, read from the gateway's call statistics.

The numbers come from :class:`~operators.gateway.call_statistics.CallStatistics`, which counts
every call of an identified application (refused ones included) per day, so this module only
selects, merges and formats: percentiles over a day or a range are read from merged latency
histograms, never averaged.

:func:`usage_report` makes the report; :func:`build_usage_pages` serves it at
``/portal/usage`` as a page with server-drawn charts (:mod:`operators.portal.charts`), and as
CSV and JSON. A query names its parameters the way the page's form does (``application``,
``api``, ``from``, ``to``), so an error can name the one at fault.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from markupsafe import Markup

from ..config import Plan, QuotaPeriod
from ..gateway.call_statistics import CallStatistics, CallTally, LatencyHistogram, day_of
from ..gateway.subscriptions import PlanStore
from ..web.pages import SECURITY_HEADERS
from .charts import Series, line_chart, stacked_bars
from .developers import Application

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .guard import PortalGuard
    from .host import PortalHost

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "DailyTotal",
    "DayUsage",
    "QuotaUse",
    "RangeUsage",
    "UsageQuery",
    "UsageQueryError",
    "UsageReport",
    "build_usage_pages",
    "csv_filename",
    "parse_usage_query",
    "quota_period_start",
    "usage_csv",
    "usage_json",
    "usage_report",
]

DEFAULT_DAYS = 14
"""The range a page shows when given no dates: the last 14 UTC days, today included."""
MAX_DAYS = 366
"""The longest range one query may ask for (a year, leap day included)."""
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)
"""The dates a query may name: usage is kept in epoch seconds from 1970."""
PARAMETERS = ("application", "api", "from", "to")


class UsageQueryError(Exception):
    """A query the report refuses: its HTTP status, the parameter at fault and why."""

    def __init__(self, status: int, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.status = status
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class UsageQuery:
    """Which calls a report covers: UTC days ``first`` to ``last`` (inclusive), optionally one
    application and one API."""

    first: date
    last: date
    client_id: str | None = None
    api: str | None = None

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def params(self) -> dict[str, str]:
        """The query string that asks for this report again (for the CSV and JSON links)."""
        params = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        if self.client_id:
            params["application"] = self.client_id
        if self.api:
            params["api"] = self.api
        return params


def _date(params: Mapping[str, str], name: str) -> date | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise UsageQueryError(
            400, name, f"{raw[:40]!r} is not a date; write it as YYYY-MM-DD."
        ) from None
    if not EARLIEST <= day <= LATEST:
        # Usage is kept in epoch seconds; a range reaching year 1 or 9999 overflows the
        # arithmetic on its days before any query runs.
        raise UsageQueryError(400, name, f"{raw} is out of range: give a date from {EARLIEST}"
                                         f" to {LATEST}.")
    return day


def parse_usage_query(
    params: Mapping[str, str],
    *,
    today: date,
    applications: Sequence[Application],
    apis: Collection[str],
) -> UsageQuery:
    """Read a query from its parameters; :class:`UsageQueryError` names a bad one.

    ``applications`` are the signed-in developer's organisation's: an application that is not
    among them is answered as not found whether it exists elsewhere or not (a 404 that tells
    nobody which client ids other organisations hold). Empty parameters mean "not given".
    """
    last = _date(params, "to") or today
    first = _date(params, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise UsageQueryError(
            400, "from", f"the range starts ({first}) after it ends ({last})."
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise UsageQueryError(
            400, "to", f"a range covers at most {MAX_DAYS} days; this one covers "
            f"{(last - first).days + 1}."
        )
    client_id = params.get("application", "").strip() or None
    if client_id is not None and client_id not in {a.client_id for a in applications}:
        raise UsageQueryError(404, "application", "your organisation has no such application.")
    api = params.get("api", "").strip() or None
    if api is not None and api not in apis:
        raise UsageQueryError(400, "api", f"{api[:60]!r} is not an API served here.")
    return UsageQuery(first, last, client_id, api)


@dataclass(frozen=True)
class DayUsage:
    """One application's calls of one API on one UTC day."""

    client_id: str
    application: str
    api: str
    day: date
    calls: int
    errors: int
    errors_by_code: tuple[tuple[str, int], ...]
    """``("404 IDENTIFIER_NOT_FOUND", 3)``: status and CAMARA code, most frequent first."""
    p50: float | None
    p95: float | None
    """Latency percentiles in seconds, within 1 % (the histograms' relative accuracy)."""

    @property
    def successes(self) -> int:
        return self.calls - self.errors


@dataclass(frozen=True)
class RangeUsage:
    """One application's calls of one API over the whole range (percentiles merged)."""

    client_id: str
    application: str
    api: str
    calls: int
    errors: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class DailyTotal:
    """Every selected call of one day: what the charts draw."""

    day: date
    successes: int
    errors: int
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class QuotaUse:
    """The quota of the plan an application holds for an API now, and how much of it is used.

    ``used`` is the portal's reading: the calls the throttle admitted (so counted against the
    quota) since the current period began, from the call statistics. The gateway's live quota
    counter is the authority, and the two may differ: the counter starts afresh when the plan
    changes, a sliding window also weighs the previous period, and statistics of the last few
    seconds may still be on their way. ``used`` and ``left`` are None for a quota counted per
    minute or hour (the statistics are daily) and ``limit`` is None for a plan with no quota.
    """

    client_id: str
    application: str
    api: str
    plan: str
    limit: int | None
    period: QuotaPeriod | None
    window: str | None
    since: date | None
    used: int | None
    left: int | None


@dataclass(frozen=True)
class UsageReport:
    query: UsageQuery
    applications: tuple[Application, ...]
    """The organisation's applications (all of them: the page's filter lists them)."""
    rows: list[DayUsage]
    ranges: list[RangeUsage]
    daily: list[DailyTotal]
    """One entry per day of the range, days without calls included."""
    quotas: list[QuotaUse]
    calls: int = 0
    errors: int = 0
    errors_by_code: tuple[tuple[str, int], ...] = field(default=())


def quota_period_start(period: QuotaPeriod, now: float) -> date | None:
    """The UTC day the current quota period began on, for the periods daily statistics can
    count (a day, a calendar month); None for a minute or an hour."""
    today = day_of(now)
    if period is QuotaPeriod.DAY:
        return today
    if period is QuotaPeriod.MONTH:
        return today.replace(day=1)
    return None


def _code_of(tally: CallTally) -> str:
    return f"{tally.status} {tally.code}" if tally.code else str(tally.status)


def _ranked(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class _Sum:
    """Calls, errors by code and latency of a group of tallies."""

    __slots__ = ("calls", "codes", "errors", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.codes: dict[str, int] = {}
        self.latency = LatencyHistogram()

    def add(self, tally: CallTally) -> None:
        self.calls += tally.calls
        if tally.status >= 400:
            self.errors += tally.calls
            code = _code_of(tally)
            self.codes[code] = self.codes.get(code, 0) + tally.calls
        self.latency.merge(tally.latency)


def usage_report(
    statistics: CallStatistics,
    plans: PlanStore,
    applications: Sequence[Application],
    query: UsageQuery,
    *,
    now: float,
    apis: Sequence[str],
) -> UsageReport:
    """The report of ``query`` over an organisation's ``applications`` at epoch ``now``.

    Runs on the event loop (it merges the statistics' pending calls, which are the loop's).
    """
    names = {a.client_id: a.name for a in applications}
    chosen = [query.client_id] if query.client_id else sorted(names)
    per_day: dict[tuple[str, str, date], _Sum] = {}
    per_range: dict[tuple[str, str], _Sum] = {}
    per_date: dict[date, _Sum] = {day: _Sum() for day in query.days}
    overall = _Sum()
    for tally in statistics.tallies(chosen, query.first, query.last):
        if query.api and tally.api != query.api:
            continue
        for group in (
            per_day.setdefault((tally.client_id, tally.api, tally.day), _Sum()),
            per_range.setdefault((tally.client_id, tally.api), _Sum()),
            per_date[tally.day],
            overall,
        ):
            group.add(tally)
    rows = [
        DayUsage(client_id, names.get(client_id, client_id), api, day, s.calls, s.errors,
                 _ranked(s.codes), s.latency.quantile(0.5), s.latency.quantile(0.95))
        for (client_id, api, day), s in sorted(
            per_day.items(), key=lambda item: (item[0][2], item[0][0], item[0][1])
        )
    ]
    ranges = [
        RangeUsage(client_id, names.get(client_id, client_id), api, s.calls, s.errors,
                   s.latency.quantile(0.5), s.latency.quantile(0.95))
        for (client_id, api), s in sorted(per_range.items())
    ]
    daily = [
        DailyTotal(day, s.calls - s.errors, s.errors, s.latency.quantile(0.5),
                   s.latency.quantile(0.95))
        for day, s in sorted(per_date.items())
    ]
    quotas = _quotas(statistics, plans, names, chosen, query, per_range, now=now, apis=apis)
    return UsageReport(
        query, tuple(applications), rows, ranges, daily, quotas,
        calls=overall.calls, errors=overall.errors, errors_by_code=_ranked(overall.codes),
    )


def _quotas(
    statistics: CallStatistics,
    plans: PlanStore,
    names: Mapping[str, str],
    chosen: Sequence[str],
    query: UsageQuery,
    per_range: Mapping[tuple[str, str], _Sum],
    *,
    now: float,
    apis: Sequence[str],
) -> list[QuotaUse]:
    """Quota used and left for each (application, API) with calls in the range or in the
    current period, or for every application when one API is asked for."""
    today = day_of(now)
    month = today.replace(day=1)
    counted: dict[tuple[str, str], dict[date, int]] = {}
    for tally in statistics.tallies(chosen, month, today, latency=False):
        if tally.counted:
            days = counted.setdefault((tally.client_id, tally.api), {})
            days[tally.day] = days.get(tally.day, 0) + tally.calls
    wanted = set(per_range) | set(counted)
    if query.api:
        wanted = {(client_id, query.api) for client_id in chosen}
    uses: list[QuotaUse] = []
    for client_id, api in sorted(wanted):
        if api not in apis:
            continue  # an API this party no longer serves: it has no plan to read
        plan = plans.plan_for(client_id, api)
        uses.append(_quota_use(client_id, names.get(client_id, client_id), api, plan,
                               counted.get((client_id, api), {}), now))
    return uses


def _quota_use(
    client_id: str, name: str, api: str, plan: Plan, counted: Mapping[date, int], now: float
) -> QuotaUse:
    quota = plan.quota
    if quota is None:
        return QuotaUse(client_id, name, api, plan.name, None, None, None, None, None, None)
    since = quota_period_start(quota.period, now)
    used = left = None
    if since is not None:
        used = sum(n for day, n in counted.items() if day >= since)
        left = max(0, quota.limit - used)
    return QuotaUse(client_id, name, api, plan.name, quota.limit, quota.period, quota.window,
                    since, used, left)


# -- export ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "date", "client_id", "application", "api", "calls", "successes", "errors",
    "errors_by_code", "p50_ms", "p95_ms",
)


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f}"


def usage_csv(report: UsageReport) -> str:
    """One row per application, API and day with calls, in the page's order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        writer.writerow([
            row.day.isoformat(), _cell(row.client_id), _cell(row.application), _cell(row.api),
            row.calls, row.successes, row.errors,
            " ".join(f"{code.replace(' ', ':')}={n}" for code, n in row.errors_by_code),
            _ms(row.p50), _ms(row.p95),
        ])
    return out.getvalue()


def csv_filename(report: UsageReport) -> str:
    """``usage-2026-01-01-to-2026-01-14.csv`` (dates only: nothing a header could choke on)."""
    query = report.query
    return f"usage-{query.first.isoformat()}-to-{query.last.isoformat()}.csv"


def usage_json(report: UsageReport) -> dict[str, Any]:
    """The report as JSON: the query, totals, daily rows, per-range rows and quotas."""
    query = report.query
    return {
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        "application": query.client_id,
        "api": query.api,
        "calls": report.calls,
        "errors": report.errors,
        "errorsByCode": dict(report.errors_by_code),
        "days": [
            {"date": r.day.isoformat(), "clientId": r.client_id, "application": r.application,
             "api": r.api, "calls": r.calls, "successes": r.successes, "errors": r.errors,
             "errorsByCode": dict(r.errors_by_code), "p50Ms": _ms_or_none(r.p50),
             "p95Ms": _ms_or_none(r.p95)}
            for r in report.rows
        ],
        "ranges": [
            {"clientId": r.client_id, "application": r.application, "api": r.api,
             "calls": r.calls, "errors": r.errors, "p50Ms": _ms_or_none(r.p50),
             "p95Ms": _ms_or_none(r.p95)}
            for r in report.ranges
        ],
        "quotas": [
            {"clientId": q.client_id, "application": q.application, "api": q.api,
             "plan": q.plan, "limit": q.limit, "period": q.period.value if q.period else None,
             "window": q.window, "since": q.since.isoformat() if q.since else None,
             "used": q.used, "left": q.left}
            for q in report.quotas
        ],
    }


def _ms_or_none(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# -- the pages -------------------------------------------------------------------------------

_SUCCESS_COLOUR = "#2e7d32"
_ERROR_COLOUR = "#c62828"
_P50_COLOUR = "#1565c0"
_P95_COLOUR = "#ef6c00"


def _query_of(
    request: Request, host: PortalHost, applications: Sequence[Application]
) -> UsageQuery:
    """The query of this request; a repeated parameter is refused like a bad one."""
    params: dict[str, str] = {}
    for name in PARAMETERS:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise UsageQueryError(400, name, "the parameter is repeated.")
        if values:
            params[name] = values[0]
    return parse_usage_query(
        params, today=day_of(host.clock()), applications=applications, apis=host.apis
    )


def _charts(report: UsageReport) -> tuple[Markup, Markup]:
    labels = [day.strftime("%m-%d") for day in report.query.days]
    daily = report.daily
    calls = stacked_bars(
        "Calls per day",
        labels,
        [Series("successful", [d.successes for d in daily], _SUCCESS_COLOUR),
         Series("errors", [d.errors for d in daily], _ERROR_COLOUR)],
    )
    latency = line_chart(
        "Latency per day (ms)",
        labels,
        [Series("p50", [None if d.p50 is None else d.p50 * 1000 for d in daily], _P50_COLOUR),
         Series("p95", [None if d.p95 is None else d.p95 * 1000 for d in daily], _P95_COLOUR)],
        unit=" ms",
    )
    return calls, latency


def build_usage_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard
) -> APIRouter:
    """``/portal/usage`` (the page), ``/portal/usage.csv`` and ``/portal/usage.json``: the
    signed-in developer's organisation's applications only, filtered by ``application``,
    ``api``, ``from`` and ``to``. A bad parameter is a 400 naming it; an application the
    organisation does not own is a 404, the same as one that does not exist.

    The handlers are coroutines: they run on the event loop, where the gateway's pending
    statistics live (:meth:`CallStatistics.tallies` reads them there).
    """
    statistics = host.statistics if host.statistics is not None else CallStatistics(
        host.db, host.clock
    )
    router = APIRouter(prefix="/portal", include_in_schema=False)

    def report_for(request: Request) -> UsageReport:
        developer = guard.require(request)
        applications = accounts.applications(developer.org_id)
        query = _query_of(request, host, applications)
        return usage_report(statistics, host.plans, applications, query, now=host.clock(),
                            apis=host.apis)

    @router.get("/usage")
    async def usage_page(request: Request) -> Response:
        try:
            report = report_for(request)
        except UsageQueryError as error:
            return guard.page(request, "portal_problem.html", {
                "heading": "Usage", "status": error.status,
                "message": f"{error.parameter}: {error.message}",
            }, status_code=error.status)
        calls_chart, latency_chart = _charts(report)
        link = urlencode(report.query.params())
        return guard.page(request, "usage.html", {
            "heading": "Usage",
            "report": report,
            "apis": host.apis,
            "calls_chart": calls_chart,
            "latency_chart": latency_chart,
            "csv_url": f"/portal/usage.csv?{link}",
            "json_url": f"/portal/usage.json?{link}",
            "max_days": MAX_DAYS,
        })

    @router.get("/usage.csv")
    async def usage_csv_file(request: Request) -> Response:
        try:
            report = report_for(request)
        except UsageQueryError as error:
            return PlainTextResponse(f"{error.parameter}: {error.message}\n",
                                     status_code=error.status, headers=SECURITY_HEADERS)
        disposition = f'attachment; filename="{csv_filename(report)}"'
        return Response(usage_csv(report), media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS, "content-disposition": disposition})

    @router.get("/usage.json")
    async def usage_json_file(request: Request) -> Response:
        try:
            report = report_for(request)
        except UsageQueryError as error:
            code = "NOT_FOUND" if error.status == 404 else "INVALID_ARGUMENT"
            return JSONResponse(
                {"status": error.status, "code": code,
                 "message": f"{error.parameter}: {error.message}"},
                status_code=error.status, headers=SECURITY_HEADERS,
            )
        return JSONResponse(usage_json(report), headers=SECURITY_HEADERS)

    return router
