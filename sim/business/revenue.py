"""What a simulated business earned, priced by the operator's own rating code.

Each subscription's billable calls (:func:`billable_calls`: the gateway's ``is_billable``
asked about each kind of answer a usage bucket counts) are kept per plan period, cut at every
plan change and month's end, and priced by
:func:`operators.billing.rate_counted`: the monthly fee prorated for the seconds held, the
calls per call or in tiers counted from the period's start, as an invoice would. The lines go
to :func:`operators.analytics.revenue_table` for totals per API, plan and organisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from operators.analytics import RevenueTable, UsageBucket, revenue_table
from operators.billing import LineItem, rate_counted
from operators.camara import OPERATIONS, Operation
from operators.gateway import is_billable
from sim.business.applications import ClosedPeriod

__all__ = ["ANSWER_STATUSES", "billable_calls", "rate_periods", "revenue"]

ANSWER_STATUSES = {"errors": 404, "throttled": 429}
"""A status standing for each kind of failed answer a bucket counts (4xx/5xx, 429); a
success is the operation's own status."""


@cache
def _operation(api: str) -> Operation:
    """The operation an application of the simulated business calls on ``api``: its first."""
    return next(op for op in OPERATIONS if op.api == api)


@cache
def _billed(api: str) -> tuple[bool, bool, bool]:
    """Whether the gateway bills a success, an error and a throttled call on ``api``."""
    operation = _operation(api)
    return (
        is_billable(operation, operation.status),
        is_billable(operation, ANSWER_STATUSES["errors"]),
        is_billable(operation, ANSWER_STATUSES["throttled"]),
    )


def billable_calls(bucket: UsageBucket) -> int:
    """The calls of ``bucket`` the gateway bills, by its own rule (``is_billable``)."""
    success, error, throttled = _billed(bucket.api)
    return bucket.successes * success + bucket.errors * error + bucket.throttled * throttled


def rate_periods(periods: Iterable[ClosedPeriod]) -> list[LineItem]:
    """The priced lines of every closed plan period (each within one month)."""
    lines: list[LineItem] = []
    for period in periods:
        lines.extend(
            rate_counted(
                period.client_id, period.api, period.plan, period.billable, period.start, period.end
            )
        )
    return lines


def revenue(periods: Iterable[ClosedPeriod], owners: Mapping[str, str]) -> RevenueTable:
    """Revenue per API, plan and organisation; ``owners`` maps client ids to org ids."""
    return revenue_table(rate_periods(periods), owners)
