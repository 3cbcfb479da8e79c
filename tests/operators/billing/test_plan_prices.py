"""A plan's prices in the operator config: tiers validated with a message naming the field,
existing configs (no tiers) unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators import ConfigFileError, OperatorConfig, load_yaml_model
from operators.config import Plan, TierMode, default_plans

HEAD = """id: telco-xx
display_name: X
country: ES
mcc: "214"
mnc: "07"
number_ranges: ["+3460"]
default_plan: tiered
plans:
  - name: tiered
    rate_per_second: 5
    burst: 5
"""


def _refusal(tmp_path: Path, plan_lines: str) -> str:
    path = tmp_path / "operator.yaml"
    path.write_text(HEAD + plan_lines)
    with pytest.raises(ConfigFileError) as refused:
        load_yaml_model(path, OperatorConfig)
    return str(refused.value)


def test_descending_tiers_are_refused_naming_the_field_and_line(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path,
        "    tiers:\n"
        "      - {up_to: 100, unit_price: 0.01}\n"
        "      - {up_to: 50, unit_price: 0.005}\n"
        "      - {unit_price: 0.001}\n",
    )
    assert "operator.yaml:13: plans.0.tiers:" in message
    assert "tiers[1].up_to (50) must be greater than tiers[0].up_to (100)" in message


def test_a_closed_last_tier_and_an_open_middle_one_are_refused(tmp_path: Path) -> None:
    assert "the last tier is open" in _refusal(
        tmp_path, "    tiers:\n      - {up_to: 100, unit_price: 0.01}\n"
    )
    assert "tiers[0].up_to is null" in _refusal(
        tmp_path, "    tiers:\n      - {unit_price: 0.01}\n      - {unit_price: 0.001}\n"
    )


def test_other_bad_prices_are_refused_by_name(tmp_path: Path) -> None:
    assert "price_per_call and tiers" in _refusal(
        tmp_path, "    price_per_call: 0.01\n    tiers:\n      - {unit_price: 0.01}\n"
    )
    assert "plans.0.tier_mode" in _refusal(
        tmp_path, "    tier_mode: stepped\n    tiers:\n      - {unit_price: 0.01}\n"
    )
    assert "plans.0.tiers.0.unit_price" in _refusal(
        tmp_path, "    tiers:\n      - {unit_price: -1}\n"
    )
    assert "plans.0.currency" in _refusal(tmp_path, "    currency: euro\n")


def test_plans_priced_in_two_currencies_are_refused(tmp_path: Path) -> None:
    message = _refusal(
        tmp_path,
        "    currency: EUR\n  - {name: other, rate_per_second: 1, burst: 1, currency: GBP}\n",
    )
    assert "one currency" in message and "EUR, GBP" in message


def test_existing_plans_keep_their_fields_and_defaults(tmp_path: Path) -> None:
    free, payg, enterprise = default_plans()
    assert (payg.price_per_call, enterprise.monthly_fee, free.currency) == (0.01, 2000.0, "EUR")
    assert all(plan.tiers == () and plan.tier_mode is TierMode.GRADUATED for plan in (free, payg))
    path = tmp_path / "operator.yaml"
    path.write_text(
        HEAD
        + "    tier_mode: volume\n    monthly_fee: 9.5\n    tiers:\n"
        + "      - {up_to: 10, unit_price: '0.0006', flat_fee: 1}\n      - {unit_price: 0}\n"
    )
    (plan,) = load_yaml_model(path, OperatorConfig).plans
    assert plan == Plan.model_validate(plan.model_dump(mode="json"))  # a YAML round trip
    assert str(plan.tiers[0].unit_price) == "0.0006"


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("    price_per_call: .inf\n", "plans.0.price_per_call", "finite number"),
        ("    price_per_call: .nan\n", "plans.0.price_per_call", "finite number"),
        ("    price_per_call: 1e27\n", "plans.0.price_per_call", "less than 100000000"),
        ("    monthly_fee: 1e30\n", "plans.0.monthly_fee", "less than 100000000"),
        ("    monthly_fee: .inf\n", "plans.0.monthly_fee", "finite number"),
        ("    price_per_call: 0.0000001\n", "plans.0.price_per_call", "at most 6 digits after"),
        ("    tiers:\n      - {unit_price: 1e30}\n", "plans.0.tiers.0.unit_price", "14 digits"),
        ("    tiers:\n      - {flat_fee: 1e30}\n", "plans.0.tiers.0.flat_fee", "14 digits"),
    ],
)
def test_prices_no_invoice_can_hold_are_refused_naming_the_field_and_line(
    tmp_path: Path, line: str, field: str, reason: str
) -> None:
    """An infinite or huge price (as the rate card's Money: finite, 14 digits, 6 after the
    point) was accepted and ended invoicing in decimal.InvalidOperation (a 500)."""
    message = _refusal(tmp_path, line)
    at = 13 if "tiers" in field else 12  # the price's own line
    assert f"operator.yaml:{at}: {field}:" in message, message
    assert reason in message, message


def test_the_bounds_are_the_rate_cards_and_the_largest_price_allowed_invoices(
    tmp_path: Path,
) -> None:
    from operators.billing import Month, application_invoices
    from operators.gateway.metering import UsageEvent
    from operators.gateway.subscriptions import InMemoryPlans

    assert "less than 100000000" in _refusal(tmp_path, "    monthly_fee: 100000000\n")
    path = tmp_path / "operator.yaml"
    path.write_text(HEAD + "    price_per_call: 99999999.999999\n    monthly_fee: 0.000001\n")
    config = load_yaml_model(path, OperatorConfig)
    (plan,) = config.plans
    assert (plan.price_per_call, plan.monthly_fee) == (99999999.999999, 0.000001)
    month = Month(2025, 3)
    events = [UsageEvent("a", f"c{k}", "sim-swap", "checkSimSwap", "tiered", 0.0, "EUR", 200,
                         month.start + k) for k in range(1000)]  # fmt: skip
    (invoice,) = application_invoices(
        config, InMemoryPlans.of(config), events, month, now=month.end + 7200
    )
    assert invoice.document()["total"] == "100000000000.00"  # 1000 calls; a fee of 0.00
