"""Rating: a month of usage events and plan history turned into priced line items.

Pure functions, no I/O and no clock: the same events and history give the same lines, which
is what makes an invoice reproducible and lets the simulation price its billable calls with
the code the operator bills with.

The rules, for one API subscription (an application's calls of one API) in one month:

* Each call is priced under the plan **in force when it was made**: the history's period
  that covers its ``at`` (a change takes effect on the next call, as at admission).
* The **monthly fee** is prorated to the second for each plan period within the month:
  ``fee * seconds held / seconds in the month``, the period's ends taken to the whole second
  (a period from the 10th 12:00:00.6 counts from 12:00:00). A draft stops at ``until``.
* **Tiers count per plan and month**: a plan's bands are filled by the calls made under it
  in the month, in call order, across all the periods it was held. A change to a plan not
  yet held this month starts that plan's bands from zero (a customer who upgrades mid-month
  is not priced on the calls of a plan they left, and the old plan's bands do not carry over
  to prices they were never quoted); a return to a plan already held this month continues
  its count from the calls made under it earlier in the month, so switching away and back
  never starts its bands again (1000 calls cost the same whether the plan was held all month
  or left for a second every 100 calls). A volume plan's calls in the month are all priced
  at the band their total lands in. A band's flat fee is charged once, in the period of its
  first call (volume: of the plan's first call). A new month starts every count from zero.
  A change back to the plan already held is no change at all (one period).
* Every line lists the usage events (``(client_id, correlator)``) it covers, in call order;
  each event of the month is in exactly one line, so a billed call traces to its event.
* Amounts are exact until the line, which is rounded half to even to the currency's minor
  unit (:mod:`operators.billing.money`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from operators.config import Plan
from operators.gateway.metering import UsageEvent
from operators.gateway.subscriptions import PlanPeriod

from .money import decimal_of, round_line
from .months import Month
from .pricing import TierCharge, price_calls

__all__ = [
    "ApplicationTerms",
    "ChargeKind",
    "EventId",
    "LineItem",
    "rate_counted",
    "rate_month",
    "rate_subscription",
]

EventId = tuple[str, str]
"""A usage event's key: ``(client_id, correlator)``."""

History = Callable[[str, str], Sequence[PlanPeriod]]
"""``history(client_id, api)``: a plan store's :meth:`~operators.gateway.PlanStore.history`."""


class ChargeKind(StrEnum):
    MONTHLY_FEE = "monthly_fee"
    CALLS = "calls"


@dataclass(frozen=True)
class LineItem:
    """One priced line: a plan period's prorated fee, or its calls in one band.

    ``quantity`` is calls, or the seconds the plan was held for a fee line; ``unit_price``
    the price of a call, or the full monthly fee; ``amount`` is rounded (the one rounding).
    """

    client_id: str
    api: str
    plan: str
    currency: str
    kind: ChargeKind
    period_start: float
    period_end: float
    quantity: int
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal
    tier: int | None = None
    tier_first: int | None = None
    tier_last: int | None = None
    tier_mode: str | None = None
    month_seconds: int | None = None
    events: tuple[EventId, ...] = ()

    @property
    def description(self) -> str:
        if self.kind is ChargeKind.MONTHLY_FEE:
            return f"{self.plan} monthly fee, {self.quantity:,} s of {self.month_seconds or 0:,} s"
        if self.tier is None:
            return f"{self.api} calls on {self.plan}"
        band = (
            f"{self.tier_first:,}+"
            if self.tier_last is None
            else (f"{self.tier_first:,}-{self.tier_last:,}")
        )
        return f"{self.api} calls on {self.plan}, tier {self.tier} ({band}, {self.tier_mode})"


def _second(at: float) -> int:
    return math.floor(at)


def _fee_line(
    client_id: str, api: str, plan: Plan, start: float, end: float, month: Month
) -> LineItem | None:
    fee = decimal_of(plan.monthly_fee)
    if not fee:
        return None
    held = max(0, _second(end) - _second(start))
    return LineItem(
        client_id,
        api,
        plan.name,
        plan.currency,
        ChargeKind.MONTHLY_FEE,
        start,
        end,
        held,
        fee,
        Decimal(0),
        round_line(fee * held / month.seconds, plan.currency),
        month_seconds=month.seconds,
    )


def _call_line(
    client_id: str,
    api: str,
    plan: Plan,
    start: float,
    end: float,
    charge: TierCharge,
    events: tuple[EventId, ...],
) -> LineItem:
    return LineItem(
        client_id,
        api,
        plan.name,
        plan.currency,
        ChargeKind.CALLS,
        start,
        end,
        charge.calls,
        charge.unit_price,
        charge.flat_fee,
        round_line(charge.amount, plan.currency),
        tier=charge.tier,
        tier_first=charge.first if charge.tier is not None else None,
        tier_last=charge.last,
        tier_mode=plan.tier_mode.value if charge.tier is not None else None,
        events=events,
    )


def _period_lines(
    client_id: str,
    api: str,
    plan: Plan,
    start: float,
    end: float,
    month: Month,
    charges: Sequence[TierCharge],
    events: Sequence[EventId] | None,
) -> list[LineItem]:
    """A period's fee line, then a line per charge of its calls (``offset`` into ``events``)."""
    lines = [fee] if (fee := _fee_line(client_id, api, plan, start, end, month)) else []
    for charge in charges:
        covered = (
            () if events is None else tuple(events[charge.offset : charge.offset + charge.calls])
        )
        lines.append(_call_line(client_id, api, plan, start, end, charge, covered))
    return lines


