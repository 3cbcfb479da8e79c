"""``GuardSettings.pooled``: several replicas' guards seen as one (the calibration's pooling)."""

from __future__ import annotations

import pytest

from operators.integrator import GuardSettings
from operators.policies import CircuitBreakerConfig, SlidingWindowType


def test_pooling_sums_the_buffers_and_keeps_times_and_thresholds() -> None:
    guard = GuardSettings(
        max_concurrent=6,
        max_waiting=10,
        max_wait=0.3,
        call_timeout=0.8,
        shed_target=0.1,
        breaker=CircuitBreakerConfig(
            minimum_number_of_calls=5,
            sliding_window_size=8,
            permitted_number_of_calls_in_half_open_state=2,
            failure_rate_threshold=40,
            wait_duration_in_open_state=3,
        ),
    )
    pooled = guard.pooled(3)
    assert (pooled.max_concurrent, pooled.max_waiting) == (18, 30)
    # the one breaker sees three replicas' calls: its counts grow with them
    breaker = pooled.breaker
    assert breaker.minimum_number_of_calls == 15 and breaker.sliding_window_size == 24
    assert breaker.permitted_number_of_calls_in_half_open_state == 6
    counted = {
        "minimum_number_of_calls",
        "sliding_window_size",
        "permitted_number_of_calls_in_half_open_state",
    }
    assert breaker.model_dump(exclude=counted) == guard.breaker.model_dump(exclude=counted)
    kept = {"max_concurrent", "max_waiting", "breaker"}
    assert pooled.model_dump(exclude=kept) == guard.model_dump(exclude=kept)
    assert guard.pooled(1) == guard


def test_a_time_based_window_is_seconds_and_is_not_pooled() -> None:
    breaker = CircuitBreakerConfig(
        sliding_window_type=SlidingWindowType.TIME_BASED, sliding_window_size=10
    )
    pooled = GuardSettings(breaker=breaker).pooled(2).breaker
    assert pooled.sliding_window_size == 10
    assert pooled.minimum_number_of_calls == 2 * breaker.minimum_number_of_calls


def test_pooling_no_replica_is_refused() -> None:
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        GuardSettings().pooled(0)


def test_splitting_undoes_pooling_and_rounds_up() -> None:
    guard = GuardSettings(
        max_concurrent=5,
        max_waiting=0,
        breaker=CircuitBreakerConfig(
            minimum_number_of_calls=3,
            sliding_window_size=7,
            permitted_number_of_calls_in_half_open_state=1,
        ),
    )
    assert guard.pooled(2).split(2) == guard
    halved = guard.split(2)
    assert (halved.max_concurrent, halved.max_waiting) == (3, 0)
    assert halved.breaker.permitted_number_of_calls_in_half_open_state == 1  # never below one
    assert halved.breaker.sliding_window_size == 4
    with pytest.raises(ValueError, match="parts must be at least 1"):
        guard.split(0)
