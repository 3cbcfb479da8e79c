"""Each shipped scenario passes its own expectations in a shortened run (moved faults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.engine import RunResult, run_scenario
from sim.expectations import recovery_time
from sim.scenario import load_scenario

from .conftest import SCENARIOS


def run_all(path: Path, duration: float, **overrides: object) -> dict[str, RunResult]:
    return {
        s.variant: run_scenario(s)
        for s in load_scenario(path, duration=duration, overrides=dict(overrides))
    }


def failures(result: RunResult) -> list[str]:
    return [f"{v.label}: {v.value}" for v in result.verdicts if not v.passed]


def test_baseline_passes(scenarios: Path) -> None:
    (result,) = run_all(scenarios / "baseline.yaml", 40).values()
    assert failures(result) == []
    assert len(result.keys) > 20  # three operators x several APIs x four applications
    assert {op for op, _, _ in result.keys} == {"telco-es", "telco-fr", "telco-de"}


def test_dc_failover_passes_and_fails_only_during_detection(scenarios: Path) -> None:
    (result,) = run_all(
        scenarios / "dc_failover.yaml",
        120,
        **{"faults.0.at": 30, "faults.0.duration": 50},
    ).values()
    assert failures(result) == []
    # Out of rotation within the detection time, back after the outage.
    moves = [(at, dc, up) for at, _, dc, up in result.balancer_changes]
    assert [(dc, up) for _, dc, up in moves] == [("mad-1", False), ("mad-1", True)]
    assert 30 < moves[0][0] <= 34 and 80 < moves[1][0] <= 84
    failed = [row["t"] for row in result.rows if row["failed"] > 0]
    assert failed and min(failed) > 30 and max(failed) <= 35


@pytest.fixture(scope="module")
def herd() -> dict[str, RunResult]:
    """Both variants once for the module: the spike moved to 40 s and cut to 30 s, and the
    run long enough after it (130 s) to see "no recovery within 2 min" out."""
    return run_all(
        SCENARIOS / "thundering_herd.yaml",
        200,
        **{
            "traffic.applications.herd-app.spikes.0.at": 40,
            "traffic.applications.herd-app.spikes.0.duration": 30,
        },
    )


def test_thundering_herd_variants_pass_their_expectations(herd: dict[str, RunResult]) -> None:
    assert list(herd) == ["unprotected", "protected"]
    for result in herd.values():
        assert failures(result) == [], result.scenario.variant


def test_unprotected_goodput_stays_below_protected_after_the_spike(
    herd: dict[str, RunResult],
) -> None:
    def after_spike(result: RunResult) -> float:
        rows = [row for row in result.rows if row["t"] > 90]
        return sum(row["goodput"] for row in rows) / len(rows)

    unprotected, protected = after_spike(herd["unprotected"]), after_spike(herd["protected"])
    assert unprotected < 0.2 * protected
    # Metastable: the trigger is gone, yet retries keep attempts far above the offered load.
    late = [row for row in herd["unprotected"].rows if row["t"] > 100]
    assert sum(r["attempts"] for r in late) > 2.5 * sum(r["offered"] for r in late)
    event = herd["protected"].events["herd"]
    assert recovery_time(herd["protected"].rows, event, "end", 0.95, 5) <= 10
