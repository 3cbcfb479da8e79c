"""What a simulated business's population is made of: applications, their subscriptions to
APIs (plan, quota counter, bill), a stolen key or a walk of the numbering plan on them, closed
plan periods, and the weekly cycle their calls follow. Records only; the processes that
create and change them are :mod:`sim.business.population` and :mod:`sim.business.abusers`.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import simpy

from operators import Plan
from operators.policies import QuotaCounter
from sim.business.scenario import DiurnalSpec

if TYPE_CHECKING:
    from operators import Quota

__all__ = [
    "DAY",
    "HOUR",
    "MAX_POOL",
    "NUMBERS",
    "STOP_LEVEL",
    "WEEK",
    "Application",
    "ClosedPeriod",
    "Developer",
    "Enumeration",
    "Process",
    "Subscription",
    "Theft",
    "hour_of_week",
    "weekly_cycle",
]

Process = Generator[simpy.Event, object, None]
"""A SimPy process body."""
DAY = 86400.0
WEEK = 7 * DAY
HOUR = 3600.0
NUMBERS: tuple[str, ...] = tuple(f"+3460{k:07d}" for k in range(8192))
"""Subscribers' numbers; an application's pool is a window into them."""
MAX_POOL = 4000
STOP_LEVEL = 0.02
"""A churning application stops once its traffic is below this share of its level."""


def hour_of_week(epoch: float) -> int:
    """Hours since Monday 00:00 UTC (the epoch fell on a Thursday)."""
    return (int(epoch // HOUR) + 72) % 168


def weekly_cycle(spec: DiurnalSpec, peak_hour: float) -> tuple[float, ...]:
    """Multipliers by hour of week: a cosine day peaking at ``peak_hour`` UTC, weekends at
    ``weekend_factor``, normalised to a weekly mean of 1."""
    norm = (5 + 2 * spec.weekend_factor) / 7
    values = []
    for how in range(168):
        day, hour = divmod(how, 24)
        value = 1 + spec.amplitude * math.cos(2 * math.pi * (hour + 0.5 - peak_hour) / 24)
        values.append(value * (spec.weekend_factor if day >= 5 else 1.0) / norm)
    return tuple(values)


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    """Billable calls of one subscription under one plan within one month."""

    client_id: str
    api: str
    plan: Plan
    start: float
    end: float
    billable: int


@dataclass(slots=True, eq=False)
class Subscription:
    """One application's use of one API: its share of the calls, plan, quota and bill."""

    api: str
    share: float
    plan: Plan
    period_start: float
    since: float | None = None
    """Virtual second of the first success (traffic flows from it); None: not yet."""
    first_pending: bool = False
    counter: QuotaCounter | None = None
    """The gateway's own quota counter for this application and API (None until used)."""
    counted: Quota | None = None
    """The quota ``counter`` counts for: a plan change to other terms starts a new one."""
    near_days: int = 0
    billable: int = 0

    def quota_counter(self, quota: Quota, at: float) -> QuotaCounter:
        """The counter of ``quota`` (the plan's), made at epoch ``at`` when the terms are new,
        as the gateway's counter store keeps one per key and renews it when its terms change."""
        counter = self.counter
        if counter is None or (self.counted is not quota and self.counted != quota):
            counter = self.counter = QuotaCounter(quota.limit, quota.period, quota.window, start=at)
            self.counted = quota
        return counter


@dataclass(slots=True, eq=False)
class Theft:
    """A stolen key in use from ``source``: ``rate`` calls an hour shaped by ``cycle``."""

    source: str
    start: float
    end: float
    rate: float
    cycle: tuple[float, ...]
    targets: tuple[str, ...]
    error_share: float


@dataclass(slots=True, eq=False)
class Enumeration:
    """One key walking the numbering plan: ``rate`` distinct numbers an hour."""

    start: float
    end: float
    rate: float
    not_found_share: float
    next_number: int = 0


@dataclass(slots=True, eq=False)
class Application:
    """An application and how it calls; ``level`` follows growth and churn."""

    client_id: str
    developer_id: str
    org_id: str
    created: float
    subscriptions: list[Subscription]
    rate: float
    cycle: tuple[float, ...]
    pool_offset: int
    pool_size: int
    sources: tuple[str, ...]
    error_share: float
    ramp_seconds: float
    ramp_from: float | None = None
    level_from: float = 1.0
    level_to: float = 1.0
    level_since: float = 0.0
    churn_since: float | None = None
    stopped: bool = False
    ended: float | None = None
    """Epoch second it stopped (its developer churned or was cut off): its fees end there,
    as a live application's at its cut-off."""
    theft: Theft | None = None
    enumeration: Enumeration | None = None
    farming_per_day: float = 0.0
    farming_until: float = math.inf
    abusive: bool = False
    halving: float = 4 * DAY
    """Seconds in which a churning application's traffic halves."""
    ramp_start: float = 0.3
    """Share of the plateau on the first day live."""

    def level(self, t: float) -> float:
        """The growth (or churn) multiplier at virtual second ``t``."""
        if self.churn_since is not None:
            return self.level_to * 0.5 ** ((t - self.churn_since) / self.halving)
        progress = min(1.0, max(0.0, (t - self.level_since) / WEEK))
        return self.level_from + (self.level_to - self.level_from) * progress

    def ramp(self, t: float) -> float:
        if self.ramp_from is None or t < self.ramp_from:
            return 0.0
        if self.ramp_seconds <= 0:
            return 1.0
        progress = (t - self.ramp_from) / self.ramp_seconds
        return min(1.0, self.ramp_start + (1 - self.ramp_start) * progress)


@dataclass(slots=True)
class Developer:
    """A developer (its organisation and role: normal, enumeration, quota_farming) and the
    applications it made."""

    developer_id: str
    org_id: str
    role: str
    applications: list[Application] = field(default_factory=list)
