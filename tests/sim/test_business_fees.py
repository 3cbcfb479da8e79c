"""The simulated business's monthly fees are what the operator's billing would invoice for
the same applications: each plan's fee from the application's creation (not its first call)
until it stopped, as a live application's runs until its cut-off (``ApplicationTerms``), the
default plan's too, held from the creation for the APIs the application was created for."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from operators.billing import ApplicationTerms, ChargeKind, LineItem, Month, rate_month
from operators.gateway.subscriptions import InMemoryPlans
from sim.business import BusinessWorld, load_business_scenario
from sim.business.applications import ClosedPeriod
from sim.business.revenue import rate_periods

FEES = """\
kind: api_business
name: fees
seed: 11
start: 2026-01-20T00:00:00Z
days: 45
plan_mix: {enterprise: 1}
developers:
  total: 40
  arrival_days: 20
  integration_delay: {distribution: lognormal, median_hours: 48, sigma: 1.0}
traffic:
  churn_probability: 0.6
  churn_halving_days: 1
abuse:
  credential_theft: {count: 0}
  enumeration: {count: 0}
  quota_farming: {count: 0}
"""

Key = tuple[str, str, Month]


def _fees(lines: list[LineItem]) -> Counter[Key]:
    fees: Counter[Key] = Counter()
    for line in lines:
        if line.kind is ChargeKind.MONTHLY_FEE and line.amount:
            fees[line.client_id, line.api, Month.of(line.period_start)] += line.amount
    return fees


def test_a_simulated_applications_fees_are_what_the_operator_would_invoice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fees.yaml"
    path.write_text(FEES, encoding="utf-8")
    scenario = load_business_scenario(path)
    world = BusinessWorld(scenario)
    world.run()
    population, end = world.population, world.now
    periods: dict[tuple[str, str], list[ClosedPeriod]] = defaultdict(list)
    for period in population.closed:
        periods[period.client_id, period.api].append(period)

    now = [0.0]
    plans = InMemoryPlans(scenario.plans, "free", clock=lambda: now[0])
    since: dict[str, float] = {}
    ended: dict[str, float] = {}
    for app in population.applications.values():
        since[app.client_id] = scenario.epoch + app.created
        if app.ended is not None:
            ended[app.client_id] = app.ended
        for sub in app.subscriptions:  # the plan at creation, then each change the sim made
            held = sorted(periods[app.client_id, sub.api], key=lambda p: p.start)
            now[0] = since[app.client_id]
            plans.subscribe(app.client_id, sub.api, held[0].plan.name)
            for before, after in pairwise(held):
                if after.plan.name != before.plan.name:
                    now[0] = after.start
                    plans.subscribe(app.client_id, sub.api, after.plan.name)
    live: list[LineItem] = []
    month = Month.of(scenario.epoch)
    while month.start < end:
        live += rate_month(
            [], plans.history, month, subscribed=plans.held(),
            since=ApplicationTerms(since, ended).since, ended=ended,
            until=end if month.holds(end) else None,
        )  # fmt: skip
        month = month.next()

    simulated = _fees(rate_periods(population.closed))
    assert sum(simulated.values(), Decimal(0)) > 0, "enterprise plans carry a fee"
    assert ended, "some applications stopped, so cut-offs are compared too"
    assert len({key[2] for key in simulated}) >= 2, "the run crosses months' ends"
    assert simulated == _fees(live)


def test_a_default_plans_fee_runs_from_creation_without_a_subscription(tmp_path: Path) -> None:
    """The applications' plan is the operator's default: live, none subscribes to it, each
    holds it for the APIs it was created for (``ApplicationTerms.apis``), and the operator
    invoices the fees the simulation earned, months without calls included."""
    path = tmp_path / "fees.yaml"
    path.write_text(FEES, encoding="utf-8")
    scenario = load_business_scenario(path)
    world = BusinessWorld(scenario)
    world.run()
    population, end = world.population, world.now
    plans = InMemoryPlans(scenario.plans, "enterprise")
    terms = ApplicationTerms(
        {app.client_id: scenario.epoch + app.created
         for app in population.applications.values()},
        {app.client_id: app.ended
         for app in population.applications.values() if app.ended is not None},
        {app.client_id: tuple(sub.api for sub in app.subscriptions)
         for app in population.applications.values()},
    )  # fmt: skip
    assert {p.plan.name for p in population.closed} == {"enterprise"}, "the default throughout"
    live: list[LineItem] = []
    month = Month.of(scenario.epoch)
    while month.start < end:
        live += rate_month(
            [], plans.history, month, subscribed=plans.held(), since=terms.since,
            ended=terms.ended, apis=terms.apis, until=end if month.holds(end) else None,
        )  # fmt: skip
        month = month.next()
    simulated = _fees(rate_periods(population.closed))
    assert sum(simulated.values(), Decimal(0)) > 0
    assert simulated == _fees(live)
