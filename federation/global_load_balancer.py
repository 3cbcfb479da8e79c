"""The global load balancer in front of one operator's active-active data centres.

Pure decisions with a clock (DESIGN.md): :class:`HealthTracker` turns health-check results
into up/down with hysteresis (``failures_to_down`` consecutive failures take a data centre
out, ``successes_to_up`` consecutive successes bring it back, so one lost probe does not flap
it), and says when each check is due. :class:`GlobalLoadBalancer` spreads requests over the
data centres that are up by smooth weighted round-robin (nginx's: deterministic, no bursts
to one site, weights respected over any window). The live launcher probes ``/health`` on a
timer with ``time.monotonic``; the simulation drives the same objects with ``lambda:
env.now``. Nothing here does I/O or sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .balancer_errors import NoHealthyDataCentreError
from .config import DataCentre, FederatedOperator
from .types import Clock

__all__ = [
    "GlobalLoadBalancer",
    "HealthPolicy",
    "HealthTracker",
    "NoHealthyDataCentreError",
    "Transition",
]


@dataclass(frozen=True)
class HealthPolicy:
    """How often to probe and how many results in a row change a data centre's state."""

    interval: float = 5.0
    failures_to_down: int = 3
    successes_to_up: int = 2

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.failures_to_down < 1 or self.successes_to_up < 1:
            raise ValueError("interval > 0 and both thresholds ≥ 1")

    @property
    def detection_window(self) -> float:
        """Worst case from a failure to leaving the rotation: what a live test may lose."""
        return self.interval * self.failures_to_down


@dataclass(frozen=True)
class Transition:
    """A data centre changed state at ``at`` (for logs, the demo and scenario metrics)."""

    data_centre: str
    up: bool
    at: float


@dataclass(slots=True)
class _Site:
    name: str
    weight: int
    up: bool = True
    failures: int = 0
    successes: int = 0
    last_check: float | None = None
    current: int = 0  # smooth weighted round-robin state


class HealthTracker:
    """Up/down state of each data centre from consecutive check results."""

    def __init__(
        self,
        sites: Iterable[DataCentre],
        *,
        clock: Clock = time.monotonic,
        policy: HealthPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy or HealthPolicy()
        self._sites = {dc.name: _Site(dc.name, dc.weight) for dc in sites}
        if not self._sites:
            raise ValueError("at least one data centre")
        self.transitions: list[Transition] = []
        self._rotation: tuple[list[_Site], int] | None = None

    def rotation(self) -> tuple[list[_Site], int]:
        """The sites that are up, in order, and their total weight.

        Kept between calls (only a flip changes it), so the balancer's per-request pick reads
        it instead of rebuilding the list each time.
        """
        if self._rotation is None:
            sites = [s for s in self._sites.values() if s.up]
            self._rotation = (sites, sum(s.weight for s in sites))
        return self._rotation

    def names(self) -> list[str]:
        return list(self._sites)

    def is_up(self, name: str) -> bool:
        return self._sites[name].up

    def up(self) -> list[str]:
        return [s.name for s in self._sites.values() if s.up]

    def due(self) -> list[str]:
        """Data centres whose next check is due now (never checked, or ``interval`` elapsed)."""
        now = self.clock()
        return [
            s.name
            for s in self._sites.values()
            if s.last_check is None or now - s.last_check >= self.policy.interval
        ]

    def next_due_at(self) -> float:
        """When the earliest next check falls due (now, for a site never checked)."""
        now = self.clock()
        return min(
            (now if s.last_check is None else s.last_check + self.policy.interval)
            for s in self._sites.values()
        )

    def record(self, name: str, healthy: bool) -> Transition | None:
        """One check result; returns the transition it caused, if any."""
        site = self._sites[name]
        site.last_check = self.clock()
        if healthy:
            site.successes += 1
            site.failures = 0
            if not site.up and site.successes >= self.policy.successes_to_up:
                return self._flip(site, up=True)
        else:
            site.failures += 1
            site.successes = 0
            if site.up and site.failures >= self.policy.failures_to_down:
                return self._flip(site, up=False)
        return None

    def _flip(self, site: _Site, *, up: bool) -> Transition:
        site.up = up
        site.current = 0
        self._rotation = None
        change = Transition(site.name, up, self.clock())
        self.transitions.append(change)
        return change

    def site(self, name: str) -> _Site:
        return self._sites[name]


@dataclass
class GlobalLoadBalancer:
    """Routes each request of one operator to a data centre that is up, weighted round-robin."""

    operator_id: str
    health: HealthTracker
    routed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_operator(
        cls,
        operator: FederatedOperator,
        *,
        clock: Clock = time.monotonic,
        policy: HealthPolicy | None = None,
    ) -> GlobalLoadBalancer:
        return cls(operator.id, HealthTracker(operator.data_centres, clock=clock, policy=policy))

    def pick(self) -> str:
        """The data centre for the next request; raises when none is up."""
        sites, total = self.health.rotation()
        if len(sites) == 1:
            # One site up (most operators, and all but failover tests): the loop below in
            # one step, its state kept exactly as the loop would keep it.
            chosen = sites[0]
            chosen.current += chosen.weight - total
        else:
            if not sites:
                raise NoHealthyDataCentreError(f"{self.operator_id}: no data centre is up")
            # max() with a key, unrolled: the first site with the highest current weight wins.
            chosen = sites[0]
            for site in sites:
                site.current += site.weight
                if site.current > chosen.current:
                    chosen = site
            chosen.current -= total
        routed = self.routed
        routed[chosen.name] = routed.get(chosen.name, 0) + 1
        return chosen.name

    def record_check(self, name: str, healthy: bool) -> Transition | None:
        return self.health.record(name, healthy)
