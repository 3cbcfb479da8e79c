"""The analytics' differential test: one stream of usage, scored live and simulated, must raise
the same alerts.

A small simulated API business (about thirty developers over three weeks, with a stolen key, an
enumerator and a quota farmer) runs as ``ogsim run`` runs it, on the operator's own
:class:`operators.analytics.Analytics`; a tap on that engine keeps, in order, every milestone,
quota, usage bucket and advance the simulation fed it. The same stream is then played into a
live operator (:class:`operators.operator.Operator` on a fake clock) the way the live one gets
it: developers sign up and create their applications through the portal's accounts, plans are
subscribed in the operator's plan store (the one admission and the monitor read), every call of
every bucket goes through the gateway's :class:`~operators.analytics.UsageRecorder` (the
subscriber's number, hashed by the recorder, and a caller address on a network of its own per
simulated source), the batch writers flush at each hour's end and the operator's own
:class:`~operators.analytics.AnalyticsMonitor` ticks ``grace`` seconds after it, reading the
buckets and milestones back from the database and the limits from the plan store.

Then the buckets read back, the alerts, the scores kept for the sweeps and the segments must be
the simulation's: the live run and the simulated one decide by the same code or this fails.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from operators import Operator, example_operator
from operators.analytics import (
    MAX_DISTINCT,
    Activity,
    Alert,
    Analytics,
    AnalyticsMonitor,
    Score,
    UsageBucket,
    monthly_limit,
)
from operators.operator import portal_host
from operators.portal import Developer, DeveloperAccounts, DeveloperPortal
from sim.business import BusinessScenario, BusinessWorld

HOUR = 3600.0
FRAUD = "dpv:FraudPreventionAndDetection"
PASSWORD = "a long enough passphrase 42"

SCENARIO: dict[str, Any] = {
    "kind": "api_business",
    "name": "differential-analytics",
    "seed": 11,
    "days": 21,
    "developers": {"total": 30, "arrival_days": 4, "never_integrate": 0.1},
    "plans": [
        {"name": "free", "rate_per_second": 2, "burst": 5, "quota": {"limit": 300}},
        {
            "name": "pay-as-you-go",
            "rate_per_second": 50,
            "burst": 100,
            "quota": {"limit": 20_000, "period": "month"},
            "price_per_call": 0.01,
        },
        {"name": "enterprise", "rate_per_second": 500, "burst": 1000, "price_per_call": 0.004},
    ],
    "abuse": {
        "credential_theft": {
            "count": 1,
            "at_day": [15, 18],
            "min_age_days": 5,
            "duration_hours": [10, 12],
        },
        "enumeration": {
            "count": 1,
            "after_days": [4, 6],
            "duration_hours": [8, 10],
            "subscribers_per_hour": [500, 700],
        },
        "quota_farming": {
            "count": 1,
            "applications": [3, 3],
            "fill": [1.6, 2.0],
            "days": [30, 30],
        },
    },
}
"""Three weeks: the farm's applications reach 80 % of their 30-day quota in about two. The
free plan's quota is small (300 calls a day) so that the farm stays a few tens of thousands of
calls and normal applications meet it too (throttled calls, upgrades to the next plan)."""

Event = tuple[str, Any]


class TappedAnalytics(Analytics):
    """The simulation's own engine, keeping in order what it was fed (the live replay's
    script); every decision is still the engine's."""

    def __init__(self, scenario: BusinessScenario) -> None:
        super().__init__(scenario.analytics.settings())
        self.fed: list[Event] = []

    def record_activity(self, activity: Activity) -> None:
        self.fed.append(("activity", activity))
        super().record_activity(activity)

    def set_quota(self, client_id: str, api: str, monthly_calls: int | None) -> None:
        self.fed.append(("quota", (client_id, api, monthly_calls)))
        super().set_quota(client_id, api, monthly_calls)

    def record_usage(self, bucket: UsageBucket) -> None:
        self.fed.append(("usage", bucket))
        super().record_usage(bucket)

    def advance(self, now: float) -> list[Alert]:
        self.fed.append(("advance", now))
        return super().advance(now)


