"""Revenue from the billing's rated lines: per API, plan and organisation, exact Decimal sums,
each currency kept apart."""

from __future__ import annotations

from decimal import Decimal

import pytest

from operators.analytics.revenue import UNKNOWN_ORG, revenue_table
from operators.billing import LineItem, Month, rate_counted
from operators.config import Plan

MARCH = Month.of(1_709_251_200.0)  # 2024-03-01 00:00 UTC
GROWTH = Plan(name="growth", rate_per_second=10, burst=20, price_per_call=0.002, monthly_fee=31)
PRO_GBP = Plan(
    name="pro-uk",
    rate_per_second=10,
    burst=20,
    price_per_call=0.001,
    monthly_fee=10,
    currency="GBP",
)


def _lines() -> list[LineItem]:
    return [
        *rate_counted("app-a", "sim-swap", GROWTH, 10_000, MARCH.start, MARCH.end),
        *rate_counted("app-a", "kyc-match", GROWTH, 5_000, MARCH.start, MARCH.end),
        *rate_counted("app-b", "sim-swap", GROWTH, 1_000, MARCH.start, MARCH.end),
        *rate_counted("app-uk", "sim-swap", PRO_GBP, 2_000, MARCH.start, MARCH.end),
        *rate_counted("app-stray", "sim-swap", GROWTH, 500, MARCH.start, MARCH.end),
    ]


def test_totals_per_api_plan_and_organisation_per_currency() -> None:
    lines = _lines()
    owners = {"app-a": "acme", "app-b": "acme", "app-uk": "brit"}
    table = revenue_table(lines, owners)
    # growth: 31.00 a subscription-month plus 0.002 a call
    assert table.totals == {"EUR": Decimal("124.00") + Decimal("33.00"), "GBP": Decimal("12.00")}
    by_api = {(r.group, r.currency): (r.amount, r.calls) for r in table.by_api}
    assert by_api == {
        ("sim-swap", "EUR"): (Decimal("51.00") + Decimal("33.00") + Decimal("32.00"), 11_500),
        ("kyc-match", "EUR"): (Decimal("41.00"), 5_000),
        ("sim-swap", "GBP"): (Decimal("12.00"), 2_000),
    }
    by_org = {(r.group, r.currency): r.amount for r in table.by_org}
    assert by_org == {
        ("acme", "EUR"): Decimal("125.00"),
        ("brit", "GBP"): Decimal("12.00"),
        (UNKNOWN_ORG, "EUR"): Decimal("32.00"),
    }
    assert [(r.group, r.currency) for r in table.rows("plan")] == [
        ("growth", "EUR"),
        ("pro-uk", "GBP"),
    ]
    assert sum(r.amount for r in table.by_plan if r.currency == "EUR") == table.totals["EUR"]
    assert all(isinstance(r.amount, Decimal) for r in table.by_api)


def test_rows_are_largest_first_and_a_bad_dimension_is_named() -> None:
    table = revenue_table(_lines(), {})
    amounts = [r.amount for r in table.by_api if r.currency == "EUR"]
    assert amounts == sorted(amounts, reverse=True)
    with pytest.raises(ValueError, match="dimension"):
        table.rows("country")  # type: ignore[arg-type]


def test_no_lines_no_revenue() -> None:
    table = revenue_table([], {})
    assert (table.by_api, table.by_plan, table.by_org, dict(table.totals)) == ((), (), (), {})
