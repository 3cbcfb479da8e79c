"""The monthly call limit of a plan, as the analytics reads it, and what changed of them.

Quota farming and the upsell segment compare an application's calls over the last 30 days
with one number per application and API: the calls a month its plan allows before a limit
that matters to its customer. :func:`monthly_limit` is that number for one plan (the live
monitor and the admin pages both use it); :class:`PlanLimits` follows the operator's plan
store and tells the monitor only the limits that are new or changed, so a tick costs one
read of the subscriptions table, not a plan lookup per application.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from operators.config import Plan, QuotaPeriod

__all__ = ["DAYS_PER_MONTH", "HeldPlans", "PlanLimits", "monthly_limit"]

DAYS_PER_MONTH = 30
"""A daily quota counts this many times in a month (the detectors' 30-day window)."""

Pair = tuple[str, str]


def monthly_limit(plan: Plan) -> int | None:
    """The calls a month under ``plan`` before a limit that matters to its customer: a monthly
    quota, a daily one times :data:`DAYS_PER_MONTH`, else the end of the first price tier;
    None when there is none (minute and hour quotas are rate limits, not an allowance)."""
    quota = plan.quota
    if quota is not None and quota.period is QuotaPeriod.MONTH:
        return quota.limit
    if quota is not None and quota.period is QuotaPeriod.DAY:
        return quota.limit * DAYS_PER_MONTH
    if plan.tiers and plan.tiers[0].up_to is not None:
        return plan.tiers[0].up_to
    return None


class HeldPlans(Protocol):
    """What :class:`PlanLimits` reads of the operator's plan store
    (:class:`operators.gateway.subscriptions.PlanStore` has it)."""

    def plan_for(self, client_id: str, api: str) -> Plan: ...

    def held(self) -> dict[tuple[str, str], str]: ...


class PlanLimits:
    """The monthly limits of the applications' plans, reported as they change.

    :meth:`changes` reads the database (through the plan store): call it off the event loop.
    """

    def __init__(self, plans: HeldPlans) -> None:
        self.plans = plans
        self._held: dict[Pair, str] = {}
        self._known: dict[Pair, int | None] = {}

    def changes(self, pairs: Iterable[Pair]) -> dict[Pair, int | None]:
        """The limit of each of ``pairs`` (application, API) not asked about before, and of
        every pair asked about before whose plan has changed since; None: no limit."""
        held = self.plans.held()
        moved = {p for p in held.keys() | self._held.keys() if held.get(p) != self._held.get(p)}
        self._held = held
        wanted = {p for p in pairs if p not in self._known} | (moved & self._known.keys())
        found: dict[Pair, int | None] = {}
        for client_id, api in sorted(wanted):
            limit = monthly_limit(self.plans.plan_for(client_id, api))
            if self._known.get((client_id, api), -1) != limit:
                found[client_id, api] = limit
            self._known[client_id, api] = limit
        return found
