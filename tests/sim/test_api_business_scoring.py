"""The business scoring on hand-made ground truth and alerts: precision, recall, time to
detect, the kind precedence, the threshold sweep, the funnel's truth and churn risk."""

from __future__ import annotations

import pytest

from sim.business.scoring import (
    Flag,
    churn_score,
    confusion,
    funnel_score,
    integration_truth,
    predicted_kinds,
    score_kinds,
    sweep,
)
from sim.business.truth import AbuseCase, DeveloperTruth, GroundTruth

H = 3600.0
DAY = 86400.0
T0 = 1_740_960_000.0  # 2025-03-03 00:00 UTC

OWNERS = {
    "stolen-1": "dev-a",
    "stolen-2": "dev-b",
    "walker": "dev-w",
    "farm-1": "dev-f",
    "farm-2": "dev-f",
    "farm-3": "dev-f",
    "honest-1": "dev-h",
    "honest-2": "dev-i",
}


def _truth() -> GroundTruth:
    truth = GroundTruth()
    truth.abuse = [
        AbuseCase("credential_theft", "stolen-1", "dev-a", ("stolen-1",), T0 + 10 * H, T0 + 20 * H),
        AbuseCase("credential_theft", "stolen-2", "dev-b", ("stolen-2",), T0 + 50 * H, T0 + 60 * H),
        AbuseCase("enumeration", "walker", "dev-w", ("walker",), T0 + 5 * H, T0 + 30 * H),
        AbuseCase(
            "quota_farming", "dev-f", "dev-f", ("farm-1", "farm-2", "farm-3"), T0, T0 + 40 * DAY
        ),
    ]
    return truth


def _alerts() -> list[Flag]:
    return [
        # theft 1 caught 2 h in by a new source, then a volume spike
        Flag("new_source", "stolen-1", "dev-a", T0 + 12 * H, 40.0),
        Flag("volume_spike", "stolen-1", "dev-a", T0 + 13 * H, 30.0),
        # theft 2: only a false alarm before the theft began (not a detection)
        Flag("volume_spike", "stolen-2", "dev-b", T0 + 20 * H, 6.0),
        # the walker: its volume spike is explained by its enumeration alert
        Flag("volume_spike", "walker", "dev-w", T0 + 6 * H, 20.0),
        Flag("enumeration", "walker", "dev-w", T0 + 7 * H, 90.0),
        Flag("error_spike", "walker", "dev-w", T0 + 7 * H, 9.0),
        # the farm, named by the developer 20 days in
        Flag("quota_farming", "farm-1", "dev-f", T0 + 20 * DAY, 7.0),
        # honest applications: one volume spike, one enumeration
        Flag("volume_spike", "honest-1", "dev-h", T0 + 3 * DAY, 5.5),
        Flag("enumeration", "honest-2", "dev-i", T0 + 4 * DAY, 5.2),
    ]


def test_each_flagged_entity_gets_its_most_specific_kind() -> None:
    predicted = predicted_kinds(_alerts(), OWNERS)
    assert predicted == {
        "dev-f": "quota_farming",
        "stolen-1": "credential_theft",
        "stolen-2": "credential_theft",
        "walker": "enumeration",
        "honest-1": "credential_theft",
        "honest-2": "enumeration",
    }


def test_precision_recall_and_time_to_detect_per_kind() -> None:
    scores = score_kinds(_alerts(), _truth(), OWNERS)
    theft = scores["credential_theft"]
    # flagged: stolen-1 (hit), stolen-2 (alert before the theft: a false alarm), honest-1
    assert (theft.flagged, theft.true_positives) == (3, 1)
    assert theft.precision == pytest.approx(1 / 3)
    assert theft.recall == pytest.approx(1 / 2)
    assert theft.time_to_detect_hours == pytest.approx(2.0)
    walk = scores["enumeration"]
    assert (walk.precision, walk.recall) == (0.5, 1.0)
    assert walk.time_to_detect_hours == pytest.approx(2.0)  # its volume spike (1 h) is not one
    farm = scores["quota_farming"]
    assert (farm.precision, farm.recall) == (1.0, 1.0)
    assert farm.time_to_detect_hours == pytest.approx(20 * 24)


