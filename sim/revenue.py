"""What a run earned: each operator's billable calls per API and application, rated by the
operator's own billing code (:func:`operators.billing.rate_counted`); prices are never
re-coded here.

Each application holds its scenario plan at every operator offering it (as
:class:`~sim.tiers.operator.SimOperator` subscribes it); calls are counted per operation
table API (``sim-swap.check`` and ``sim-swap.retrieve-date`` are both ``sim-swap`` calls, one
subscription, one tier count). The run is one plan period from the scenario's ``start`` for
``duration`` seconds: the monthly fee is prorated for those seconds (to the end of the month
``start`` falls in) and every call counts in that month. Calls through the aggregator count
for the operator that served them and are rated under the application's plan there (the
simulation's gateway admits them under the application's own client).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from operators import Plan, default_plans
from operators.billing import ChargeKind, amount_text, rate_counted
from operators.camara import WORKLOADS, operation_named
from sim.results import RunResult

__all__ = ["revenue", "revenue_totals"]


def _plan(result: RunResult, operator: str, application: str) -> Plan | None:
    spec = result.scenario.topology.operators[operator]
    offered = spec.policies.throttling.plans or default_plans()
    wanted = result.scenario.traffic.applications[application].plan
    return next((plan for plan in offered if plan.name == wanted), None)


def revenue(result: RunResult) -> list[dict[str, Any]]:
    """Rows per (operator, API, application): plan, billable calls, fee, usage and total as
    text with the currency's digits; an application whose plan the operator does not offer
    has ``plan`` None and no amounts (it was not priced)."""
    calls: Counter[tuple[str, str, str]] = Counter()
    for (operator, workload, application), stats in result.keys.items():
        api = operation_named(WORKLOADS[workload][0]).api
        calls[operator, api, application] += stats.billable
    start = result.scenario.start.timestamp()
    end = start + result.scenario.duration
    rows: list[dict[str, Any]] = []
    for (operator, api, application), billable in sorted(calls.items()):
        plan = _plan(result, operator, application)
        row: dict[str, Any] = {
            "operator": operator,
            "api": api,
            "application": application,
            "plan": None if plan is None else plan.name,
            "billable_calls": billable,
        }
        if plan is not None:
            lines = rate_counted(application, api, plan, billable, start, end)
            fee = sum((x.amount for x in lines if x.kind is ChargeKind.MONTHLY_FEE), Decimal(0))
            usage = sum((x.amount for x in lines if x.kind is ChargeKind.CALLS), Decimal(0))
            row |= {
                "currency": plan.currency,
                "fees": amount_text(fee, plan.currency),
                "usage": amount_text(usage, plan.currency),
                "total": amount_text(fee + usage, plan.currency),
            }
        rows.append(row)
    return rows


def revenue_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of :func:`revenue` added up per operator and API (priced rows only)."""
    totals: dict[tuple[str, str, str], list[Decimal | int]] = {}
    for row in rows:
        if row["plan"] is None:
            continue
        key = (row["operator"], row["api"], row["currency"])
        entry = totals.setdefault(key, [0, Decimal(0)])
        entry[0] += row["billable_calls"]
        entry[1] += Decimal(row["total"])
    return [
        {
            "operator": operator,
            "api": api,
            "billable_calls": calls,
            "currency": currency,
            "total": amount_text(Decimal(total), currency),
        }
        for (operator, api, currency), (calls, total) in sorted(totals.items())
    ]
