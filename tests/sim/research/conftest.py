"""Fixtures: a small, fast scenario file (one operator, one application, one fault)."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL = """
name: small
description: a tiny world for research-tool tests
seed: 3
duration: 20
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      core:
        sim_data_register:
          name: hlr
          kind: sim_data_register
          servers: 2
          service_time: {distribution: exponential, mean: 0.02}
traffic:
  applications:
    app:
      arrival: {process: poisson, rate: 20}
      apis: {sim-swap.check: 1.0}
faults:
  - {name: slow hlr, kind: backend, operator: telco-es, function: sim_data_register,
     at: 8, duration: 4, faults: {extra_latency: 0.05}}
expectations:
  - {name: availability, metric: availability, min: 0.9}
  - {name: goodput, metric: goodput, min: 5}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path
