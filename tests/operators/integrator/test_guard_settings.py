"""``GuardSettings.pooled``: several replicas' guards seen as one (the calibration's pooling)."""

from __future__ import annotations

import pytest

from operators.integrator import GuardSettings
from operators.policies import CircuitBreakerConfig


def test_pooling_sums_the_buffers_and_keeps_times_and_thresholds() -> None:
    guard = GuardSettings(
        max_concurrent=6,
        max_waiting=10,
        max_wait=0.3,
        call_timeout=0.8,
        shed_target=0.1,
        breaker=CircuitBreakerConfig(minimum_number_of_calls=5),
    )
    pooled = guard.pooled(3)
    assert (pooled.max_concurrent, pooled.max_waiting) == (18, 30)
    assert pooled.model_dump(exclude={"max_concurrent", "max_waiting"}) == guard.model_dump(
        exclude={"max_concurrent", "max_waiting"}
    )
    assert guard.pooled(1) == guard


def test_pooling_no_replica_is_refused() -> None:
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        GuardSettings().pooled(0)