class FakeClock:
    """Epoch seconds that move only when the replay says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class LiveOperator:
    """A live operator on a fake clock, and the ids its portal gave the simulation's
    developers, organisations and applications (sim id -> live id)."""

    operator: Operator
    monitor: AnalyticsMonitor
    accounts: DeveloperAccounts
    clock: FakeClock
    world: BusinessWorld
    developers: dict[str, Developer] = field(default_factory=dict)
    orgs: dict[str, str] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    """A caller address per simulated source label (each on a /24 of its own)."""
    limits: dict[tuple[str, str], int | None] = field(default_factory=dict)
    plans_by_limit: dict[int | None, str] = field(default_factory=dict)

    # -- milestones and plans, through the portal and the plan store --------------------------

    def activity(self, activity: Activity) -> None:
        self.clock.now = activity.at
        kind = activity.kind
        if kind == "signed_up":
            self._sign_up(activity.developer_id, activity.org_id)
        elif kind == "application_created":
            self._create_application(activity.client_id, activity.developer_id)
        elif kind == "first_token":  # the token endpoint's hook
            self.operator.activity.first_token(self.clients[activity.client_id])
        elif kind == "plan_changed":  # what the portal's plans form does
            limit = self.limits.pop((activity.client_id, activity.api))
            assert self.plans_by_limit[limit] == activity.detail
            client_id = self.clients[activity.client_id]
            self.operator.gateway.admission.plans.subscribe(
                client_id, activity.api, activity.detail
            )
            application = self.accounts.application(client_id)
            assert application is not None
            self.accounts.plan_changed(application, activity.api, activity.detail)
        elif kind == "deactivated":
            self.accounts.deactivate(self.developers[activity.developer_id].developer_id)
        else:
            # key_generated: create_application notes its own; first_success: the usage
            # recorder notes it at the application's first 2xx, as the gateway does
            assert kind in ("key_generated", "first_success"), kind

    def _sign_up(self, developer_id: str, org_id: str) -> None:
        email = f"{developer_id}@example.com"
        org = self.orgs.get(org_id)
        if org is None:
            developer = self.accounts.sign_up(org_id, email, developer_id, PASSWORD)
            self.orgs[org_id] = developer.org_id
        else:
            inviter = next(m for m in self.accounts.members(org) if m.active)
            code = self.accounts.invite(org, by=inviter.developer_id)
            developer = self.accounts.join(org, email, developer_id, PASSWORD, invitation=code)
        self.developers[developer_id] = developer

    def _create_application(self, client_id: str, developer_id: str) -> None:
        apis = [sub.api for sub in self.world.population.applications[client_id].subscriptions]
        application, _ = self.accounts.create_application(
            self.developers[developer_id], client_id, apis, [FRAUD], None
        )
        self.clients[client_id] = application.client_id
        for api in apis:  # the plan the application starts on, in the operator's plan store
            plan = self.plans_by_limit[self.limits.pop((client_id, api))]
            self.operator.gateway.admission.plans.subscribe(application.client_id, api, plan)

    def quota(self, client_id: str, api: str, limit: int | None) -> None:
        """Noted until the plan is subscribed: a new application's when the portal has made
        it, a change with its ``plan_changed`` milestone (which must name a plan of this
        limit)."""
        self.limits[client_id, api] = limit

    # -- calls, through the gateway's usage recorder -------------------------------------------

    def usage(self, bucket: UsageBucket) -> None:
        """Every call of ``bucket`` recorded as the gateway records an answered call: a
        status per answer, the bucket's subscribers on its first calls, each source's calls
        from its own network. The simulation draws an hour once it is over, after its
        milestones, so the clock steps back to the hour's middle here (only the stamp of a
        ``first_success`` the recorder notes reads it)."""
        self.clock.now = bucket.start + HOUR / 2
        keys = sorted(bucket.subscribers.keys)
        assert len(keys) <= bucket.calls, "more distinct subscribers than calls"
        statuses = [200] * bucket.successes + [404] * bucket.errors + [429] * bucket.throttled
        assert len(statuses) == bucket.calls
        hosts = [
            self._host(source) for source, calls in bucket.sources.items() for _ in range(calls)
        ]
        assert len(hosts) == bucket.calls
        subscribers: list[str | None] = [*keys, *([None] * (bucket.calls - len(keys)))]
        record = self.operator.gateway.usage.record
        client_id = self.clients[bucket.client_id]
        for status, subscriber, host in zip(statuses, subscribers, hosts, strict=True):
            record(client_id, bucket.api, status, subscriber=subscriber, host=host)

    def _host(self, source: str) -> str:
        host = self.hosts.get(source)
        if host is None:
            n = len(self.hosts) + 1
            host = self.hosts[source] = f"10.{n >> 8}.{n & 255}.9"
        return host

    async def advance(self, now: float) -> None:
        """The hour's end: the batch writers write, the monitor ticks ``grace`` later."""
        self.operator.gateway.usage.flush()
        self.operator.activity.flush()
        self.clock.now = now + self.monitor.grace
        await self.monitor.tick()