def test_time_to_detect_median_and_p90_over_cases() -> None:
    truth = GroundTruth()
    owners = {f"app-{k}": f"dev-{k}" for k in range(5)}
    flags = []
    for k in range(5):
        truth.abuse.append(
            AbuseCase("enumeration", f"app-{k}", f"dev-{k}", (f"app-{k}",), T0, T0 + DAY)
        )
        flags.append(Flag("enumeration", f"app-{k}", f"dev-{k}", T0 + (k + 1) * H))
    walk = score_kinds(flags, truth, owners)["enumeration"]
    assert walk.time_to_detect_hours == pytest.approx(3.0)
    assert walk.time_to_detect_p90_hours == pytest.approx(4.6)
    assert walk.delays_hours == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_a_late_alert_beyond_the_grace_is_no_detection() -> None:
    truth = _truth()
    late = [Flag("enumeration", "walker", "dev-w", T0 + 30 * H + 25 * H)]
    assert score_kinds(late, truth, OWNERS)["enumeration"].recall == 0.0
    assert score_kinds(late, truth, OWNERS, grace=48 * H)["enumeration"].recall == 1.0


def test_no_cases_and_no_flags_give_none_rather_than_zero() -> None:
    scores = score_kinds([], GroundTruth(), {})
    assert all(s.precision is None and s.recall is None for s in scores.values())


def test_the_sweep_replays_the_rules_at_each_threshold() -> None:
    points = {(p.kind, p.threshold): p for p in sweep(_alerts(), _truth(), OWNERS, [5, 10, 50])}
    # at 5 everything counts; at 10 the honest alerts and theft 2's false alarm are gone
    assert points["credential_theft", 5].precision == pytest.approx(1 / 3)
    assert points["credential_theft", 10].precision == 1.0
    assert points["credential_theft", 10].recall == 0.5
    assert points["enumeration", 10].precision == 1.0
    assert points["quota_farming", 10].recall == 0.0  # its score is 7
    assert points["enumeration", 50].recall == 1.0
    assert points["credential_theft", 50].flagged == 0
    assert points["credential_theft", 50].precision is None


def test_confusion_counts_applications_by_truth_and_alert_kind() -> None:
    table = confusion(_alerts(), _truth(), OWNERS, OWNERS)
    assert table["quota_farming"] == {"quota_farming": 3}
    assert table["enumeration"] == {"enumeration": 1, "error_spike": 1, "volume_spike": 1}
    assert table["normal"] == {"enumeration": 1, "volume_spike": 1}
    assert table["credential_theft"] == {"new_source": 1, "volume_spike": 2}


def _developer(name: str, token: float | None, success: float | None) -> DeveloperTruth:
    d = DeveloperTruth(name, "org", T0)
    d.first_token = None if token is None else T0 + token * H
    if success is not None:
        d.first_success["sim-swap"] = T0 + success * H
    return d


def test_the_funnels_truth_follows_the_analytics_definition() -> None:
    truth = GroundTruth()
    for developer in (
        _developer("fast", 2, 3),
        _developer("token-only", 5, None),
        _developer("late-success", 5, 30),
        _developer("late-token", 26, 27),
        _developer("never", None, None),
    ):
        truth.developers[developer.developer_id] = developer
    score = funnel_score(
        truth,
        api="sim-swap",
        window=24 * H,
        now=T0 + 10 * DAY,
        entered=5,
        conversion=0.2,
        token_conversion=0.7,
    )
    assert score.true_entered == 5
    assert score.true_token_conversion == pytest.approx(3 / 5)
    assert score.true_conversion == pytest.approx(1 / 5)
    assert score.error == pytest.approx(0.0)
    assert score.integration_error == pytest.approx(0.1)


def test_the_true_integration_delays() -> None:
    truth = GroundTruth()
    for name, token in (("a", 1), ("b", 3), ("c", 30), ("d", None)):
        truth.developers[name] = _developer(name, token, None)
    real = integration_truth(truth, window=24 * H)
    assert (real.developers, real.integrated) == (4, 3)
    assert real.median_hours == pytest.approx(3.0)
    assert real.share_within_window == pytest.approx(2 / 4)


def test_churn_risk_against_developers_who_really_churned() -> None:
    now = T0 + 70 * DAY
    truth = GroundTruth()
    for name, started in (("declining", 50), ("long-gone", 5), ("too-fresh", 69), ("steady", None)):
        d = DeveloperTruth(name, "org", T0)
        d.churn_started = None if started is None else T0 + started * DAY
        truth.developers[name] = d
    score = churn_score(["declining", "steady", "long-gone"], truth, now=now, churn_weeks=4)
    assert score.flagged == 3
    assert score.true_positives == 2  # declining and long-gone really churned
    assert score.precision == pytest.approx(2 / 3)
    assert score.churning == 1  # only "declining" began 1 to 5 weeks before now
    assert score.recall == 1.0
