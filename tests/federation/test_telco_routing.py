"""Routing rules: their shape as OPG.10 has it, and the tables operators publish."""

from __future__ import annotations

from typing import Any

import pytest

from federation.config import FederationConfig
from federation.telco_routing import build_routing_table, parse_routing_table

STATIC = {"operatorId": "x", "apiRoot": "https://x", "authProviderConfiguration": "https://x/o"}
DYNAMIC = {"authProviderConfiguration": "https://x/o", "telcoFinderUrl": "https://x/tf"}


@pytest.mark.parametrize(
    "rule",
    [
        {"static": STATIC},  # no condition
        {"network": [], "static": STATIC},  # empty condition
        {"network": ["21407"]},  # no action
        {"network": ["21407"], "static": STATIC, "dynamic": DYNAMIC},  # two actions
        {"ipv4": ["10.0.0.0/33"], "static": STATIC},
        {"ipv6": ["10.0.0.0/8"], "static": STATIC},
        {"msisdnPrefix": ["3460"], "static": STATIC},
        {"network": ["214"], "static": STATIC},
        {"network": ["21407"], "static": {"operatorId": "x"}},
        {"network": ["21407"], "static": STATIC, "other": 1},
    ],
)
def test_malformed_rules_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid routing table"):
        parse_routing_table([rule])


def test_well_formed_rules_round_trip() -> None:
    rules = parse_routing_table([
        {"msisdnPrefix": ["+3460"], "ipv4": ["10.34.0.0/16"], "static": STATIC},
        {"network": ["23458"], "dynamic": DYNAMIC},
    ])
    assert [r.wire() for r in rules] == [
        {"ipv4": ["10.34.0.0/16"], "msisdnPrefix": ["+3460"], "static": STATIC},
        {"network": ["23458"], "dynamic": DYNAMIC},
    ]
    assert rules[0].prefix_match("+34601234567") == 5 and rules[0].prefix_match("+33") == 0


def test_tables_follow_portability_and_brands(federation: FederationConfig) -> None:
    es = build_routing_table(federation.operator("telco-es"), federation)
    fr = build_routing_table(federation.operator("telco-fr"), federation)
    gb = build_routing_table(federation.operator("telco-gb"), federation)
    assert es[0].network == ("21407",) and es[0].msisdn_prefix is None
    assert fr[0].msisdn_prefix == ("+3361", "+3362") and fr[0].network is None
    assert gb[0].dynamic is not None and gb[0].static is None
    assert gb[0].dynamic.telco_finder_url == "https://telco-gb.ogsim.test/telco-finder/v1/search"
    assert all(r.static is not None and r.static.operator_id == "telco-fr" for r in fr)
