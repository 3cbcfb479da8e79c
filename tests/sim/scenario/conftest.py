"""Fixtures: the shipped scenarios folder and a small scenario written to a temporary file."""

from __future__ import annotations

from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"

SMALL = """\
name: small
seed: 3
duration: 20
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      subscribers: 20
      data_centres:
        mad-1: {}
        mad-2: {}
traffic:
  applications:
    bank:
      plan: enterprise
      purpose: dpv:RequestedServiceProvision
      arrival: {process: poisson, rate: 50}
      apis: {sim-swap.check: 0.7, kyc-match.match: 0.3}
      client:
        timeout: 2.0
        retry: {policy: backoff, max_attempts: 3, base_delay: 0.1, max_delay: 1.0}
    hobby:
      plan: free
      arrival: {process: constant, rate: 4}
      apis: {device-reachability-status: 1.0}
expectations:
  - {metric: availability, application: bank, min: 0.99}
"""


@pytest.fixture
def scenarios() -> Path:
    return SCENARIOS


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path
