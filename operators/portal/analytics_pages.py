"""The operator admin's analytics pages under ``/portal/admin/analytics``.

``/portal/admin/analytics`` (revenue per API, plan and organisation, active applications,
calls per day), ``/funnel``, ``/cohorts``, ``/anomalies``, ``/segments`` and
``/developers/{developer_id}`` (one developer's timeline). Each needs the operator admin
credential (HTTP Basic, as :mod:`operators.portal.admin_pages`), is drawn on the server with
inline SVG charts and fetches nothing, and answers JSON with ``?format=json`` (or ``Accept:
application/json``) and CSV with ``?format=csv``. The data is
:mod:`operators.portal.analytics_reports`' (and the overview's), as CSV by
:mod:`operators.portal.analytics_csv`; a bad parameter is a 400 (an unknown developer or
application a 404) naming it, as a page, a JSON body or a line of text as asked (an unknown
``format`` answers as the ``Accept`` header asks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from markupsafe import Markup

from ..analytics.alerts import ALERT_KINDS
from ..web import add_template_dir
from ..web.pages import SECURITY_HEADERS
from .accounts import DeveloperAccounts
from .analytics_charts import heat_table
from .analytics_csv import report_csv
from .analytics_parameters import AnalyticsQueryError
from .analytics_reports import COHORT_WEEKS, REPORTS, SEGMENTS, Report, developer_report
from .analytics_source import AnalyticsSource
from .charts import Series, line_chart, stacked_bars
from .guard import AdminRequired, PortalGuard
from .host import PortalHost

__all__ = ["FORMATS", "PREFIX", "build_analytics_pages"]

PREFIX = "/portal/admin/analytics"
FORMATS = ("html", "json", "csv")
KIND_COLOURS = {
    "volume_spike": "#c62828",
    "error_spike": "#ef6c00",
    "enumeration": "#6a1b9a",
    "off_hours": "#1565c0",
    "new_source": "#00838f",
    "quota_farming": "#5d4037",
}
_GREEN, _RED, _AMBER, _GREY, _BLUE = "#2e7d32", "#c62828", "#ef6c00", "#b0b0b0", "#1565c0"

add_template_dir(Path(__file__).parent / "templates")


def _params(request: Request) -> dict[str, str]:
    """The query's parameters; a repeated one is refused (which value would count?)."""
    params: dict[str, str] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise AnalyticsQueryError(400, name[:40], "the parameter is repeated.")
        params[name] = values[0]
    return params


def _accepted(request: Request) -> str:
    """JSON when the client accepts JSON and not HTML, else HTML."""
    accept = request.headers.get("accept", "")
    return "json" if "application/json" in accept and "text/html" not in accept else "html"


def _format(request: Request) -> str:
    """``?format=`` if given, else what the ``Accept`` header asks."""
    asked = request.query_params.get("format")
    return _accepted(request) if asked is None else asked.strip().lower()


def _error_answer(
    request: Request, guard: PortalGuard, fmt: str, error: AnalyticsQueryError
) -> Response:
    message = f"{error.parameter}: {error.message}"
    if fmt == "json":
        code = "NOT_FOUND" if error.status == 404 else "INVALID_ARGUMENT"
        return JSONResponse(
            {
                "status": error.status,
                "code": code,
                "parameter": error.parameter,
                "message": message,
            },
            status_code=error.status,
            headers=SECURITY_HEADERS,
        )
    if fmt == "csv":
        return PlainTextResponse(message + "\n", status_code=error.status, headers=SECURITY_HEADERS)
    return guard.page(
        request,
        "portal_problem.html",
        {"heading": "Analytics", "status": error.status, "message": message},
        status_code=error.status,
    )


