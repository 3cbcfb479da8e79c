"""The developers of a simulated API business and their applications, living in SimPy time.

Developers arrive as a Poisson process, sign up, create applications and keys, get their
first token after an integration delay (or never), succeed on each API, ramp up, then every
week grow, churn or carry on; near a quota they may move to the next plan. A few are
abusive (enumeration, quota farming), and a few normal applications have their key stolen
(credential theft). Each milestone goes to the analytics as an :class:`Activity` the moment
it happens; the calls themselves are drawn hour by hour by :mod:`sim.business.traffic`.

Memory is bounded by the population (developers, applications, subscriptions, closed plan
periods per month), never by the calls: an application's subscribers are a window into one
shared tuple of numbers, not a set of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import simpy

from operators import Plan
from operators.analytics import Activity, ActivityKind
from operators.analytics.quotas import monthly_limit
from operators.policies import QuotaCounter
from operators.policies.quota import window_bounds, window_index
from sim.business.scenario import BusinessScenario, DiurnalSpec, LognormalDelay
from sim.business.truth import AbuseCase, DeveloperTruth, GroundTruth

if TYPE_CHECKING:
    from operators.config import Quota

__all__ = [
    "NUMBERS",
    "Application",
    "ClosedPeriod",
    "Enumeration",
    "Population",
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
class _Developer:
    developer_id: str
    org_id: str
    role: str
    applications: list[Application] = field(default_factory=list)


class Population:
    """Every developer and application of one run, their SimPy processes and their truth.

    ``record`` receives each :class:`Activity` as it happens (the analytics' intake),
    ``set_quota`` each subscription's quota in calls a month (None: none).
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: BusinessScenario,
        rng: np.random.Generator,
        record: Callable[[Activity], None],
        set_quota: Callable[[str, str, int | None], None],
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.rng = rng
        self.record = record
        self.set_quota = set_quota
        self.epoch = scenario.epoch
        self.truth = GroundTruth()
        self.applications: dict[str, Application] = {}
        self.live: list[Application] = []
        """Applications with traffic (a first success, not stopped), in creation order."""
        self.closed: list[ClosedPeriod] = []
        self.thefts_skipped = 0
        self._developers: dict[str, _Developer] = {}
        self._orgs: list[str] = []
        self._apps_made = 0
        self._sources = 0
        self._apis = list(scenario.apis)
        weights = np.array([scenario.apis[a] for a in self._apis], dtype=float)
        self._api_p = weights / weights.sum()
        self._plans = list(scenario.plan_mix)
        plan_weights = np.array([scenario.plan_mix[p] for p in self._plans], dtype=float)
        self._plan_p = plan_weights / plan_weights.sum()
        self._roles = self._assign_roles()
        env.process(self._arrivals())
        env.process(self._thefts())

    # -- helpers ---------------------------------------------------------------------------

    def _emit(
        self,
        kind: ActivityKind,
        dev: _Developer,
        client_id: str = "",
        api: str = "",
        detail: str = "",
    ) -> None:
        self.record(
            Activity(
                self.epoch + self.env.now,
                kind,
                dev.developer_id,
                dev.org_id,
                client_id,
                api,
                detail,
            )
        )

    def _uniform(self, span: tuple[float, float]) -> float:
        low, high = span
        return low if high <= low else float(self.rng.uniform(low, high))

    def _assign_roles(self) -> dict[int, str]:
        """Which arrivals (by index) are enumerators and quota farmers: drawn among the
        first 70 % of the expected arrivals, so that their abuse fits within the run."""
        abuse = self.scenario.abuse
        kinds = ["enumeration"] * abuse.enumeration.count
        kinds += ["quota_farming"] * abuse.quota_farming.count
        if not kinds:
            return {}
        expected = self.scenario.arrival_rate * self.scenario.arrival_seconds
        pool = max(len(kinds), int(0.7 * expected))
        picks = self.rng.choice(pool, size=len(kinds), replace=False)
        order = self.rng.permutation(len(kinds))
        return {int(i): kinds[int(k)] for i, k in zip(picks, order, strict=True)}

    def _integration_delay(self) -> float:
        spec = self.scenario.developers.integration_delay
        if isinstance(spec, LognormalDelay):
            hours = spec.median_hours * math.exp(spec.sigma * float(self.rng.standard_normal()))
        else:
            hours = float(self.rng.exponential(spec.mean_hours))
        return hours * HOUR

    def _org(self, index: int) -> str:
        if self._orgs and self.rng.random() < self.scenario.developers.team_share:
            recent = self._orgs[-20:]
            return recent[int(self.rng.integers(len(recent)))]
        org = f"org-{index:05d}"
        self._orgs.append(org)
        return org

    def _new_source(self) -> str:
        self._sources += 1
        return f"net-{self._sources:05d}"

    def _choose_apis(self) -> list[str]:
        extra = int(self.rng.poisson(self.scenario.traffic.apis_per_application))
        count = min(len(self._apis), 1 + extra)
        picks = self.rng.choice(len(self._apis), size=count, replace=False, p=self._api_p)
        return [self._apis[int(i)] for i in picks]

    def _new_application(
        self, dev: _Developer, plan_name: str | None = None, apis: list[str] | None = None
    ) -> Application:
        traffic = self.scenario.traffic
        self._apps_made += 1
        client_id = f"app-{self._apps_made:05d}"
        plan = self.scenario.plan(
            plan_name or self._plans[int(self.rng.choice(len(self._plans), p=self._plan_p))]
        )
        chosen = apis or self._choose_apis()
        shares = self.rng.dirichlet(np.full(len(chosen), 1.5)) if len(chosen) > 1 else [1.0]
        shares = sorted((float(s) for s in shares), reverse=True)
        now = self.epoch + self.env.now
        subscriptions = [
            Subscription(api, share, plan, now) for api, share in zip(chosen, shares, strict=True)
        ]
        diurnal = traffic.diurnal
        peak = diurnal.peak_hour + float(self.rng.normal(0, diurnal.peak_spread_hours))
        rate = traffic.calls_per_hour_median * math.exp(
            traffic.calls_per_hour_sigma * float(self.rng.standard_normal())
        )
        pool = traffic.subscribers_median * math.exp(
            traffic.subscribers_sigma * float(self.rng.standard_normal())
        )
        pool_size = int(min(MAX_POOL, max(5, round(pool))))
        sources: tuple[str, ...] = (self._new_source(),)
        if self.rng.random() < 0.3:
            sources += (self._new_source(),)
        app = Application(
            client_id=client_id,
            developer_id=dev.developer_id,
            org_id=dev.org_id,
            created=self.env.now,
            subscriptions=subscriptions,
            rate=rate,
            cycle=weekly_cycle(diurnal, peak % 24),
            pool_offset=int(self.rng.integers(len(NUMBERS) - pool_size + 1)),
            pool_size=pool_size,
            sources=sources,
            error_share=min(0.5, traffic.error_share * float(self.rng.lognormal(0, 0.5))),
            ramp_seconds=traffic.ramp_days * DAY,
            level_since=self.env.now,
            halving=traffic.churn_halving_days * DAY,
            ramp_start=traffic.ramp_start_share,
        )
        self.applications[client_id] = app
        dev.applications.append(app)
        for sub in subscriptions:
            self.quota(client_id, sub.api, plan)
        self._emit("application_created", dev, client_id)
        self._emit("key_generated", dev, client_id)
        return app

    def _first_token(self, dev: _Developer, app: Application) -> None:
        truth = self.truth.developers[dev.developer_id]
        if truth.first_token is None:
            truth.first_token = self.epoch + self.env.now
        self._emit("first_token", dev, app.client_id)

    def _start_api(self, dev: _Developer, app: Application, sub: Subscription) -> None:
        """The first successful call on ``sub``'s API: its traffic flows from now."""
        sub.since = self.env.now
        sub.first_pending = True
        sub.period_start = self.epoch + self.env.now
        if app.ramp_from is None:
            app.ramp_from = self.env.now
            self.live.append(app)
        truth = self.truth.developers[dev.developer_id]
        truth.first_success.setdefault(sub.api, self.epoch + self.env.now)
        self._emit("first_success", dev, app.client_id, sub.api)

    def _integrate(self, dev: _Developer, app: Application, token_delay: float) -> Process:
        """First token after ``token_delay``, the first API minutes later, others in days."""
        yield self.env.timeout(max(0.0, token_delay))
        self._first_token(dev, app)
        delays = [float(self.rng.exponential(0.25 * HOUR))]
        delays += [float(self.rng.exponential(3 * DAY)) for _ in app.subscriptions[1:]]
        pending = sorted(zip(delays, range(len(delays)), strict=True))
        elapsed = 0.0
        for delay, index in pending:
            yield self.env.timeout(delay - elapsed)
            elapsed = delay
            if not app.stopped:
                self._start_api(dev, app, app.subscriptions[index])

    # -- processes -------------------------------------------------------------------------

    def _arrivals(self) -> Process:
        rate = self.scenario.arrival_rate
        horizon = self.scenario.arrival_seconds
        index = 0
        while True:
            gap = float(self.rng.exponential(1 / rate))
            if self.env.now + gap >= horizon:
                return
            yield self.env.timeout(gap)
            role = self._roles.get(index, "normal")
            self.env.process(self._developer(index, role))
            index += 1

    def _developer(self, index: int, role: str) -> Process:
        dev = _Developer(f"dev-{index:05d}", self._org(index), role)
        self._developers[dev.developer_id] = dev
        truth = DeveloperTruth(dev.developer_id, dev.org_id, self.epoch + self.env.now, role)
        self.truth.developers[dev.developer_id] = truth
        self._emit("signed_up", dev)
        if role == "quota_farming":
            yield from self._farm(dev)
            return
        spec = self.scenario.developers
        token_delay = self._integration_delay()
        truth.integration_delay = token_delay
        never = role == "normal" and self.rng.random() < spec.never_integrate
        app_delay = min(
            float(self.rng.exponential(spec.application_delay_hours * HOUR)), token_delay
        )
        yield self.env.timeout(app_delay)
        plan = self.scenario.abuse.enumeration.plan if role == "enumeration" else None
        app = self._new_application(dev, plan)
        if never:
            return
        self.env.process(self._integrate(dev, app, token_delay - app_delay))
        for _ in range(int(self.rng.poisson(spec.extra_applications))):
            self.env.process(self._extra_application(dev))
        if role == "enumeration":
            self.env.process(self._enumerate(dev, app, token_delay - app_delay))
        yield from self._weeks(dev, truth)

    def _extra_application(self, dev: _Developer) -> Process:
        yield self.env.timeout(float(self.rng.exponential(10 * DAY)))
        if any(a.churn_since is not None or a.stopped for a in dev.applications):
            return
        app = self._new_application(dev)
        yield from self._integrate(dev, app, float(self.rng.exponential(2 * HOUR)))

    def _weeks(self, dev: _Developer, truth: DeveloperTruth) -> Process:
        """Every week: grow, start to churn, or carry on (normal and enumerating developers)."""
        traffic = self.scenario.traffic
        while True:
            yield self.env.timeout(WEEK)
            live = [a for a in dev.applications if a.ramp_from is not None and not a.stopped]
            if not live:
                continue
            draw = self.rng.random()
            if dev.role == "normal" and draw < traffic.churn_probability:
                break
            if draw < traffic.churn_probability + traffic.growth_probability:
                for app in live:
                    app.level_from = app.level(self.env.now)
                    app.level_to = app.level_from * traffic.growth_factor
                    app.level_since = self.env.now
        now = self.env.now
        truth.churn_started = self.epoch + now
        for app in dev.applications:
            app.level_to = app.level(now)
            app.churn_since = now
        halvings = math.log2(1 / STOP_LEVEL)
        yield self.env.timeout(halvings * traffic.churn_halving_days * DAY)
        for app in dev.applications:
            self.stop(app)
        truth.churned = self.epoch + self.env.now
        self._emit("deactivated", dev)

    def stop(self, app: Application) -> None:
        """No more traffic from ``app``; its plans end now (no fee from here on)."""
        if app.stopped:
            return
        app.stopped = True
        if app in self.live:
            self.live.remove(app)
        for sub in app.subscriptions:
            if sub.since is not None:
                self.close_period(app, sub, self.epoch + self.env.now)

    def _enumerate(self, dev: _Developer, app: Application, token_delay: float) -> Process:
        spec = self.scenario.abuse.enumeration
        yield self.env.timeout(token_delay + self._uniform(spec.after_days) * DAY)
        end = min(self.scenario.seconds, self.env.now + self._uniform(spec.duration_hours) * HOUR)
        if end - self.env.now < HOUR:
            return
        app.enumeration = Enumeration(
            self.env.now, end, self._uniform(spec.subscribers_per_hour), spec.not_found_share
        )
        app.abusive = True
        self.truth.abuse.append(
            AbuseCase(
                "enumeration",
                app.client_id,
                dev.developer_id,
                (app.client_id,),
                self.epoch + self.env.now,
                self.epoch + end,
            )
        )

    def _farm(self, dev: _Developer) -> Process:
        """Several applications within hours, each filled to the plan's quota every day."""
        spec = self.scenario.abuse.quota_farming
        plan = self.scenario.plan(spec.plan)
        quota = plan.quota
        assert quota is not None
        start, end = window_bounds(
            quota.period, window_index(quota.period, self.epoch + self.env.now)
        )
        per_day = quota.limit * DAY / (end - start)
        low, high = spec.applications
        count = int(self.rng.integers(low, high + 1))
        days = self._uniform(spec.days)
        api = self._apis[int(self.rng.choice(len(self._apis), p=self._api_p))]
        made: list[Application] = []
        second: float | None = None
        offsets = sorted(float(self.rng.uniform(0, spec.within_hours * HOUR)) for _ in range(count))
        truth = self.truth.developers[dev.developer_id]
        truth.integration_delay = offsets[0]
        elapsed = 0.0
        for position, offset in enumerate(offsets):
            yield self.env.timeout(offset - elapsed)
            elapsed = offset
            app = self._new_application(dev, spec.plan, [api])
            app.farming_per_day = per_day * self._uniform(spec.fill)
            app.abusive = True
            made.append(app)
            self._first_token(dev, app)
            self._start_api(dev, app, app.subscriptions[0])
            app.ramp_seconds = 0
            if position == 1:
                second = self.env.now
        start = second if second is not None else self.env.now
        end = min(self.scenario.seconds, start + days * DAY)
        for app in made:
            app.farming_until = end
        self.truth.abuse.append(
            AbuseCase(
                "quota_farming",
                dev.developer_id,
                dev.developer_id,
                tuple(a.client_id for a in made),
                self.epoch + start,
                self.epoch + end,
            )
        )
        yield self.env.timeout(max(0.0, end - self.env.now))
        for app in made:
            self.stop(app)

    def _thefts(self) -> Process:
        """Steal the keys of normal applications with enough history, at drawn days."""
        spec = self.scenario.abuse.credential_theft
        horizon = self.scenario.seconds
        times = sorted(self._uniform(spec.at_day) * DAY for _ in range(spec.count))
        for at in times:
            duration = self._uniform(spec.duration_hours) * HOUR
            at = min(at, horizon - duration - HOUR)
            if at < self.env.now:
                self.thefts_skipped += 1
                continue
            yield self.env.timeout(at - self.env.now)
            self._steal(duration)

    def _steal(self, duration: float) -> None:
        spec = self.scenario.abuse.credential_theft
        now = self.env.now
        eligible = [
            app
            for app in self.live
            if not app.abusive
            and app.churn_since is None
            and app.ramp_from is not None
            and now - app.ramp_from >= spec.min_age_days * DAY
        ]
        if not eligible:
            self.thefts_skipped += 1
            return
        app = eligible[int(self.rng.integers(len(eligible)))]
        odd = self.rng.random() < spec.odd_hours_share
        peak = (self.scenario.traffic.diurnal.peak_hour + 12) % 24
        cycle = (
            weekly_cycle(self.scenario.traffic.diurnal, peak)
            if odd
            else tuple(1.0 for _ in range(168))
        )
        usual = app.rate * app.level(now)
        rate = max(spec.min_calls_per_hour, usual * self._uniform(spec.volume_factor))
        self._sources += 1
        first = int(self.rng.integers(len(NUMBERS) - spec.targets + 1))
        app.theft = Theft(
            source=f"elsewhere-{self._sources:05d}",
            start=now,
            end=now + duration,
            rate=rate,
            cycle=cycle,
            targets=NUMBERS[first : first + spec.targets],
            error_share=spec.error_share,
        )
        app.abusive = True
        self.truth.abuse.append(
            AbuseCase(
                "credential_theft",
                app.client_id,
                app.developer_id,
                (app.client_id,),
                self.epoch + now,
                self.epoch + now + duration,
            )
        )

    # -- plans and bills -------------------------------------------------------------------

    def close_period(self, app: Application, sub: Subscription, at: float) -> None:
        """End ``sub``'s plan period at epoch ``at`` (a plan change, a month's end, the run's)."""
        if at > sub.period_start:
            self.closed.append(
                ClosedPeriod(app.client_id, sub.api, sub.plan, sub.period_start, at, sub.billable)
            )
        sub.period_start = at
        sub.billable = 0

    def upgrade(self, app: Application, sub: Subscription) -> None:
        """Move ``sub`` to the next plan of the scenario's list (its order is the ladder)."""
        names = [p.name for p in self.scenario.plans]
        position = names.index(sub.plan.name)
        if position + 1 >= len(names):
            return
        self.close_period(app, sub, self.epoch + self.env.now)
        sub.plan = self.scenario.plans[position + 1]
        sub.near_days = 0
        self.quota(app.client_id, sub.api, sub.plan)
        dev = self._developers[app.developer_id]
        self._emit("plan_changed", dev, app.client_id, sub.api, sub.plan.name)

    def quota(self, client_id: str, api: str, plan: Plan) -> None:
        """Tell the analytics ``plan``'s monthly limit (its farming detector and upsell segment
        read it), worked out by the live monitor's own :func:`monthly_limit`."""
        self.set_quota(client_id, api, monthly_limit(plan))

    def developer_role(self, developer_id: str) -> str:
        return self._developers[developer_id].role