@dataclass
class Runs:
    """Both runs, and the live ids mapped back to the simulation's."""

    scenario: BusinessScenario
    simulated: TappedAnalytics
    live: LiveOperator
    end: float

    def sim_client(self, live_client: str) -> str:
        return {v: k for k, v in self.live.clients.items()}[live_client]

    def sim_developer(self, live_developer: str) -> str:
        return {d.developer_id: k for k, d in self.live.developers.items()}[live_developer]


def _replay(world: BusinessWorld, fed: list[Event]) -> LiveOperator:
    clock = FakeClock(world.scenario.epoch)
    base = example_operator()
    config = base.model_copy(update={"plans": world.scenario.plans, "default_plan": "free"})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    assert operator.monitor is not None
    accounts = DeveloperPortal.of(portal_host(operator)).accounts

    def owner_of(client_id: str) -> tuple[str, str] | None:  # as the operator's app wires it
        application = accounts.application(client_id)
        return None if application is None else (application.developer_id, application.org_id)

    operator.activity.owner_of = owner_of
    live = LiveOperator(operator, operator.monitor, accounts, clock, world)
    limits = [monthly_limit(plan) for plan in world.scenario.plans]
    assert len(set(limits)) == len(limits), "a plan must be known by its monthly limit"
    live.plans_by_limit = {monthly_limit(p): p.name for p in world.scenario.plans}

    async def play() -> None:
        for what, item in fed:
            if what == "activity":
                live.activity(item)
            elif what == "quota":
                live.quota(*item)
            elif what == "usage":
                live.usage(item)
            else:
                await live.advance(item)

    asyncio.run(play())
    return live


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    scenario = BusinessScenario.model_validate(SCENARIO)
    simulated = TappedAnalytics(scenario)
    world = BusinessWorld(scenario, simulated)
    world.run()
    live = _replay(world, simulated.fed)
    yield Runs(scenario, simulated, live, world.now)
    live.operator.close()


def _alert_key(alert: Alert) -> tuple[str, str, str, float]:
    return (alert.kind, alert.client_id, alert.api, alert.bucket_start)


def test_the_monitor_runs_the_simulations_settings(runs: Runs) -> None:
    assert runs.live.monitor.settings == runs.simulated.settings


