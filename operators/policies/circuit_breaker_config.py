"""The circuit breaker's settings: resilience4j's names and defaults, validated by pydantic.

Apart from :mod:`operators.policies.circuit_breaker` so that the breaker itself defines no
pydantic model and mypyc can compile it (``benchmarks/build_compiled.py``: the simulation asks
it about every backend call). The breaker module re-exports both names.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CircuitBreakerConfig", "SlidingWindowType"]


MAX_WINDOW = 100_000
"""The largest sliding window: its slots are allocated up front, so a typo (1e10) would be a
MemoryError instead of a refusal naming the field."""


class SlidingWindowType(StrEnum):
    """Whether the window holds the last N calls or the calls of the last N seconds."""

    COUNT_BASED = "COUNT_BASED"
    TIME_BASED = "TIME_BASED"


class CircuitBreakerConfig(BaseModel):
    """resilience4j's breaker settings with its defaults; times in seconds, rates in percent."""

    # no infinities: an infinite wait never reopens, an infinite threshold never trips
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    failure_rate_threshold: float = Field(default=50.0, gt=0, le=100)
    slow_call_rate_threshold: float = Field(default=100.0, gt=0, le=100)
    slow_call_duration_threshold: float = Field(default=60.0, gt=0)
    sliding_window_type: SlidingWindowType = SlidingWindowType.COUNT_BASED
    sliding_window_size: int = Field(
        default=100, ge=1, le=MAX_WINDOW,
        description="calls (count-based) or seconds (time-based); one slot each is allocated")
    minimum_number_of_calls: int = Field(default=100, ge=1)
    permitted_number_of_calls_in_half_open_state: int = Field(default=10, ge=1)
    wait_duration_in_open_state: float = Field(default=60.0, gt=0)
    automatic_transition_from_open_to_half_open_enabled: bool = False
    max_wait_duration_in_half_open_state: float = Field(
        default=0.0, ge=0, description="0 waits for the probes indefinitely"
    )
