"""A simulated business's calls meet the operator's own decisions: the gateway's quota counter
and windows throttle them, ``is_billable`` says what is billed, and the analytics learns the
monthly limit the live monitor would (``operators.analytics.quotas.monthly_limit``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy

from operators import Plan, Quota, QuotaPeriod
from operators.analytics import Activity, UsageBucket
from sim.business import BusinessScenario, BusinessWorld, load_business_scenario
from sim.business.applications import DAY, HOUR, Subscription
from sim.business.population import Population
from sim.business.revenue import billable_calls
from sim.business.scenario import API_NAMES
from sim.business.traffic import quota_spans

T0 = 1_740_960_000.0  # 2025-03-03 00:00 UTC, a Monday

TIGHT = """\
kind: api_business
name: tight-quota
seed: 3
days: 3
developers:
  total: 40
  arrival_days: 0.5
  never_integrate: 0
  integration_delay: {{distribution: exponential, mean_hours: 1}}
traffic:
  calls_per_hour_median: {rate}
  calls_per_hour_sigma: 0
  growth_probability: 0
  churn_probability: 0
  ramp_days: 0
  ramp_start_share: 1
  apis_per_application: 0
  diurnal: {{amplitude: 0, weekend_factor: 1}}
apis: {{sim-swap: 1}}
plans:
  - {{name: tight, rate_per_second: 100, burst: 100, quota: {{limit: 2, period: minute}}}}
plan_mix: {{tight: 1}}
abuse:
  credential_theft: {{count: 0}}
  enumeration: {{count: 0, plan: tight}}
  quota_farming: {{count: 0, plan: tight}}
