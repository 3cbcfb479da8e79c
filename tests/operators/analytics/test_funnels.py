"""Funnels over milestones: the window runs from the first step, steps count in order, the
stuck are those whose window has elapsed, the rest are in progress."""

from __future__ import annotations

import pytest

from operators.analytics.engine import Analytics
from operators.analytics.funnels import FunnelStep
from operators.analytics.records import HOUR, Activity

from .feeds import MONDAY

STEPS = [
    FunnelStep("signed_up"),
    FunnelStep("first_token"),
    FunnelStep("first_success", "sim-swap"),
]


def _developer(analytics: Analytics, name: str, **hours: float) -> None:
    """Milestones at ``MONDAY + hours`` (``first_success_<api>`` for per-API successes)."""
    for step, hour in hours.items():
        kind, _, api = step.partition("__")
        analytics.record_activity(
            Activity(MONDAY + hour * HOUR, kind, name, "org", "app-" + name, api.replace("_", "-"))  # type: ignore[arg-type]
        )


@pytest.fixture
def analytics() -> Analytics:
    analytics = Analytics()
    _developer(analytics, "converted", signed_up=0, first_token=1, first_success__sim_swap=2)
    _developer(analytics, "no-call", signed_up=0, first_token=1)
    _developer(analytics, "fresh", signed_up=20, first_token=21)
    _developer(analytics, "slow-token", signed_up=0, first_token=25, first_success__sim_swap=26)
    _developer(analytics, "other-api", signed_up=0, first_token=3, first_success__kyc_match=4)
    _developer(analytics, "late-success", signed_up=0, first_token=1, first_success__sim_swap=30)
    _developer(analytics, "never-signed", first_token=1)
    return analytics


def test_conversion_per_step_within_the_window_from_the_first_step(analytics: Analytics) -> None:
    report = analytics.funnel(STEPS, now=MONDAY + 40 * HOUR)
    assert [(s.name, s.entered) for s in report.steps] == [
        ("signed_up", 6),
        ("first_token", 5),
        ("first_success:sim-swap", 1),
    ]
    assert report.steps[1].conversion == pytest.approx(5 / 6)
    assert report.steps[2].conversion == pytest.approx(1 / 5)
    assert report.steps[2].overall == pytest.approx(1 / 6)
    assert report.window == 24 * HOUR


def test_stuck_once_the_window_has_elapsed_in_progress_before(analytics: Analytics) -> None:
    report = analytics.funnel(STEPS, now=MONDAY + 40 * HOUR)
    assert report.stuck == {
        "signed_up": ["slow-token"],
        "first_token": ["late-success", "no-call", "other-api"],
    }
    assert report.in_progress == {"signed_up": [], "first_token": ["fresh"]}
    later = analytics.funnel(STEPS, now=MONDAY + 50 * HOUR)
    assert later.stuck["first_token"] == ["fresh", "late-success", "no-call", "other-api"]


def test_a_wider_window_and_now_before_a_step(analytics: Analytics) -> None:
    wide = analytics.funnel(STEPS, window=48 * HOUR, now=MONDAY + 100 * HOUR)
    assert [s.entered for s in wide.steps] == [6, 6, 3]
    early = analytics.funnel(STEPS, now=MONDAY + 1.5 * HOUR)
    assert [s.entered for s in early.steps] == [5, 3, 0]  # "fresh" had not signed up yet


def test_steps_count_in_order() -> None:
    analytics = Analytics()
    _developer(analytics, "backwards", signed_up=0, first_token=5, first_success__sim_swap=2)
    report = analytics.funnel(STEPS, now=MONDAY + 100 * HOUR)
    assert [s.entered for s in report.steps] == [1, 1, 0]


def test_bad_funnels_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="first_sucess"):
        FunnelStep("first_sucess")
    with pytest.raises(ValueError, match="window"):
        Analytics().funnel(STEPS, window=0, now=MONDAY)
    with pytest.raises(ValueError, match="at least one step"):
        Analytics().funnel([], now=MONDAY)
