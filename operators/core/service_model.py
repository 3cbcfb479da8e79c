"""How long a call takes and whether it fails: one decision shared by both realisations.

The asyncio function and the SimPy function each hold a :class:`ServiceModel` and ask it once
per call, at arrival, before anything else. Every draw consumes the random stream in the same
way whatever the faults are (a service time and one uniform for the error roll), so the same
seed and the same arrivals give the same durations and failures live and in virtual time,
and switching a fault on does not shift the stream of later calls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from .description import Faults, NetworkFunctionSpec

__all__ = ["Draw", "Outcome", "ServiceModel"]


class Outcome(StrEnum):
    """What the function will do with a call."""

    OK = "ok"
    ERROR = "error"  # served for its duration, then fails (BackendFailure)
    OUTAGE = "outage"  # refused at once, never queued (BackendUnavailable)


@dataclass(frozen=True, slots=True)
class Draw:
    """One call's fate: seconds of service (holding a server) and its outcome."""

    duration: float
    outcome: Outcome


class ServiceModel:
    """Samples service time from the spec and applies the current faults to it."""

    __slots__ = ("_faults", "_rng", "spec")

    def __init__(self, spec: NetworkFunctionSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._faults = spec.faults

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults at run time; takes effect from the next call's draw."""
        self._faults = faults

    def draw(self) -> Draw:
        """Sample a duration and an outcome for the next call."""
        base = self.spec.service_time.sample(self._rng)
        roll = self._rng.random()
        faults = self._faults
        if faults.outage:
            return Draw(0.0, Outcome.OUTAGE)
        outcome = Outcome.ERROR if roll < faults.error_rate else Outcome.OK
        return Draw(base + faults.extra_latency, outcome)