def _share(charges: Sequence[TierCharge], before: int, calls: int) -> list[TierCharge]:
    """The part of a plan's charges for the month (all its calls, in order) that falls on the
    ``calls`` calls after its first ``before``: one period's. Each charge is cut to those calls,
    its ``offset`` made the period's own, and its flat fee kept only where its first call is."""
    low, high = before, before + calls
    shared: list[TierCharge] = []
    for charge in charges:
        first, last = max(low, charge.offset), min(high, charge.offset + charge.calls)
        if last <= first:
            continue
        flat_fee = charge.flat_fee if first == charge.offset else Decimal(0)
        shared.append(replace(charge, offset=first - low, calls=last - first, flat_fee=flat_fee))
    return shared


def rate_subscription(
    client_id: str,
    api: str,
    events: Iterable[UsageEvent],
    history: Sequence[PlanPeriod],
    month: Month,
    *,
    since: float | None = None,
    until: float | None = None,
) -> list[LineItem]:
    """The lines of ``client_id``'s subscription to ``api`` for ``month``.

    ``events`` may hold other months' events (they are left out) but no other subscription's.
    ``history`` is the store's periods for the pair. ``since`` (the application's creation)
    and ``until`` (now, for a month-to-date draft) narrow the month.
    """
    start = max(month.start, since) if since is not None else month.start
    end = min(month.end, until) if until is not None else month.end
    mine: list[UsageEvent] = []
    for event in events:
        if (event.client_id, event.api) != (client_id, api):
            raise ValueError(
                f"event {event.client_id}/{event.correlator} is of {event.api!r}, not of "
                f"{client_id}/{api}"
            )
        if start <= event.at < end:
            mine.append(event)
    mine.sort(key=lambda e: (e.at, e.correlator))
    spans: list[tuple[Plan, float, float, list[EventId]]] = []
    for period in history:
        low = max(start, period.from_at)
        high = end if period.until is None else min(end, period.until)
        if high <= low:
            continue
        ids = [(e.client_id, e.correlator) for e in mine if low <= e.at < high]
        spans.append((period.plan, low, high, ids))
    # tiers count per plan and month: every period of a plan shares one count of its calls
    totals: Counter[Plan] = Counter()
    for plan, _, _, ids in spans:
        totals[plan] += len(ids)
    month_charges = {plan: price_calls(plan, calls) for plan, calls in totals.items()}
    counted: Counter[Plan] = Counter()
    lines: list[LineItem] = []
    for plan, low, high, ids in spans:
        charges = _share(month_charges[plan], counted[plan], len(ids))
        counted[plan] += len(ids)
        lines.extend(_period_lines(client_id, api, plan, low, high, month, charges, ids))
    return lines


@dataclass(frozen=True)
class ApplicationTerms:
    """When applications began (``since``: no fee before it) and, for those cut off (disabled
    or suspended), ended (``ended``: no fee after it). An application in neither is billed
    for the whole month. ``apis`` are the APIs each application was created for: it holds a
    plan for each from its creation (the default plan until it subscribes to another), so
    that plan's fee is owed in a month without calls too."""

    since: Mapping[str, float] = field(default_factory=dict)
    ended: Mapping[str, float] = field(default_factory=dict)
    apis: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def rate_month(
    events: Iterable[UsageEvent],
    history: History,
    month: Month,
    *,
    subscribed: Iterable[tuple[str, str]] = (),
    since: Mapping[str, float] | None = None,
    until: float | None = None,
    ended: Mapping[str, float] | None = None,
    apis: Mapping[str, Iterable[str]] | None = None,
) -> list[LineItem]:
    """The lines of every API subscription with calls in ``month``, an explicit plan
    (``subscribed``, e.g. the store's ``held()`` keys) or a plan held from the application's
    creation (``apis``: application -> the APIs it was created for, on the default plan
    unless subscribed; :attr:`ApplicationTerms.apis`), ordered by application, API and time.

    ``since`` maps an application to its creation (no fee before it), ``ended`` one cut off
    to when (no fee after it); ``until`` cuts a draft.
    """
    end = month.end if until is None else min(month.end, until)
    grouped: dict[tuple[str, str], list[UsageEvent]] = {}
    for event in events:
        if month.start <= event.at < end:
            grouped.setdefault((event.client_id, event.api), []).append(event)
    for pair in subscribed:
        grouped.setdefault(pair, [])
    for client_id, held in (apis or {}).items():
        for api in held:
            grouped.setdefault((client_id, api), [])
    lines: list[LineItem] = []
    for client_id, api in sorted(grouped):
        lines.extend(
            rate_subscription(
                client_id,
                api,
                grouped[client_id, api],
                history(client_id, api),
                month,
                since=None if since is None else since.get(client_id),
                until=_earlier(until, None if ended is None else ended.get(client_id)),
            )
        )
    return lines


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def rate_counted(
    client_id: str, api: str, plan: Plan, calls: int, start: float, end: float
) -> list[LineItem]:
    """The lines of ``calls`` calls made under ``plan`` held from ``start`` to ``end``, when
    only their number is known (the simulation's billable calls): one plan period, the fee
    prorated for the seconds held within the month ``start`` falls in, and no event ids.
    The calls all count in that month, and the plan's bands from zero: the period is taken to
    be the plan's first in the month (a caller returning to a plan within a month would owe
    the count :func:`rate_subscription` continues; the simulation's plans only move up their
    ladder, and a month's end starts a new count anyway)."""
    month = Month.of(start)
    charges = price_calls(plan, calls)
    return _period_lines(client_id, api, plan, start, min(end, month.end), month, charges, None)
