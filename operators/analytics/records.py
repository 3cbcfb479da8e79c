"""What the analytics reads: developers' milestones and hourly usage buckets.

Both the live operator and the simulated API business produce these two records and nothing
else, so every timeline, funnel, detector and segment is computed by the same code on both.
The analytics never sees individual calls: the gateway (or the simulation) folds calls into a
:class:`UsageBucket` per application, API and bucket of time, which keeps memory bounded by
the number of applications and the history kept, not by the number of calls.

Times are epoch seconds. The simulation uses its calendar (the scenario's ``start`` plus
virtual seconds), so "hour of week" means the same in both modes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal, get_args

__all__ = [
    "ACTIVITY_KINDS",
    "HOUR",
    "MAX_DISTINCT",
    "MAX_SOURCES",
    "Activity",
    "ActivityKind",
    "DistinctCounter",
    "UsageBucket",
]

HOUR = 3600.0
"""The default bucket length: detectors' seasons are hours of the week."""
MAX_DISTINCT = 4096
"""A bucket's distinct-subscriber count saturates here (memory bound per bucket)."""
MAX_SOURCES = 32
"""At most this many distinct sources are kept per bucket; more count as ``"(other)"``."""

ActivityKind = Literal[
    "signed_up",
    "email_confirmed",
    "application_created",
    "key_generated",
    "first_token",
    "first_success",
    "plan_changed",
    "production_requested",
    "production_approved",
    "application_suspended",
    "deactivated",
]
ACTIVITY_KINDS: tuple[ActivityKind, ...] = get_args(ActivityKind)
"""Every milestone kind, in the order of a developer's life."""


@dataclass(frozen=True, slots=True)
class Activity:
    """One milestone in a developer's life at the operator.

    ``client_id`` is set for application milestones (``application_created`` ties the
    application to its developer and organisation: the analytics learns ownership from it),
    ``api`` for per-API ones (``first_success``, ``plan_changed``), ``detail`` carries the
    plan's name for ``plan_changed``.
    """

    at: float
    kind: ActivityKind
    developer_id: str
    org_id: str
    client_id: str = ""
    api: str = ""
    detail: str = ""


class DistinctCounter:
    """Distinct subscriber keys seen in one bucket, exact up to :data:`MAX_DISTINCT`.

    Exact rather than a sketch because the enumeration detector compares small numbers
    (a normal application sees tens of subscribers an hour, an enumerating one thousands),
    and a saturated count is already far past any threshold.
    """

    __slots__ = ("_keys", "_saturated")

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys: set[str] = set()
        self._saturated = False
        self.update(keys)

    def add(self, key: str) -> None:
        if self._saturated or key in self._keys:
            return
        if len(self._keys) >= MAX_DISTINCT:
            self._saturated = True
            return
        self._keys.add(key)

    def update(self, keys: Iterable[str]) -> None:
        """Add many keys at once: one set update (the simulation adds a bucket's worth)."""
        if self._saturated:
            return
        self._keys.update(keys)
        if len(self._keys) > MAX_DISTINCT:
            self._saturated = True
            self._keys = set(islice(self._keys, MAX_DISTINCT))

    def merge(self, other: DistinctCounter) -> None:
        self.update(other._keys)
        self._saturated = self._saturated or other._saturated

    @property
    def count(self) -> int:
        """The distinct keys seen, :data:`MAX_DISTINCT` once saturated."""
        return MAX_DISTINCT if self._saturated else len(self._keys)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._keys)


@dataclass(slots=True)
class UsageBucket:
    """Calls of one application to one API within one bucket of time.

    ``start`` is the bucket's first second (a multiple of the bucket length since the
    epoch). ``errors`` counts 4xx and 5xx answers other than 429; ``throttled`` the 429s;
    ``successes`` the 2xx. ``sources`` counts calls per source label: the caller's network
    live (its address's /24, or the address for IPv6 /64), a place label in the simulation.
    """

    client_id: str
    api: str
    start: float
    calls: int = 0
    successes: int = 0
    errors: int = 0
    throttled: int = 0
    subscribers: DistinctCounter = field(default_factory=DistinctCounter)
    sources: dict[str, int] = field(default_factory=dict)

    def add_call(
        self, status: int, *, subscriber: str | None = None, source: str | None = None
    ) -> None:
        """Fold one answered call in."""
        self.calls += 1
        if 200 <= status < 300:
            self.successes += 1
        elif status == 429:
            self.throttled += 1
        elif status >= 400:
            self.errors += 1
        if subscriber is not None:
            self.subscribers.add(subscriber)
        if source is not None:
            self.add_source(source, 1)

    def add_source(self, source: str, calls: int) -> None:
        if source not in self.sources and len(self.sources) >= MAX_SOURCES:
            source = "(other)"
        self.sources[source] = self.sources.get(source, 0) + calls

    def merge(self, other: UsageBucket) -> None:
        """Add another part of the same bucket (another replica's, another batch's)."""
        if (other.client_id, other.api, other.start) != (self.client_id, self.api, self.start):
            raise ValueError("only parts of the same application, API and bucket merge")
        self.calls += other.calls
        self.successes += other.successes
        self.errors += other.errors
        self.throttled += other.throttled
        self.subscribers.merge(other.subscribers)
        for source, calls in other.sources.items():
            self.add_source(source, calls)
