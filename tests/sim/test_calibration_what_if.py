"""The calibrated federation's what-ifs: more traffic than live could send, and a site lost,
answered by simulating the fitted tiers (synthetic live steps, so the answers are known)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from operators.gateway.metrics import LATENCY_BUCKETS
from sim.calibration import WhatIf, calibrate
from sim.calibration_fit import histogram_of
from sim.calibration_live import LiveStep, OperatorStep
from sim.scenario import load_scenario

CPU_PER_CALL = 0.004
"""4 ms of the one worker per call: the calibrated gateway serves at most 250 calls/s."""


def _step(rate: float, seconds: float = 10.0) -> LiveStep:
    calls = histogram_of([0.006] * int(rate * seconds), LATENCY_BUCKETS)
    grants = histogram_of([0.003] * 10, LATENCY_BUCKETS)
    operator = OperatorStep(
        "telco-es",
        seconds,
        {("sim-swap", "checkSimSwap"): calls},
        3.0,
        grants,
        CPU_PER_CALL * calls.count,
    )
    return LiveStep(int(rate), seconds, {"telco-es": operator}, {"rps": rate})


Answers = tuple[Path, dict[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Answers:
    out = tmp_path_factory.mktemp("calibration")
    steps = [_step(r) for r in (10.0, 60.0, 150.0)]
    result = calibrate(steps, out, sim_seconds=10.0, what_if=WhatIf(scale=30, seconds=90))
    return out, {row.variant: row.as_json() for row in result.what_if}


def test_every_question_is_a_variant_of_one_scenario_file(answers: Answers) -> None:
    out, rows = answers
    variants = load_scenario(out / "what_if.yaml")
    assert [v.variant for v in variants] == [
        "as-measured",
        "x30-fixed",
        "x30-autoscaled",
        "two-sites-one-lost",
    ]
    assert list(rows) == [v.variant for v in variants]
    written = json.loads((out / "calibration.json").read_text())["what_if"]
    assert [r["variant"] for r in written] == list(rows)
    assert (out / "what-if" / "summary.json").exists()


def test_as_measured_serves_the_light_level(answers: Answers) -> None:
    row = answers[1]["as-measured"]
    assert row["offered_per_second"] == pytest.approx(10.0, rel=0.2)
    assert row["goodput_ratio"] > 0.99
    assert row["replicas_max"] == 1


def test_thirty_times_the_traffic_overwhelms_the_single_replica(answers: Answers) -> None:
    row = answers[1]["x30-fixed"]
    assert row["offered_per_second"] == pytest.approx(300.0, rel=0.1)
    # one worker of 4 ms cannot serve more than 250 calls/s, and waits pile up
    assert row["goodput_per_second"] < 250.0 * 1.05
    assert row["p95_ms"] > 1000
    # what did not get through waited for the one worker until its client gave up
    assert next(iter(row["failures"])) == "CLIENT_TIMEOUT"
    # (the rest of what was not served was still queued when the run ended)
    assert 0 < sum(row["failures"].values()) <= row["offered"] * (1 - row["goodput_ratio"]) + 1


def test_autoscaled_replicas_follow_the_traffic_and_serve_more(answers: Answers) -> None:
    fixed, scaled = answers[1]["x30-fixed"], answers[1]["x30-autoscaled"]
    # 300 calls/s at 4 ms is 1.2 busy workers: two replicas at a 0.6 target
    assert scaled["replicas_max"] >= 2
    assert scaled["goodput_per_second"] > 1.3 * fixed["goodput_per_second"]
    assert scaled["replica_hours"] > fixed["replica_hours"]


def test_a_lost_site_leaves_the_other_serving(answers: Answers) -> None:
    row = answers[1]["two-sites-one-lost"]
    assert row["offered_per_second"] == pytest.approx(150.0, rel=0.1)
    assert row["replicas_max"] == 2
    # calls in flight at the lost site and until the health check takes it out fail;
    # the survivor (150 calls/s at 4 ms: 60 % busy) serves the rest
    assert 0.9 < row["goodput_ratio"] < 1.0
    assert math.isfinite(row["p95_ms"])
