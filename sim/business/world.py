"""One simulated API business run: the population in SimPy time feeding one live analytics.

Every hour the clock draws the hour's usage buckets, hands them to the same
:class:`operators.analytics.Analytics` the operator runs live, and advances it to the hour's
end (closing and scoring the buckets); milestones reach it as they happen. Every day it
settles quotas (near-quota applications may move up a plan) and reports progress; at each
month's first second it closes the plan periods the bill is rated on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from operators import QuotaPeriod
from operators.analytics import Analytics
from operators.billing import Month
from sim.business.applications import DAY, HOUR, Process
from sim.business.population import Population
from sim.business.scenario import BusinessScenario
from sim.business.traffic import HourlyTraffic, HourTotals

__all__ = ["BusinessWorld", "DayRow"]


@dataclass(slots=True)
class DayRow:
    """One simulated day's totals (the daily CSV and the calls plot)."""

    day: int
    calls: int = 0
    successes: int = 0
    errors: int = 0
    throttled: int = 0
    live_applications: int = 0
    abusive: dict[str, int] = field(default_factory=dict)

    def add(self, hour: HourTotals) -> None:
        self.calls += hour.calls
        self.successes += hour.successes
        self.errors += hour.errors
        self.throttled += hour.throttled
        for kind, calls in hour.abusive.items():
            self.abusive[kind] = self.abusive.get(kind, 0) + calls


class BusinessWorld:
    """The run's environment, population, traffic and analytics; :meth:`run` drives it.

    ``analytics`` defaults to a fresh engine with the scenario's settings.
    """

    def __init__(self, scenario: BusinessScenario, analytics: Analytics | None = None) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        seeds = np.random.SeedSequence(scenario.seed).spawn(2)
        self.analytics = analytics or Analytics(scenario.analytics.settings())
        self.population = Population(
            self.env,
            scenario,
            np.random.default_rng(seeds[0]),
            self.analytics.record_activity,
            self.analytics.set_quota,
        )
        self.traffic = HourlyTraffic(self.population, np.random.default_rng(seeds[1]))
        self._upgrades = np.random.default_rng(np.random.SeedSequence(scenario.seed).spawn(3)[2])
        self._upsell = scenario.analytics.settings().upsell_share
        """The share of a quota the analytics calls near (its upsell segment's)."""
        self.days: list[DayRow] = []
        self.calls = 0
        self.buckets = 0
        self._on_day: Callable[[int], None] | None = None
        self._clock = self.env.process(self._hours())

    @property
    def now(self) -> float:
        """Epoch seconds of the simulated present."""
        return self.scenario.epoch + self.env.now

    def run(self, on_day: Callable[[int], None] | None = None) -> None:
        """Simulate the whole scenario; ``on_day(days_done)`` after each simulated day."""
        self._on_day = on_day
        self.env.run(until=self._clock)
        self._close_periods()

    def run_until(self, day: float) -> None:
        """Simulate up to ``day`` days (for tests that look at the state on the way)."""
        self.env.run(until=min(day * DAY, self.scenario.seconds) + 1)

    def _hours(self) -> Process:
        end = self.scenario.seconds
        t = 0.0
        day = DayRow(0)
        while t < end:
            yield self.env.timeout(HOUR)
            buckets, totals = self.traffic.draw(t)
            for bucket in buckets:
                self.analytics.record_usage(bucket)
            self.analytics.advance(self.scenario.epoch + t + HOUR)
            self.calls += totals.calls
            self.buckets += len(buckets)
            day.add(totals)
            t += HOUR
            if t % DAY == 0 or t >= end:
                day.live_applications = len(self.population.live)
                self.days.append(day)
                day = DayRow(len(self.days))
                self._settle_quotas()
                if self._on_day is not None:
                    self._on_day(len(self.days))
            self._roll_month()

    def _settle_quotas(self) -> None:
        """Near-quota subscriptions of normal applications may move up a plan: after two
        days at ``upsell`` of the quota (per day; per month, pro rata of the month)."""
        spec = self.scenario.traffic
        now = self.now
        near = self._upsell
        for app in list(self.population.live):
            if app.abusive:
                continue
            for sub in app.subscriptions:
                quota = sub.plan.quota
                if quota is None or sub.since is None:
                    continue
                limit = quota.limit
                used = limit - sub.quota_counter(quota, now - 1).remaining_at(now - 1)
                if quota.period is QuotaPeriod.MONTH:
                    month = Month.of(now - 1)
                    limit = int(limit * (now - month.start) / month.seconds) or 1
                sub.near_days = sub.near_days + 1 if used >= near * limit else 0
                if sub.near_days >= 2 and self._upgrades.random() < spec.upgrade_probability:
                    self.population.upgrade(app, sub)

    def _roll_month(self) -> None:
        now = self.now
        if Month.of(now).start == now:
            self._close_periods()

    def _close_periods(self) -> None:
        now = self.now
        for app in self.population.applications.values():
            if app.stopped:
                continue
            for sub in app.subscriptions:  # a plan's fee runs before the API's first call
                self.population.close_period(app, sub, now)
