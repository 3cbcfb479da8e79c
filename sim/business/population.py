"""The developers of a simulated API business and their applications, living in SimPy time.

Developers arrive as a Poisson process, sign up, create applications and keys, get their
first token after an integration delay (or never), succeed on each API, ramp up, then every
week grow, churn or carry on; near a quota they may move to the next plan. Each milestone goes
to the analytics as an :class:`Activity` the moment it happens; the calls themselves are drawn
hour by hour by :mod:`sim.business.traffic`. The abusive ones (enumeration, quota farming,
stolen keys) are :mod:`sim.business.abusers`; what an application is,
:mod:`sim.business.applications`.

Memory is bounded by the population (developers, applications, subscriptions, closed plan
periods per month), never by the calls: an application's subscribers are a window into one
shared tuple of numbers, not a set of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from operators import Plan
from operators.analytics import Activity, ActivityKind, monthly_limit
from sim.business.abusers import Abusers
from sim.business.applications import (
    DAY,
    HOUR,
    MAX_POOL,
    NUMBERS,
    STOP_LEVEL,
    WEEK,
    Application,
    ClosedPeriod,
    Developer,
    Process,
    Subscription,
    weekly_cycle,
)
from sim.business.scenario import BusinessScenario, LognormalDelay
from sim.business.truth import DeveloperTruth, GroundTruth

__all__ = ["Population"]


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
        self._developers: dict[str, Developer] = {}
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
        self.abusers = Abusers(self)
        env.process(self._arrivals())
        env.process(self.abusers.thefts())

    # -- helpers ---------------------------------------------------------------------------

    def _emit(
        self,
        kind: ActivityKind,
        dev: Developer,
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

    def uniform(self, span: tuple[float, float]) -> float:
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

    def new_source(self, kind: str = "net") -> str:
        """A new source label (``net-00012``); a thief's is ``elsewhere-...`` (one count)."""
        self._sources += 1
        return f"{kind}-{self._sources:05d}"

    def choose_api(self) -> str:
        """One API, by the scenario's weights."""
        return self._apis[int(self.rng.choice(len(self._apis), p=self._api_p))]

    def _choose_apis(self) -> list[str]:
        extra = int(self.rng.poisson(self.scenario.traffic.apis_per_application))
        count = min(len(self._apis), 1 + extra)
        picks = self.rng.choice(len(self._apis), size=count, replace=False, p=self._api_p)
        return [self._apis[int(i)] for i in picks]

    def new_application(
        self, dev: Developer, plan_name: str | None = None, apis: list[str] | None = None
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
        sources: tuple[str, ...] = (self.new_source(),)
        if self.rng.random() < 0.3:
            sources += (self.new_source(),)
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

    def first_token(self, dev: Developer, app: Application) -> None:
        truth = self.truth.developers[dev.developer_id]
        if truth.first_token is None:
            truth.first_token = self.epoch + self.env.now
        self._emit("first_token", dev, app.client_id)

    def start_api(self, dev: Developer, app: Application, sub: Subscription) -> None:
        """The first successful call on ``sub``'s API: its traffic flows from now."""
        sub.since = self.env.now
        sub.first_pending = True
        if app.ramp_from is None:
            app.ramp_from = self.env.now
            self.live.append(app)
        truth = self.truth.developers[dev.developer_id]
        truth.first_success.setdefault(sub.api, self.epoch + self.env.now)
        self._emit("first_success", dev, app.client_id, sub.api)

    def _integrate(self, dev: Developer, app: Application, token_delay: float) -> Process:
        """First token after ``token_delay``, the first API minutes later, others in days."""
        yield self.env.timeout(max(0.0, token_delay))
        self.first_token(dev, app)
        delays = [float(self.rng.exponential(0.25 * HOUR))]
        delays += [float(self.rng.exponential(3 * DAY)) for _ in app.subscriptions[1:]]
        pending = sorted(zip(delays, range(len(delays)), strict=True))
        elapsed = 0.0
        for delay, index in pending:
            yield self.env.timeout(delay - elapsed)
            elapsed = delay
            if not app.stopped:
                self.start_api(dev, app, app.subscriptions[index])

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
        dev = Developer(f"dev-{index:05d}", self._org(index), role)
        self._developers[dev.developer_id] = dev
        truth = DeveloperTruth(dev.developer_id, dev.org_id, self.epoch + self.env.now, role)
        self.truth.developers[dev.developer_id] = truth
        self._emit("signed_up", dev)
        if role == "quota_farming":
            yield from self.abusers.farm(dev)
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
        app = self.new_application(dev, plan)
        if never:
            return
        self.env.process(self._integrate(dev, app, token_delay - app_delay))
        for _ in range(int(self.rng.poisson(spec.extra_applications))):
            self.env.process(self._extra_application(dev))
        if role == "enumeration":
            self.env.process(self.abusers.enumerate(dev, app, token_delay - app_delay))
        yield from self._weeks(dev, truth)

    def _extra_application(self, dev: Developer) -> Process:
        yield self.env.timeout(float(self.rng.exponential(10 * DAY)))
        if any(a.churn_since is not None or a.stopped for a in dev.applications):
            return
        app = self.new_application(dev)
        yield from self._integrate(dev, app, float(self.rng.exponential(2 * HOUR)))

    def _weeks(self, dev: Developer, truth: DeveloperTruth) -> Process:
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
        """No more traffic from ``app``; its plans end now (no fee from here on), as a live
        application's end at its cut-off (:class:`operators.billing.ApplicationTerms`)."""
        if app.stopped:
            return
        app.stopped = True
        app.ended = self.epoch + self.env.now
        if app in self.live:
            self.live.remove(app)
        for sub in app.subscriptions:
            self.close_period(app, sub, self.epoch + self.env.now)

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
