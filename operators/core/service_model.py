"""How long a call takes and whether it fails: one decision shared by both realisations.

The asyncio function and the SimPy function each hold a :class:`ServiceModel` and ask it once
per call, at arrival, before anything else. Every draw consumes the random stream in the same
way whatever the faults are (a service time and one uniform for the error roll), so the same
seed and the same arrivals give the same durations and failures live and in virtual time,
and switching a fault on does not shift the stream of later calls.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import NamedTuple

from .description import Faults, NetworkFunctionSpec

__all__ = ["Draw", "Outcome", "ServiceModel"]


class Outcome(StrEnum):
    """What the function will do with a call."""

    OK = "ok"
    ERROR = "error"  # served for its duration, then fails (BackendFailure)
    OUTAGE = "outage"  # refused at once, never queued (BackendUnavailable)


# Members as module constants: reading an Enum member off its class costs far more.
_OK = Outcome.OK
_ERROR = Outcome.ERROR


class Draw(NamedTuple):
    """One call's fate: seconds of service (holding a server) and its outcome.

    A named tuple: one is made per call, and a tuple is cheaper to make than a dataclass.
    """

    duration: float
    outcome: Outcome


class ServiceModel:
    """Samples service time from the spec and applies the current faults to it."""

    __slots__ = ("_error_rate", "_extra_latency", "_faults", "_outage", "_rng", "_sample", "spec")

    def __init__(self, spec: NetworkFunctionSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._sample = spec.service_time.sampler()
        self._outage: Draw | None = None
        self.set_faults(spec.faults)

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults at run time; takes effect from the next call's draw."""
        self._faults = faults
        # What each draw reads, copied from the frozen model once per switch.
        self._outage = Draw(0.0, Outcome.OUTAGE) if faults.outage else None
        self._error_rate = faults.error_rate
        self._extra_latency = faults.extra_latency

    def draw(self) -> Draw:
        """Sample a duration and an outcome for the next call."""
        rng = self._rng
        base = self._sample(rng)
        roll = rng.random()
        if self._outage is not None:
            return self._outage
        outcome = _ERROR if roll < self._error_rate else _OK
        return Draw(base + self._extra_latency, outcome)
