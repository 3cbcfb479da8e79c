"""Small builders shared by the billing tests: a month, events, a fake clock, plans."""

from __future__ import annotations

from decimal import Decimal

from operators.billing import Month
from operators.config import OperatorConfig, Plan, PriceTier, Quota, TierMode, example_operator
from operators.gateway.metering import UsageEvent

MARCH = Month(2025, 3)
"""31 days: 2,678,400 seconds."""
DAY = 86_400.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(client_id: str, correlator: str, at: float, api: str = "sim-swap") -> UsageEvent:
    return UsageEvent(client_id, correlator, api, "checkSimSwap", "x", 0.0, "EUR", 200, at)


def priced_operator(storage: str = ":memory:") -> OperatorConfig:
    """The example operator with a graduated and a volume plan beside the default three."""
    base = example_operator(storage=storage)
    tiers = (
        PriceTier(up_to=5, unit_price=Decimal("0.10"), flat_fee=Decimal("1")),
        PriceTier(up_to=None, unit_price=Decimal("0.05")),
    )
    extra = (
        Plan(name="growth", rate_per_second=50, burst=100, tiers=tiers, monthly_fee=31.0),
        Plan(
            name="bulk",
            rate_per_second=50,
            burst=100,
            quota=Quota(limit=10),
            tiers=tiers,
            tier_mode=TierMode.VOLUME,
        ),
    )
    return base.model_copy(update={"plans": (*base.plans, *extra)})