"""


def _hour_after(tmp_path: Path, rate: float) -> list[UsageBucket]:
    """The buckets of one hour two days into a run of applications on a 2-a-minute quota."""
    path = tmp_path / "tight.yaml"
    path.write_text(TIGHT.format(rate=rate), encoding="utf-8")
    world = BusinessWorld(load_business_scenario(path))
    world.run_until(2)
    buckets, _ = world.traffic.draw(2 * DAY + HOUR)
    assert len(buckets) > 20
    return buckets


def test_an_hour_meets_one_window_of_a_day_or_month_quota_and_sixty_of_a_minute_one() -> None:
    hour = T0 + 5 * HOUR
    for period in (QuotaPeriod.HOUR, QuotaPeriod.DAY, QuotaPeriod.MONTH):
        assert quota_spans(Quota(limit=10, period=period), hour) == ((hour + HOUR / 2, 1.0),)
    minutes = quota_spans(Quota(limit=10, period=QuotaPeriod.MINUTE), hour)
    assert len(minutes) == 60
    assert minutes[0] == (hour + 30, 1 / 60)
    assert sum(share for _, share in minutes) == pytest.approx(1.0)


def test_a_per_minute_quota_throttles_each_minute_not_sixty_times_it_per_hour(
    tmp_path: Path,
) -> None:
    # About 100 calls an hour against 2 a minute (120 an hour): the hour's total fits sixty
    # minutes' worth, but calls arrive at random and a minute with a third call refuses it.
    buckets = _hour_after(tmp_path, 100)
    within = [b for b in buckets if b.calls <= 120]
    assert within
    assert sum(b.throttled for b in within) > 0
    assert all(b.calls - b.throttled <= 120 for b in buckets)


def test_far_over_a_per_minute_quota_each_minute_admits_its_limit(tmp_path: Path) -> None:
    buckets = _hour_after(tmp_path, 5000)
    assert all(b.calls - b.throttled == 120 for b in buckets)


def test_a_subscriptions_quota_counter_is_renewed_when_its_terms_change() -> None:
    daily = Quota(limit=1000)
    sub = Subscription("sim-swap", 1.0, Plan(name="free", rate_per_second=2, burst=5), T0)
    counter = sub.quota_counter(daily, T0)
    assert counter.try_acquire_at(T0, 400)
    assert sub.quota_counter(Quota(limit=1000), T0 + HOUR) is counter  # equal terms: kept
    assert counter.remaining_at(T0 + HOUR) == 600
    renewed = sub.quota_counter(Quota(limit=5000), T0 + 2 * HOUR)
    assert renewed is not counter
    assert renewed.remaining_at(T0 + 2 * HOUR) == 5000


PLANS = [
    {"name": "free", "rate_per_second": 2, "burst": 5, "quota": {"limit": 1000}},
    {
        "name": "monthly",
        "rate_per_second": 5,
        "burst": 5,
        "quota": {"limit": 50000, "period": "month"},
    },
    {
        "name": "per-minute",
        "rate_per_second": 5,
        "burst": 5,
        "quota": {"limit": 100, "period": "minute"},
    },
    {
        "name": "tiered",
        "rate_per_second": 5,
        "burst": 5,
        "tiers": [{"up_to": 5000}, {"unit_price": "0.01"}],
    },
    {"name": "unlimited", "rate_per_second": 5, "burst": 5},
]


def test_the_analytics_learns_the_monthly_limit_the_live_monitor_would() -> None:
    scenario = BusinessScenario.model_validate(
        {
            "kind": "api_business",
            "name": "limits",
            "days": 1,
            "developers": {"total": 1},
            "plans": PLANS,
            "plan_mix": {"free": 1},
        }
    )
    learnt: dict[str, int | None] = {}

    def set_quota(client_id: str, api: str, limit: int | None) -> None:
        learnt[client_id] = limit

    def record(activity: Activity) -> None:
        del activity

    population = Population(
        simpy.Environment(), scenario, np.random.default_rng(0), record, set_quota
    )
    for plan in scenario.plans:
        population.quota(plan.name, "sim-swap", plan)
    # a day's quota 30 times, a month's as it is, the first tier's end; a per-minute quota
    # is a rate limit, not an allowance (the simulation used to call it 43,200 x 100)
    assert learnt == {
        "free": 30_000,
        "monthly": 50_000,
        "per-minute": None,
        "tiered": 5000,
        "unlimited": None,
    }


@pytest.mark.parametrize("api", API_NAMES)
def test_billable_calls_are_the_successes_the_gateway_bills(api: str) -> None:
    bucket = UsageBucket("app", api, T0, calls=10, successes=5, errors=3, throttled=2)
    assert billable_calls(bucket) == 5


THIN_THEFT = """\
kind: api_business
name: thin-theft
seed: 5
days: 4
developers:
  total: 12
  arrival_days: 0.2
  never_integrate: 0
  integration_delay: {distribution: exponential, mean_hours: 1}
traffic:
  calls_per_hour_median: 4
  calls_per_hour_sigma: 0
  growth_probability: 0
  churn_probability: 0
  ramp_days: 0
  ramp_start_share: 1
  apis_per_application: 0
apis: {sim-swap: 1}
abuse:
  credential_theft:
    count: 4
    at_day: [1, 1.5]
    min_age_days: 0
    duration_hours: [40, 48]
    volume_factor: [1, 1.5]
    min_calls_per_hour: 0
    targets: 2000
  enumeration: {count: 0}
  quota_farming: {count: 0}
"""


def test_a_bucket_never_names_more_subscribers_than_its_answered_calls(tmp_path: Path) -> None:
    """A thief's few calls an hour over thousands of targets: the draw of how many distinct
    numbers they named is capped by the calls, as one subscriber per call is live."""
    path = tmp_path / "thin.yaml"
    path.write_text(THIN_THEFT, encoding="utf-8")
    world = BusinessWorld(load_business_scenario(path))
    stolen = checked = 0
    for day in (2, 3):
        world.run_until(day)
        for hour in range(24):
            buckets, totals = world.traffic.draw(day * DAY + hour * HOUR)
            stolen += totals.abusive.get("credential_theft", 0)
            for bucket in buckets:
                checked += 1
                assert bucket.subscribers.count <= bucket.calls - bucket.throttled, bucket
    assert stolen > 0 and checked > 100, (stolen, checked)
