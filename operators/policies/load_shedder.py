"""Load shedding: refuse work early rather than serve it too late.

``LoadShedder`` refuses at admission when the expected queueing delay,
``queue_length * mean_service_time / servers`` with the mean an EWMA of observed service times,
exceeds ``target``. ``CoDelShedder`` drops at dequeue following CoDel (RFC 8289): once every
item's sojourn time has stayed at or above ``target`` for ``interval``, it drops one, then the
next after ``interval / sqrt(count)``, until a sojourn time falls below ``target``.
``NoShedding`` admits and keeps everything.
"""

from __future__ import annotations

import math
from typing import Protocol

from operators.types import Clock

__all__ = ["AdmissionShedder", "CoDelShedder", "DequeueShedder", "LoadShedder", "NoShedding"]


class AdmissionShedder(Protocol):
    """Decides at arrival, from the queue it would join."""

    def admit(self, queue_length: int, servers: int) -> bool:
        """Whether to accept work arriving behind ``queue_length`` others."""
        ...

    def record_service_time(self, seconds: float) -> None:
        """Learn from one completed service."""
        ...


class DequeueShedder(Protocol):
    """Decides at dequeue, from how long the item waited."""

    def on_dequeue(self, sojourn: float, *, backlog: int | None = None) -> bool:
        """True to drop the item just taken from the queue."""
        ...


class LoadShedder:
    """Refuses arrivals whose expected wait exceeds ``target`` seconds."""

    __slots__ = ("_alpha", "_mean", "_target")

    def __init__(
        self, target: float, *, alpha: float = 0.2, initial_service_time: float | None = None
    ) -> None:
        if target < 0:
            raise ValueError(f"target must not be negative, got {target!r}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self._target = target
        self._alpha = alpha
        self._mean = initial_service_time

    @property
    def mean_service_time(self) -> float | None:
        """The EWMA of service times, or None before the first observation."""
        return self._mean

    def record_service_time(self, seconds: float) -> None:
        """Fold one service time into the EWMA; the first one seeds it."""
        if seconds < 0:
            raise ValueError(f"a service time cannot be negative: {seconds!r}")
        if self._mean is None:
            self._mean = seconds
        else:
            self._mean += self._alpha * (seconds - self._mean)

    def expected_wait(self, queue_length: int, servers: int) -> float:
        """Queueing delay ahead of a new arrival: queue_length * mean service / servers."""
        if servers < 1:
            raise ValueError(f"servers must be at least 1, got {servers!r}")
        if self._mean is None:
            return 0.0
        return queue_length * self._mean / servers

    def admit(self, queue_length: int, servers: int) -> bool:
        """Admit unless the expected wait is above ``target`` (admits until it has data)."""
        # expected_wait inlined (once per guarded call): the same arithmetic, the same floats.
        if servers < 1:
            raise ValueError(f"servers must be at least 1, got {servers!r}")
        mean = self._mean
        if mean is None:
            return self._target >= 0.0
        return queue_length * mean / servers <= self._target


class CoDelShedder:
    """CoDel's control law over sojourn times, one decision per dequeued item."""

    __slots__ = (
        "_clock",
        "_count",
        "_drop_next",
        "_dropping",
        "_first_above",
        "_interval",
        "_last_count",
        "_target",
    )

    def __init__(self, target: float, interval: float, clock: Clock) -> None:
        if target < 0:
            raise ValueError(f"target must not be negative, got {target!r}")
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self._target = target
        self._interval = interval
        self._clock = clock
        self._first_above: float | None = None
        self._dropping = False
        self._drop_next = 0.0
        self._count = 0
        self._last_count = 0

    @property
    def dropping(self) -> bool:
        """Whether CoDel is in its dropping state."""
        return self._dropping

    def _control_law(self, t: float) -> float:
        return t + self._interval / math.sqrt(self._count)

    def _ok_to_drop(self, sojourn: float, backlog: int | None, now: float) -> bool:
        # RFC 8289 dodequeue(): below target (or a near-empty queue) resets the clock.
        if sojourn < self._target or backlog == 0:
            self._first_above = None
            return False
        if self._first_above is None:
            self._first_above = now + self._interval
            return False
        return now >= self._first_above

    def on_dequeue(self, sojourn: float, *, backlog: int | None = None) -> bool:
        """True to drop this item; ``backlog`` (items left behind it), if given, 0 never drops."""
        now = self._clock()
        ok_to_drop = self._ok_to_drop(sojourn, backlog, now)
        if self._dropping:
            if not ok_to_drop:
                self._dropping = False
                return False
            if now >= self._drop_next:
                self._count += 1
                self._drop_next = self._control_law(self._drop_next)
                return True
            return False
        if ok_to_drop:
            self._dropping = True
            # Linux's variant: restart near the drop rate that last controlled the queue.
            delta = self._count - self._last_count
            recent = now - self._drop_next < 16 * self._interval
            self._count = delta if delta > 1 and recent else 1
            self._drop_next = self._control_law(now)
            self._last_count = self._count
            return True
        return False


class NoShedding:
    """Admits and keeps everything; the default at both decision points."""

    def admit(self, queue_length: int, servers: int) -> bool:
        """Always admit."""
        return True

    def record_service_time(self, seconds: float) -> None:
        """Nothing to learn."""

    def on_dequeue(self, sojourn: float, *, backlog: int | None = None) -> bool:
        """Never drop."""
        return False
