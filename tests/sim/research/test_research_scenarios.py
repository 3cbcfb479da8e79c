"""The research scenarios run as they are and pass their own expectations; the sweep plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.engine import run_scenario
from sim.report import settlement
from sim.scenario import load_scenario
from sim.sweep import dimension, load_sweep_file, plan_sweep

RESEARCH = Path(__file__).resolve().parents[3] / "scenarios" / "research"


@pytest.mark.parametrize("name", ["cross_operator", "consent_revocation"])
def test_scenario_passes_its_expectations(name: str) -> None:
    (scenario,) = load_scenario(RESEARCH / f"{name}.yaml")
    result = run_scenario(scenario)
    failed = [(v.label, v.value) for v in result.verdicts if not v.passed]
    assert not failed
    if name == "cross_operator":
        records = settlement(result)
        pairs = {(r["kind"], r["from"], r["to"]) for r in records}
        assert pairs == {
            ("aggregator", "aggregator", "telco-es"),
            ("aggregator", "aggregator", "movil-es"),
            ("aggregator", "aggregator", "telco-pt"),
            ("ported", "telco-es", "movil-es"),
            ("ported", "movil-es", "telco-es"),
        }
        assert all(0 < r["billable_calls"] <= r["operations"] for r in records)
        # Every pair bills fewer calls than it ran (objections to legitimate interest, 404 and
        # 422 answers are not billed); the partition and the distrust cost Portugal and Móvil
        # (ported numbers too) a larger share than Telco España, which had no fault.
        unbilled = {
            (r["from"], r["to"]): 1 - r["billable_calls"] / r["operations"] for r in records
        }
        untouched = unbilled[("aggregator", "telco-es")]
        assert 0 < untouched < 0.1
        for pair in (
            ("aggregator", "telco-pt"),
            ("aggregator", "movil-es"),
            ("telco-es", "movil-es"),
        ):
            assert unbilled[pair] > untouched + 0.05, pair
    else:
        assert result.consent_waves[0]["replication_lag"] > 0
        assert result.consent_totals() == {
            "revoked_consent_refused": result.consent["telco-es"]["refused"],
            "revoked_consent_successes_within_lag": result.consent["telco-es"][
                "successes_within_lag"
            ],
            "revoked_consent_successes_after_lag": 0,
        }
        assert result.consent["telco-es"]["successes_within_lag"] > 0


def test_retry_storm_sweep_file_plans_its_grid() -> None:
    found = load_sweep_file(RESEARCH / "retry_storm_sweep.yaml")
    assert found is not None
    spec, source = found
    dimensions = [dimension(key, values) for key, values in spec.vary.items()]
    plan = plan_sweep(source, dimensions, replications=spec.replications, overrides=spec.set)
    assert len(plan.tasks) == 6 * 4 * 3
    assert dimensions[1].labels[0] == "none"
    assert spec.metric in {e.label for e in plan.variants[0][0].expectations}
