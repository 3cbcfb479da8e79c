"""How one backend is protected: the settings of its shedder, breaker and request buffer.

Apart from :mod:`operators.integrator.protection` so that the guard itself defines no pydantic
model and mypyc can compile it (``benchmarks/build_compiled.py``: the simulation admits every
backend call through it). The protection module re-exports the name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from operators.policies import CircuitBreakerConfig, SlidingWindowType

__all__ = ["GuardSettings"]


class GuardSettings(BaseModel):
    """How one backend is protected; scenario YAML may embed it, so unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrent: int = Field(default=16, ge=1)
    max_waiting: int = Field(default=64, ge=0)
    max_wait: float = Field(default=1.0, ge=0, description="seconds in the buffer before 503")
    call_timeout: float = Field(default=5.0, gt=0, description="seconds before 504 TIMEOUT")
    shed_target: float | None = Field(
        default=None, gt=0, description="expected wait (s) above which arrivals are shed"
    )
    breaker: CircuitBreakerConfig = CircuitBreakerConfig(
        minimum_number_of_calls=20, sliding_window_size=50, wait_duration_in_open_state=10.0
    )

    def pooled(self, replicas: int) -> GuardSettings:
        """The protection of ``replicas`` replicas seen as one: their buffers' concurrent slots
        and waiting rooms summed, and a count-based breaker's window, minimum calls and
        half-open probes multiplied, so the one breaker judges the same span of time from the
        same failure rate as each replica's; times and thresholds unchanged.

        What a simulation with one site per operator needs to stand for a live operator whose
        data centres each guard their own backends (as :meth:`CoreSpec.scaled
        <operators.core.CoreSpec.scaled>` pools their servers). What stays different: the one
        breaker opens for all the calls at once, where live each replica's opens on its own."""
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas!r}")
        return self._counted(lambda count, least: count * replicas)

    def split(self, parts: int) -> GuardSettings:
        """Each of ``parts`` sites' share of these settings, the inverse of :meth:`pooled`:
        the same counts divided, rounding up (at least one slot, call and probe)."""
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts!r}")
        return self._counted(lambda count, least: max(least, math.ceil(count / parts)))

    def _counted(self, rescale: Callable[[int, int], int]) -> GuardSettings:
        """These settings with every count ``rescale(count, least)`` (``least``: its floor)."""
        breaker = self.breaker
        counts = {
            "minimum_number_of_calls": rescale(breaker.minimum_number_of_calls, 1),
            "permitted_number_of_calls_in_half_open_state": rescale(
                breaker.permitted_number_of_calls_in_half_open_state, 1
            ),
        }
        if breaker.sliding_window_type is SlidingWindowType.COUNT_BASED:
            counts["sliding_window_size"] = rescale(breaker.sliding_window_size, 1)
        return self.model_copy(
            update={
                "max_concurrent": rescale(self.max_concurrent, 1),
                "max_waiting": rescale(self.max_waiting, 0),
                "breaker": breaker.model_copy(update=counts),
            }
        )
