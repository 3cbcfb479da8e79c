"""Deadlines without a SimPy event each: one timer armed at the earliest pending deadline.

Client timeouts, backend call timeouts and the request buffer's maximum wait are mostly
cancelled (the answer comes first), so scheduling a Timeout for each would double the events
of a call for nothing. :class:`Deadlines` keeps them in a heap and arms a single timeout at
the earliest one still pending; a cancelled entry costs a heap push and pop, never an event.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Protocol

import simpy

from sim.tiers.timers import Timer, call_later

__all__ = ["Deadline", "Deadlines"]


class Deadline(Protocol):
    """Something that may run out: ``active`` until answered, ``expire()`` if it was not."""

    active: bool

    def expire(self) -> None:
        """The deadline passed while still active."""
        ...


class Deadlines:
    """Pending deadlines of one component, with one armed timer at the earliest active one."""

    __slots__ = ("_armed", "_env", "_heap", "_seq")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._armed = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, at: float, entry: Deadline) -> None:
        """Expire ``entry`` at virtual time ``at`` unless it is no longer active by then."""
        heapq.heappush(self._heap, (at, next(self._seq), entry))
        if at < self._armed:
            self._arm(at)

    def _arm(self, at: float) -> None:
        self._armed = at
        call_later(self._env, at - self._env.now, self._wake)

    def _wake(self, _: Timer) -> None:
        now = self._env.now
        if self._armed > now:
            return  # an earlier timer was armed since; this one is stale
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if entry.active:
                entry.expire()
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
        else:
            self._armed = math.inf