def test_every_bucket_reads_back_from_the_database_as_the_simulation_drew_it(runs: Runs) -> None:
    live = runs.live
    networks = {label: f"{host.rpartition('.')[0]}.0/24" for label, host in live.hosts.items()}
    drawn = {(b.client_id, b.api, b.start): b for what, b in runs.simulated.fed if what == "usage"}
    read = live.operator.gateway.usage.read_buckets()
    assert len(read) == len(drawn)
    for bucket in read:
        sim = drawn[runs.sim_client(bucket.client_id), bucket.api, bucket.start]
        assert (bucket.calls, bucket.successes, bucket.errors, bucket.throttled) == (
            sim.calls,
            sim.successes,
            sim.errors,
            sim.throttled,
        )
        assert bucket.subscribers.count == sim.subscribers.count
        assert bucket.sources == {networks[s]: n for s, n in sim.sources.items()}
    assert max(b.subscribers.count for b in drawn.values()) < MAX_DISTINCT


def test_live_and_simulated_raise_the_same_alerts(runs: Runs) -> None:
    simulated = {_alert_key(a): a for a in runs.simulated.alerts}
    live: dict[tuple[str, str, str, float], Alert] = {
        (a.kind, runs.sim_client(a.client_id), a.api, a.bucket_start): a
        for a in runs.live.monitor.raised
    }
    assert sorted(live) == sorted(simulated)
    grace = runs.live.monitor.grace
    for key, sim in simulated.items():
        got = live[key]
        assert (got.score, got.observed, got.baseline) == pytest.approx(
            (sim.score, sim.observed, sim.baseline), rel=1e-9, abs=1e-9
        ), key
        assert runs.sim_developer(got.developer_id) == sim.developer_id
        assert runs.live.orgs[sim.org_id] == got.org_id
        assert 0 <= got.raised_at - sim.raised_at <= grace
    kept = runs.live.monitor.alert_log.read()
    assert sorted(_alert_key(a) for a in kept) == sorted(_alert_key(a) for a in live.values())


def test_the_alerts_name_every_kind_of_abuse_the_simulation_planted(runs: Runs) -> None:
    truth = runs.live.world.population.truth
    cases = {case.kind: case for case in truth.abuse}
    assert sorted(cases) == ["credential_theft", "enumeration", "quota_farming"]
    kinds = {(a.kind, a.client_id) for a in runs.live.monitor.raised}
    mapped = {(kind, runs.sim_client(client)) for kind, client in kinds}
    thief, walker, farm = (cases[k] for k in ("credential_theft", "enumeration", "quota_farming"))
    assert ("new_source", thief.entity) in mapped
    assert ("volume_spike", thief.entity) in mapped
    assert ("enumeration", walker.entity) in mapped
    assert ("quota_farming", farm.clients[0]) in mapped


def test_the_scores_kept_for_the_sweeps_are_the_same(runs: Runs) -> None:
    def keyed(
        scores: Any, mapping: dict[str, str] | None
    ) -> dict[tuple[str, str, str, float], Score]:
        return {
            (s.kind, mapping[s.client_id] if mapping else s.client_id, s.api, s.bucket_start): s
            for s in scores
        }

    back = {v: k for k, v in runs.live.clients.items()}
    simulated = keyed(runs.simulated.scores, None)
    live = keyed(runs.live.monitor.analytics.scores, back)
    assert sorted(live) == sorted(simulated)
    for key, sim in simulated.items():
        assert live[key].score == pytest.approx(sim.score, rel=1e-9, abs=1e-9), key
    assert Counter(k[0] for k in simulated)["quota_farming"] > 0


def test_the_segments_are_the_same(runs: Runs) -> None:
    back = {v: k for k, v in runs.live.clients.items()}
    simulated = runs.simulated.segments(now=runs.end)
    live = runs.live.monitor.analytics.segments(now=runs.end)
    for name in ("churn_risk", "power_users", "upsell", "dormant"):
        sim_entries = sorted((e.client_id, e.api, e.value) for e in getattr(simulated, name))
        live_entries = sorted((back[e.client_id], e.api, e.value) for e in getattr(live, name))
        assert live_entries == sim_entries, name
