"""The load test's plain parts: shapes, outcomes, tally, answer checks, thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loadtests import answers
from loadtests.federation_view import SubscriberTruth
from loadtests.locust_run import seconds, thresholds
from loadtests.outcomes import Kind, classify
from loadtests.shape_plans import SoakPlan, SpikePlan, StepRampPlan, plan_from_env
from loadtests.tally import Tally, merge

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def truth(**changes: object) -> SubscriberTruth:
    base: dict[str, object] = dict(
        number="+34600000001",
        operator="telco-es",
        role="approves",
        activated_at=NOW - timedelta(days=1000),
        sim_swaps=(NOW - timedelta(days=400),),
        connectivity=("DATA", "SMS"),
        roaming_country=None,
        latitude=40.4,
        longitude=-3.7,
        accuracy=20.0,
        handset="approve",
        handset_delay=0.0,
        opted_out=False,
    )
    base.update(changes)
    return SubscriberTruth(**base)  # type: ignore[arg-type]


def test_step_ramp_adds_users_per_step_then_stops() -> None:
    shape = StepRampPlan(users=5, step_seconds=10, steps=3, spawn_rate=5)
    assert [shape.at(t) for t in (0, 10, 25, 30)] == [(5, 5), (10, 5), (15, 5), None]


def test_spike_is_twenty_times_for_a_minute_arriving_at_once() -> None:
    shape = SpikePlan(users=4, before=30, spike_seconds=60, after=30)
    assert shape.at(10) == (4, 4.0)
    assert shape.at(31) == (80, 80.0) and shape.at(89) == (80, 80.0)
    assert shape.at(100) == (4, 80.0) and shape.at(121) is None


def test_soak_holds_then_stops() -> None:
    shape = SoakPlan(users=20, ramp_seconds=10, hold_seconds=100)
    assert shape.at(50) == (20, 2.0) and shape.at(110) is None


def test_shape_is_chosen_by_environment() -> None:
    assert plan_from_env({}) is None
    chosen = plan_from_env({"OGSIM_SHAPE": "spike", "OGSIM_SHAPE_USERS": "2"})
    assert isinstance(chosen, SpikePlan)
    assert chosen.at(40) == (40, 40.0)
    with pytest.raises(ValueError, match="one of"):
        plan_from_env({"OGSIM_SHAPE": "sawtooth"})


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (200, "", Kind.SUCCESS),
        (429, "Rate limit reached.", Kind.THROTTLED),
        (503, "hlr unavailable: circuit open", Kind.PROTECTIVE),
        (503, "policy unavailable: request buffer full", Kind.PROTECTIVE),
        (503, "data centre madrid of telco-es is unreachable", Kind.DATA_CENTRE_DOWN),
        (503, "hlr unavailable: TIMEOUT", Kind.ERROR),
        (404, "Device identifier not found.", Kind.ERROR),
    ],
)
def test_outcomes(status: int, message: str, kind: Kind) -> None:
    outcome = classify(status, {"status": status, "code": "X", "message": message}, "3")
    assert outcome.kind is kind
    assert outcome.billable is (kind is Kind.SUCCESS)


def test_tally_counts_a_correlator_once_and_merges(tmp_path: Path) -> None:
    one, two = Tally("run1"), Tally("run1")
    key = ("telco-es", "hub", "sim-swap")
    assert one.count(key, "c1", settled=True) and not one.count(key, "c1", settled=True)
    two.count(key, "c2", settled=True)
    Tally("other").write(tmp_path)
    one.write(tmp_path), two.write(tmp_path)
    merged = merge(tmp_path, "run1")
    assert merged.billable[key] == 2 and set(merged.settled["telco-es"]) == {"c1", "c2"}
    two.settled["telco-es"]["c1"] = "sim-swap"
    two.write(tmp_path)
    with pytest.raises(ValueError, match="two processes"):
        merge(tmp_path, "run1")


def test_sim_swap_answers_are_checked_against_records() -> None:
    recent = truth(sim_swaps=(NOW - timedelta(hours=2),))
    assert answers.sim_swap_check(recent, 24, NOW)({"swapped": True}) == []
    assert answers.sim_swap_check(recent, 24, NOW)({"swapped": False})
    old = truth()
    assert answers.sim_swap_check(old, 240, NOW)({"swapped": True})
    edge = truth(sim_swaps=(NOW - timedelta(hours=24, minutes=10),))
    assert answers.sim_swap_check(edge, 24, NOW)({"swapped": True}) == []
    assert (
        answers.sim_swap_date(truth(sim_swaps=()))(
            {"latestSimChange": (NOW - timedelta(days=1000)).isoformat()}
        )
        == []
    )


def test_location_and_device_answers() -> None:
    t = truth(roaming_country="FR", connectivity=("SMS",))
    near, far = answers.area_around(t), answers.area_far_from(t)
    assert answers.location_verification(t, near)({"verificationResult": "TRUE"}) == []
    assert answers.location_verification(t, far)({"verificationResult": "TRUE"})
    assert answers.roaming(t)({"roaming": True, "countryName": ["FR"]}) == []
    assert answers.reachability(t)({"reachable": True, "connectivity": ["DATA"]})


def test_schema_book_finds_wrong_shapes() -> None:
    book = answers.SchemaBook()
    if "sim-swap" not in book.specs:
        pytest.skip(book.schema_source())
    assert book.errors("sim-swap", "checkSimSwap", 200, {"swapped": True}) == []
    assert book.errors("sim-swap", "checkSimSwap", 200, {"swapped": "yes"})


def test_time_spans_and_thresholds() -> None:
    assert seconds("1h30m") == 5400 and seconds("45") == 45 and seconds("20s") == 20
    with pytest.raises(ValueError, match="time span"):
        seconds("soon")
    summary = {"served": {"failureRatio": 0.02, "p95": 250.0}}
    assert thresholds(summary, None, None) == []
    assert len(thresholds(summary, 0.01, 200)) == 2
