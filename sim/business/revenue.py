"""What a simulated business earned, priced by the operator's own rating code.

Each subscription's billable calls (2xx, as the gateway's ``is_billable`` counts) are kept
per plan period, cut at every plan change and month's end, and priced by
:func:`operators.billing.rate_counted`: the monthly fee prorated for the seconds held, the
calls per call or in tiers counted from the period's start, as an invoice would. The lines go
to :func:`operators.analytics.revenue_table` for totals per API, plan and organisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from operators.analytics import RevenueTable, revenue_table
from operators.billing import LineItem, rate_counted
from sim.business.population import ClosedPeriod

__all__ = ["rate_periods", "revenue"]


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
