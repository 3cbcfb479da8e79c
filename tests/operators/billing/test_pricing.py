"""Prices of a number of calls under each model, recomputed by hand from Stripe's and Lago's
documented examples (per call, graduated and volume tiers, with and without flat fees)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from operators.billing import price_calls
from operators.config import Plan, PriceTier, TierMode


def _plan(*tiers: tuple[int | None, str, str], mode: TierMode = TierMode.GRADUATED) -> Plan:
    return Plan(
        name="tiered",
        rate_per_second=1,
        burst=1,
        tiers=tuple(
            PriceTier(up_to=up_to, unit_price=Decimal(unit), flat_fee=Decimal(flat))
            for up_to, unit, flat in tiers
        ),
        tier_mode=mode,
    )


LICENCES = ((5, "7", "0"), (10, "6.50", "0"), (None, "6", "0"))
"""Stripe's tiers: 1-5 at 7.00 each, 6-10 at 6.50, 11 and more at 6.00."""


def _total(plan: Plan, calls: int) -> Decimal:
    return sum((charge.amount for charge in price_calls(plan, calls)), Decimal(0))


def test_a_flat_price_per_call_is_calls_times_price() -> None:
    plan = Plan(name="payg", rate_per_second=1, burst=1, price_per_call=0.01)
    (charge,) = price_calls(plan, 123)
    assert (charge.tier, charge.calls, charge.amount) == (None, 123, Decimal("1.23"))


@pytest.mark.parametrize(
    ("calls", "graduated", "volume"),
    [
        (1, "7", "7"),
        (5, "35", "35"),  # the band's last call stays in the band
        (6, "41.50", "39.00"),  # 5 x 7 + 1 x 6.50 | 6 x 6.50
        (7, "48.00", "45.50"),  # Stripe's 7 licences: 35 + 13 | 7 x 6.50
        (12, "79.50", "72"),  # 35 + 32.50 + 12 | 12 x 6
    ],
)
def test_stripes_licence_tiers(calls: int, graduated: str, volume: str) -> None:
    assert _total(_plan(*LICENCES), calls) == Decimal(graduated)
    assert _total(_plan(*LICENCES, mode=TierMode.VOLUME), calls) == Decimal(volume)


def test_graduated_bands_take_consecutive_calls() -> None:
    charges = price_calls(_plan(*LICENCES), 12)
    assert [(c.tier, c.first, c.last, c.offset, c.calls) for c in charges] == [
        (1, 1, 5, 0, 5),
        (2, 6, 10, 5, 5),
        (3, 11, None, 10, 2),
    ]


def test_flat_fees_per_band_reached_or_of_the_band_landed_in() -> None:
    # 1-5: 10.00 for the band; 6-10: 1.00 a call and 5.00 for the band; 11+: 0.50 a call
    tiers = ((5, "0", "10"), (10, "1", "5"), (None, "0.5", "0"))
    assert _total(_plan(*tiers), 8) == Decimal("18")  # 10 + (3 x 1 + 5)
    assert _total(_plan(*tiers, mode=TierMode.VOLUME), 8) == Decimal("13")  # 8 x 1 + 5
    assert _total(_plan(*tiers), 3) == Decimal("10")  # only the first band is reached
    assert _total(_plan(*tiers), 11) == Decimal("20.5")  # 10 + 10 + 0.5
    assert price_calls(_plan(*tiers), 0) == []  # no call reaches a band: no flat fee


def test_lagos_volume_example() -> None:
    tiers = (
        (10_000, "0.0010", "10"),
        (50_000, "0.0008", "10"),
        (100_000, "0.0006", "10"),
        (None, "0.0004", "10"),
    )
    (charge,) = price_calls(_plan(*tiers, mode=TierMode.VOLUME), 65_000)
    assert (charge.tier, charge.amount) == (3, Decimal("49"))  # 65,000 x 0.0006 + 10


def test_lagos_graduated_example() -> None:
    tiers = ((100, "1", "0"), (200, "0.50", "0"), (None, "0.10", "0"))
    assert _total(_plan(*tiers), 250) == Decimal("155")  # 100 + 50 + 5


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        price_calls(_plan(*LICENCES), -1)
