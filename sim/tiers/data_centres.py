"""Which data centre of an operator takes the next call: a health-checked round robin.

The global load balancer is a decision object, so by DESIGN.md's rule it belongs to the
federation package and is shared with the live launcher. Until that object lands, this
module holds a stand-in behind the small :class:`DataCentreBalancer` interface, a pure object
with a clock: the SimPy model only feeds it probe results and asks it where to route, so the
federation's balancer can replace it without touching the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from operators.types import Clock

__all__ = ["DataCentreBalancer", "HealthCheckedBalancer"]


class DataCentreBalancer(Protocol):
    """What the simulated operator needs from a global load balancer."""

    def choose(self) -> str | None:
        """The data centre for the next call, or None when none is in rotation."""
        ...

    def record_probe(self, data_centre: str, healthy: bool) -> None:
        """Learn one health-check result."""
        ...

    def in_rotation(self) -> tuple[str, ...]:
        """The data centres currently receiving calls."""
        ...


class HealthCheckedBalancer:
    """Round robin over the data centres in rotation; consecutive probes move them out and in.

    A data centre leaves rotation after ``unhealthy_threshold`` failed probes in a row and
    returns after ``healthy_threshold`` passed ones (Envoy's and HAProxy's rise/fall rule).
    """

    def __init__(
        self,
        data_centres: Sequence[str],
        clock: Clock,
        *,
        unhealthy_threshold: int = 2,
        healthy_threshold: int = 2,
    ) -> None:
        if not data_centres:
            raise ValueError("a balancer needs at least one data centre")
        self._names = tuple(data_centres)
        self._clock = clock
        self._unhealthy = unhealthy_threshold
        self._healthy = healthy_threshold
        self._up = dict.fromkeys(self._names, True)
        self._streak = dict.fromkeys(self._names, 0)
        self._rotation = self._names
        self._next = 0
        self.transitions: list[tuple[float, str, bool]] = []

    def choose(self) -> str | None:
        """The next data centre in rotation (round robin), None if all are out."""
        rotation = self._rotation
        if not rotation:
            return None
        self._next = (self._next + 1) % len(rotation)
        return rotation[self._next]

    def record_probe(self, data_centre: str, healthy: bool) -> None:
        """Count a probe; a streak long enough flips the data centre in or out of rotation."""
        if healthy == self._up[data_centre]:
            self._streak[data_centre] = 0
            return
        self._streak[data_centre] += 1
        needed = self._healthy if healthy else self._unhealthy
        if self._streak[data_centre] >= needed:
            self._up[data_centre] = healthy
            self._streak[data_centre] = 0
            self._rotation = tuple(name for name in self._names if self._up[name])
            self.transitions.append((self._clock(), data_centre, healthy))

    def in_rotation(self) -> tuple[str, ...]:
        """The data centres currently receiving calls."""
        return self._rotation
