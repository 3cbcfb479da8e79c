"""A scenario's revenue per operator and API is the operators' own rating of its billable
calls: the same figures as rating one usage event per billable call against the plan held."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

from operators.billing import Month, rate_subscription
from operators.camara import WORKLOADS, operation_named
from operators.gateway.metering import UsageEvent
from operators.gateway.subscriptions import InMemoryPlans
from sim.engine import run_scenario
from sim.report import summary
from sim.revenue import revenue, revenue_totals
from sim.scenario import load_scenario

SCENARIO = """\
name: priced
seed: 4
duration: 30
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      subscribers: 20
      policies:
        throttling:
          plans:
            - {name: flat, rate_per_second: 500, burst: 1000, price_per_call: 0.004,
               monthly_fee: 2000}
            - name: tiered
              rate_per_second: 500
              burst: 1000
              tier_mode: graduated
              tiers:
                - {up_to: 100, unit_price: "0.05", flat_fee: 1}
                - {unit_price: "0.01"}
traffic:
  applications:
    bank:
      plan: tiered
      purpose: dpv:RequestedServiceProvision
      arrival: {process: poisson, rate: 40}
      apis: {sim-swap.check: 0.5, sim-swap.retrieve-date: 0.3, kyc-match.match: 0.2}
    shop:
      plan: flat
      purpose: dpv:RequestedServiceProvision
      arrival: {process: constant, rate: 5}
      apis: {sim-swap.check: 1.0}
"""


def test_revenue_is_the_rating_of_the_billable_calls(tmp_path: Path) -> None:
    path = tmp_path / "priced.yaml"
    path.write_text(SCENARIO)
    (scenario,) = load_scenario(path)
    result = run_scenario(scenario)
    rows = revenue(result)
    start = scenario.start.timestamp()
    end = start + scenario.duration
    billable: Counter[tuple[str, str, str]] = Counter()
    for (operator, workload, application), stats in result.keys.items():
        billable[operator, operation_named(WORKLOADS[workload][0]).api, application] += (
            stats.billable
        )
    assert [(r["operator"], r["api"], r["application"], r["billable_calls"]) for r in rows] == [
        (*key, calls) for key, calls in sorted(billable.items())
    ]
    assert billable["telco-es", "sim-swap", "bank"] > 100  # past the first band
    plans = result.scenario.topology.operators["telco-es"].policies.throttling.plans
    for row in rows:
        # the live way: a subscription at the start, then one usage event per billable call
        store = InMemoryPlans(plans, "flat", clock=lambda: start)
        store.subscribe(row["application"], row["api"], row["plan"])
        events = [
            UsageEvent(row["application"], f"c{i}", row["api"], "op", row["plan"], 0.0, "EUR",
                       200, start + (end - start) * i / (row["billable_calls"] + 1))
            for i in range(row["billable_calls"])
        ]  # fmt: skip
        lines = rate_subscription(
            row["application"],
            row["api"],
            events,
            store.history(row["application"], row["api"]),
            Month.of(start),
            since=start,
            until=end,
        )
        assert Decimal(row["total"]) == sum((line.amount for line in lines), Decimal(0)), row
    bank = next(r for r in rows if (r["api"], r["application"]) == ("sim-swap", "bank"))
    calls = bank["billable_calls"]  # by hand: 100 x 0.05 + 1.00, then 0.01 each
    assert Decimal(bank["total"]) == Decimal("6.00") + Decimal("0.01") * (calls - 100)
    totals = revenue_totals(rows)
    assert {(t["operator"], t["api"]) for t in totals} == {
        ("telco-es", "sim-swap"),
        ("telco-es", "kyc-match"),
    }
    assert summary([result])["variants"]["default"]["revenue"] == rows
