"""The autoscaler against the HorizontalPodAutoscaler's documented behaviour, on a fake clock.

Each test's docstring states the Kubernetes rule it reproduces (from the HPA documentation's
algorithm details, its "configurable scaling behavior" section and the autoscaling/v2 API
reference), in our words.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from operators.policies import (
    Autoscaler,
    AutoscalerConfig,
    PolicyKind,
    ReplicaSample,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
)
from tests.operators.policies.conftest import FakeClock

LONG_AGO = -1000.0  # replicas started long before the test: ready and past the readiness delay
IMMEDIATE = ScalingRules(stabilization_window=0.0)  # no window, no policy: only the metric


def pool(n: int, value: float | None, started: float = LONG_AGO) -> list[ReplicaSample]:
    return [ReplicaSample(started, value) for _ in range(n)]


def scaler(clock: FakeClock, **settings: object) -> Autoscaler:
    base: dict[str, object] = {
        "target": 100.0,
        "max_replicas": 50,
        "scale_up": IMMEDIATE,
        "scale_down": IMMEDIATE,
    }
    return Autoscaler(AutoscalerConfig.model_validate(base | settings), clock)


def test_desired_is_current_times_metric_over_target_rounded_up(fake_clock: FakeClock) -> None:
    """Kubernetes: desired = ceil(current * current metric / desired metric); a metric at twice
    the target doubles the replicas, at half the target halves them."""
    autoscaler = scaler(fake_clock)
    assert autoscaler.decide(pool(3, 200.0)).desired == 6
    assert autoscaler.decide(pool(3, 50.0)).desired == 2  # ceil(1.5)
    assert autoscaler.decide(pool(4, 130.0)).desired == 6  # ceil(5.2)


def test_no_change_within_the_tolerance(fake_clock: FakeClock) -> None:
    """Kubernetes skips scaling while the ratio of metric to target is within 1 +- tolerance
    (0.1 by default)."""
    autoscaler = scaler(fake_clock)
    assert autoscaler.decide(pool(10, 109.0)).desired == 10
    assert autoscaler.decide(pool(10, 91.0)).desired == 10
    assert autoscaler.decide(pool(10, 111.0)).desired == 12  # ceil(11.1)
    assert scaler(fake_clock, tolerance=0.2).decide(pool(10, 115.0)).desired == 10


def test_min_and_max_replicas_bound_the_result(fake_clock: FakeClock) -> None:
    """The HPA never sets fewer than minReplicas nor more than maxReplicas."""
    autoscaler = scaler(fake_clock, min_replicas=2, max_replicas=8)
    high = autoscaler.decide(pool(4, 500.0))
    assert (high.recommendation, high.desired, high.reason) == (20, 8, "max replicas")
    low = autoscaler.decide(pool(4, 1.0))
    assert (low.desired, low.reason) == (2, "min replicas")


def test_scale_down_waits_for_the_stabilisation_window(fake_clock: FakeClock) -> None:
    """Scale-down is stabilised over 300 s by default: the HPA uses the highest recommendation
    of the window, so a lower load must last the whole window before replicas go."""
    autoscaler = Autoscaler(AutoscalerConfig(target=100.0), fake_clock)
    assert autoscaler.decide(pool(4, 100.0)).desired == 4  # t=0: recommends 4
    for _ in range(19):  # t=15 ... t=285: the load halved, each recommends 2
        fake_clock.advance(15.0)
        decision = autoscaler.decide(pool(4, 50.0))
        assert (decision.recommendation, decision.desired) == (2, 4)
        assert decision.reason == "stabilisation window"
    fake_clock.advance(15.0)  # t=300: the recommendation of t=0 has left the window
    assert autoscaler.decide(pool(4, 50.0)).desired == 2


def test_a_flapping_metric_does_not_flap_the_replicas(fake_clock: FakeClock) -> None:
    """The scale-down window exists to stop flapping: with the metric going up and down, the
    highest recommendation of the last 300 s holds."""
    autoscaler = Autoscaler(AutoscalerConfig(target=100.0), fake_clock)
    counts = []
    for step in range(40):
        load = 100.0 if step % 4 == 0 else 40.0
        counts.append(autoscaler.decide(pool(5, load)).desired)
        fake_clock.advance(15.0)
    assert counts == [5] * 40


def test_scale_up_stabilisation_takes_the_lowest_recommendation(fake_clock: FakeClock) -> None:
    """With a scale-up stabilisation window, the HPA scales up only to the lowest
    recommendation made within it (default 0 s: at once)."""
    rules = ScalingRules(stabilization_window=60.0)
    autoscaler = scaler(fake_clock, scale_up=rules)
    assert autoscaler.decide(pool(2, 100.0)).desired == 2  # t=0 recommends 2
    for _ in range(3):  # t=15, 30, 45 recommend 8, but 2 is still in the window
        fake_clock.advance(15.0)
        assert autoscaler.decide(pool(2, 400.0)).desired == 2
    fake_clock.advance(15.0)  # t=60: the window holds only 8s
    assert autoscaler.decide(pool(2, 400.0)).desired == 8
    assert scaler(FakeClock()).decide(pool(2, 400.0)).desired == 8  # no window: at once


def test_scale_up_policies_select_max_min_or_disabled(fake_clock: FakeClock) -> None:
    """Policies bound the change since the start of their period: Pods adds at most N replicas,
    Percent at most P % of the replicas at the period's start. selectPolicy Max (default) uses
    the policy allowing the biggest change, Min the smallest, Disabled forbids scaling up."""
    policies = (
        ScalingPolicy(kind=PolicyKind.PODS, value=4, period=60),
        ScalingPolicy(kind=PolicyKind.PERCENT, value=100, period=60),
    )

    def up(select: SelectPolicy) -> Autoscaler:
        rules = ScalingRules(policies=policies, select_policy=select)
        return scaler(FakeClock(), scale_up=rules)

    assert up(SelectPolicy.MAX).decide(pool(2, 1000.0)).desired == 6  # 2 + 4 beats 2 * 2
    assert up(SelectPolicy.MIN).decide(pool(2, 1000.0)).desired == 4
    disabled = up(SelectPolicy.DISABLED).decide(pool(2, 1000.0))
    assert (disabled.desired, disabled.reason) == (2, "scale-up policy")

    autoscaler = scaler(
        fake_clock, scale_up=ScalingRules(policies=policies, select_policy=SelectPolicy.MAX)
    )
    first = autoscaler.decide(pool(2, 1000.0))
    assert (first.desired, first.reason) == (6, "scale-up policy")
    fake_clock.advance(30.0)  # same period: it began with 2 replicas, so 6 is still the limit
    assert autoscaler.decide(pool(6, 1000.0)).desired == 6
    fake_clock.advance(30.0)  # a new period from 6: max(6 + 4, 6 * 2)
    assert autoscaler.decide(pool(6, 1000.0)).desired == 12


def test_default_scale_up_is_the_larger_of_double_or_four_more_per_15_s(
    fake_clock: FakeClock,
) -> None:
    """Kubernetes' default scale-up behaviour: no window, and per 15 s either 100 % more
    replicas or 4 more, whichever is larger."""
    autoscaler = Autoscaler(AutoscalerConfig(target=100.0, max_replicas=100), fake_clock)
    counts = [1]
    for _ in range(4):
        counts.append(autoscaler.decide(pool(counts[-1], 10_000.0)).desired)
        fake_clock.advance(15.0)
    assert counts == [1, 5, 10, 20, 40]


def test_scale_down_percent_policy_per_period(fake_clock: FakeClock) -> None:
    """A scale-down Percent policy removes at most P % of the replicas the period began with
    (rounded down to whole replicas), once per period."""
    rules = ScalingRules(
        policies=(ScalingPolicy(kind=PolicyKind.PERCENT, value=10, period=60),)
    )
    autoscaler = scaler(fake_clock, scale_down=rules)
    first = autoscaler.decide(pool(10, 1.0))
    assert (first.desired, first.reason) == (9, "scale-down policy")
    fake_clock.advance(15.0)
    assert autoscaler.decide(pool(9, 1.0)).desired == 9  # the period began with 10
    fake_clock.advance(45.0)
    assert autoscaler.decide(pool(9, 1.0)).desired == 8  # int(9 * 0.9)


def test_scale_down_pods_policies_select_max_is_the_bigger_drop(fake_clock: FakeClock) -> None:
    """For scaling down, selectPolicy Max picks the policy that removes the most replicas."""
    rules = ScalingRules(
        policies=(
            ScalingPolicy(kind=PolicyKind.PODS, value=2, period=60),
            ScalingPolicy(kind=PolicyKind.PERCENT, value=50, period=60),
        )
    )
    assert scaler(fake_clock, scale_down=rules).decide(pool(10, 1.0)).desired == 5
    minimal = rules.model_copy(update={"select_policy": SelectPolicy.MIN})
    assert scaler(FakeClock(), scale_down=minimal).decide(pool(10, 1.0)).desired == 8


def test_new_replicas_count_as_idle_until_ready_when_scaling_up(fake_clock: FakeClock) -> None:
    """Replicas not yet ready (or within the initial readiness delay, 30 s by default) are set
    aside; if the ready ones ask to scale up, the set-aside ones count as using 0 % of the
    target, which tempers the scale-up and avoids doubling on replicas still warming up."""
    autoscaler = scaler(fake_clock)
    warm = pool(2, 200.0) + pool(2, 350.0, started=-10.0)  # started 10 s ago: not yet counted
    assert autoscaler.decide(warm).desired == 4  # (2 * 200 + 2 * 0) / 4 = target
    assert autoscaler.decide(pool(2, 300.0) + pool(2, None, started=-10.0)).desired == 6
    not_ready = pool(2, 200.0) + [ReplicaSample(LONG_AGO, 200.0, ready=False)] * 2
    assert autoscaler.decide(not_ready).desired == 4
    fake_clock.advance(20.0)  # now 30 s after they started: their 350 counts
    assert autoscaler.decide(warm).desired == 11  # ceil(4 * 275 / 100)


def test_unready_replicas_are_ignored_when_scaling_down(fake_clock: FakeClock) -> None:
    """Set-aside replicas only temper a scale-up; a scale-down is computed on the ready ones."""
    autoscaler = scaler(fake_clock)
    assert autoscaler.decide(pool(4, 50.0) + pool(4, None, started=0.0)).desired == 2


def test_missing_metrics_count_as_full_when_scaling_down(fake_clock: FakeClock) -> None:
    """A ready replica with no metric is assumed at 100 % of target when the others ask to
    scale down, and at 0 % when they ask to scale up: the move is always made smaller. If
    that assumption reverses the direction or lands within tolerance, nothing changes."""
    autoscaler = scaler(fake_clock)
    assert autoscaler.decide(pool(2, 50.0) + pool(2, None)).desired == 3  # not 1
    assert autoscaler.decide(pool(2, 200.0) + pool(2, None)).desired == 4  # not 4 -> 8
    assert autoscaler.decide(pool(2, 80.0) + pool(2, None)).desired == 4  # 0.9: tolerance
    assert autoscaler.decide(pool(1, 300.0) + pool(3, None)).desired == 4  # 0.75 reverses


def test_no_usable_metric_means_no_change(fake_clock: FakeClock) -> None:
    """When the HPA cannot read the metric it does not scale (but bounds still hold)."""
    autoscaler = scaler(fake_clock, min_replicas=3)
    decision = autoscaler.decide(pool(4, None))
    assert (decision.desired, decision.reason) == (4, "no metric")
    assert autoscaler.decide(pool(1, None)).desired == 3


def test_several_metrics_the_highest_proposal_wins(fake_clock: FakeClock) -> None:
    """With several metrics the HPA computes a proposal for each and uses the largest; if some
    metric cannot be read and the others would scale down, it does not scale down."""
    autoscaler = scaler(fake_clock)
    assert autoscaler.decide_many([pool(4, 50.0), pool(4, 150.0)]).desired == 6
    assert autoscaler.decide_many([pool(4, 50.0), pool(4, None)]).desired == 4
    assert autoscaler.decide_many([pool(4, 300.0), pool(4, None)]).desired == 12


def test_history_is_forgotten_beyond_every_window(fake_clock: FakeClock) -> None:
    """Old recommendations stop weighing once older than the longest window or period."""
    autoscaler = Autoscaler(AutoscalerConfig(target=100.0), fake_clock)
    autoscaler.decide(pool(8, 100.0))
    fake_clock.advance(10_000.0)
    assert autoscaler.decide(pool(8, 25.0)).desired == 2


def test_max_replicas_below_min_is_refused() -> None:
    with pytest.raises(ValidationError, match="below min_replicas"):
        AutoscalerConfig(target=1.0, min_replicas=5, max_replicas=2)
