"""The analytics overview: revenue of a month, the applications with calls, calls per day.

Revenue is the lines of the month's invoices per application: once a closed month's invoices
are issued, the issued ones (:class:`operators.billing.IssuedInvoices`, frozen at the close,
so a later price change moves neither); before that, rated by the billing code
(:func:`operators.billing.application_invoices`) from the metering's usage events and the plan
history, with each application's creation, end and APIs taken from the portal's applications,
as invoices take them. Calls come from the usage buckets table, the bucket under way included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..analytics.revenue import RevenueRow, revenue_table
from ..analytics.settings import DAY
from ..billing import CustomerKind, Invoice, Month, application_invoices
from .analytics_parameters import date_text, iso, month_param, whole_number
from .analytics_source import AnalyticsSource, Names

__all__ = ["MAX_OVERVIEW_DAYS", "overview_report"]

MAX_OVERVIEW_DAYS = 90


def _revenue_rows(rows: Iterable[RevenueRow], names: Names | None) -> list[dict[str, Any]]:
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


def _invoices(source: AnalyticsSource, month: Month, now: float) -> list[Invoice]:
    """``month``'s invoices per application: as issued once the closed month's are, else
    rated now (an open month, or a closed one not issued yet) without issuing them."""
    host = source.host
    if host.issued is not None and host.issued.closed(month, now):
        issued = host.issued.issued(month, CustomerKind.APPLICATION)
        if issued:
            return issued
    ledger = host.usage
    events = ledger.events(since=month.start, until=month.end) if ledger is not None else []
    terms = source.accounts.terms()  # as the invoices take them: fees between these
    return application_invoices(host.config, host.plans, events, month, now=now, terms=terms)


def _revenue(source: AnalyticsSource, month: Month, now: float, names: Names) -> dict[str, Any]:
    final = now >= month.end
    lines = [line for invoice in _invoices(source, month, now) for line in invoice.lines]
    table = revenue_table(lines, source.accounts.owners())
    return {
        "month": str(month),
        "status": "final" if final else "draft",
        "totals": {currency: str(amount) for currency, amount in table.totals.items()},
        "byApi": _revenue_rows(table.by_api, None),
        "byPlan": _revenue_rows(table.by_plan, None),
        "byOrg": _revenue_rows(table.by_org, names),
    }


def _active(
    source: AnalyticsSource, since: float, until: float, names: Names
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
    month = month_param(params, now)
    days = whole_number(params, "days", 30, 1, MAX_OVERVIEW_DAYS)
    names = Names(source)
    first_day = (math.floor(now / DAY) - days + 1) * DAY
    until = source.current_end(now)
    return {
        "report": "overview",
        "generatedAt": iso(now),
        "days": days,
        "from": date_text(first_day),
        "revenue": _revenue(source, month, now, names),
        "activeApplications": _active(source, first_day, until, names),
        "daily": source.daily(first_day, until, None),
    }