def _links(path: str, params: Mapping[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in params.items() if k != "format"}
    return {fmt: f"{path}?{urlencode({**kept, 'format': fmt})}" for fmt in ("json", "csv")}


# -- charts ----------------------------------------------------------------------------------


def _short(date: str) -> str:
    return date[5:]


def _overview_charts(report: Report) -> dict[str, Markup]:
    daily = report["daily"]
    labels = [_short(d["date"]) for d in daily]
    calls = stacked_bars(
        "Calls per day",
        labels,
        [
            Series("successful", [d["successes"] for d in daily], _GREEN),
            Series("errors", [d["errors"] for d in daily], _RED),
            Series("throttled", [d["throttled"] for d in daily], _AMBER),
        ],
    )
    active = line_chart(
        "Active applications per day",
        labels,
        [Series("applications", [d["activeApplications"] for d in daily], _BLUE)],
    )
    rows = report["revenue"]["byApi"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    currencies = list(dict.fromkeys(r["currency"] for r in rows))
    palette = (_BLUE, _GREEN, _AMBER, _RED)
    series = [
        Series(
            currency,
            [
                next(
                    (
                        float(r["amount"])
                        for r in rows
                        if r["group"] == g and r["currency"] == currency
                    ),
                    None,
                )
                for g in groups
            ],
            palette[i % len(palette)],
        )
        for i, currency in enumerate(currencies)
    ]
    revenue = stacked_bars(f"Revenue per API, {report['revenue']['month']}", groups, series)
    return {"calls": calls, "active": active, "revenue": revenue}


def _funnel_charts(report: Report) -> dict[str, Markup]:
    steps = report["steps"]
    reached = [s["entered"] for s in steps]
    lost = [0, *(max(0, a - b) for a, b in itertools.pairwise(reached))]
    chart = stacked_bars(
        f"Developers per step ({report['api']}, window {report['windowText']})",
        [s["name"] for s in steps],
        [Series("reached", reached, _GREEN), Series("lost at this step", lost, _GREY)],
    )
    return {"funnel": chart}


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share:.0%}"


def _cohort_charts(report: Report) -> dict[str, Markup]:
    cohorts = report["cohorts"]
    chart = heat_table(
        "Retention by sign-up week (share with a successful call in week k)",
        [f"{c['weekStart']} ({c['size']})" for c in cohorts],
        [f"week {k}" for k in range(report["weeks"])],
        [c["retention"] for c in cohorts],
        [[_percent(r) for r in c["retention"]] for c in cohorts],
    )
    return {"cohorts": chart}


def _anomaly_charts(report: Report) -> dict[str, Markup]:
    days = report["perDay"]
    chart = stacked_bars(
        "Alerts per day",
        [_short(d["date"]) for d in days],
        [
            Series(kind, [d[kind] for d in days], KIND_COLOURS[kind])
            for kind in ALERT_KINDS
            if any(d[kind] for d in days)
        ]
        or [Series("alerts", [0 for _ in days], _GREY)],
    )
    return {"alerts": chart}


def _developer_charts(report: Report) -> dict[str, Markup]:
    daily = report["daily"]
    chart = stacked_bars(
        "Calls per day of this developer's applications",
        [_short(d["date"]) for d in daily],
        [
            Series("successful", [d["successes"] for d in daily], _GREEN),
            Series("errors", [d["errors"] for d in daily], _RED),
            Series("throttled", [d["throttled"] for d in daily], _AMBER),
        ],
    )
    return {"calls": chart}


def _no_charts(report: Report) -> dict[str, Markup]:
    return {}


# -- the router ------------------------------------------------------------------------------


def build_analytics_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard
) -> APIRouter:
    """The analytics pages (a :data:`~operators.portal.router.PageRouterFactory`). A party
    that keeps no analytics records (the aggregator) answers them 404."""
    source = AnalyticsSource.of(host, accounts)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def answer(
        request: Request,
        template: str,
        heading: str,
        make: Callable[[AnalyticsSource, dict[str, str]], Report],
        charts: Callable[[Report], dict[str, Markup]],
        extra: Mapping[str, Any] | None = None,
    ) -> Response:
        fmt = _format(request)
        if not guard.is_admin(request):
            if fmt == "json":
                return JSONResponse(
                    {
                        "status": 401,
                        "code": "UNAUTHENTICATED",
                        "message": "the operator admin credential (HTTP Basic) is required",
                    },
                    status_code=401,
                    headers={**SECURITY_HEADERS, "WWW-Authenticate": 'Basic realm="ogsim-admin"'},
                )
            raise AdminRequired()
        try:
            params = _params(request)
            if fmt not in FORMATS:
                shown = fmt
                fmt = _accepted(request)
                raise AnalyticsQueryError(
                    400, "format", f"{shown[:20]!r} is not one of {', '.join(FORMATS)}."
                )
            if source is None:
                raise AnalyticsQueryError(
                    404,
                    "analytics",
                    f"{host.config.display_name} keeps no analytics records"
                    " of its own (the operators that serve its calls do).",
                )
            report = make(source, params)
        except AnalyticsQueryError as error:
            return _error_answer(request, guard, fmt, error)
        if fmt == "json":
            return JSONResponse(report, headers=SECURITY_HEADERS)
        if fmt == "csv":
            name = f"analytics-{report['report']}.csv"
            return Response(
                report_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={
                    **SECURITY_HEADERS,
                    "content-disposition": f'attachment; filename="{name}"',
                },
            )
        return guard.page(
            request,
            template,
            {
                "heading": heading,
                "report": report,
                "charts": charts(report),
                "query": params,
                "links": _links(request.url.path, params),
                "apis": host.apis,
                "alert_kinds": ALERT_KINDS,
                "segments": SEGMENTS,
                "cohort_weeks": COHORT_WEEKS,
                **(extra or {}),
            },
        )

    @router.get("")
    def overview(request: Request) -> Response:
        return answer(request, "analytics.html", "Analytics", REPORTS["overview"], _overview_charts)

    @router.get("/funnel")
    def funnel(request: Request) -> Response:
        return answer(
            request, "analytics_funnel.html", "Analytics: funnel", REPORTS["funnel"], _funnel_charts
        )

    @router.get("/cohorts")
    def cohorts(request: Request) -> Response:
        return answer(
            request,
            "analytics_cohorts.html",
            "Analytics: retention cohorts",
            REPORTS["cohorts"],
            _cohort_charts,
        )

    @router.get("/anomalies")
    def anomalies(request: Request) -> Response:
        return answer(
            request,
            "analytics_anomalies.html",
            "Analytics: anomalies",
            REPORTS["anomalies"],
            _anomaly_charts,
        )

    @router.get("/segments")
    def segments(request: Request) -> Response:
        return answer(
            request,
            "analytics_segments.html",
            "Analytics: segments",
            REPORTS["segments"],
            _no_charts,
        )

    @router.get("/developers/{developer_id}")
    def developer(request: Request, developer_id: str) -> Response:
        def make(source: AnalyticsSource, params: dict[str, str]) -> Report:
            return developer_report(source, developer_id)

        return answer(
            request, "analytics_developer.html", "Analytics: developer", make, _developer_charts
        )

    return router
