"""Deadlines without a SimPy event each: one timer armed at the earliest pending deadline.

Client timeouts, backend call timeouts and the request buffer's maximum wait are mostly
cancelled (the answer comes first), so scheduling a Timeout for each would double the events
of a call for nothing. :class:`Deadlines` keeps them in order and arms a single timer at the
earliest one still pending; a cancelled entry costs an append and a pop, never an event.

Deadlines come from a few fixed timeouts added to a clock that only moves forward, so they
mostly arrive in order: each goes at the end of the first *lane* (a deque, in order) whose
last deadline is not later, and only a deadline that fits no lane (after a few) goes into a
heap. Expiry takes the earliest head of all, ties in the order added, as one heap would.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from typing import Protocol

import simpy

from sim.tiers.timers import Timer, call_later

__all__ = ["Deadline", "Deadlines"]

_LANES = 4
"""Ordered lanes before a deadline goes into the heap."""


class Deadline(Protocol):
    """Something that may run out: ``active`` until answered, ``expire()`` if it was not."""

    active: bool

    def expire(self) -> None:
        """The deadline passed while still active."""
        ...


_Item = tuple[float, int, Deadline]


class Deadlines:
    """Pending deadlines of one component, with one armed timer at the earliest active one."""

    __slots__ = ("_armed", "_env", "_heap", "_lanes", "_seq", "_woken")

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._lanes: list[deque[_Item]] = []
        self._heap: list[_Item] = []
        self._seq = itertools.count()
        self._armed = math.inf
        self._woken = self._wake
        """The bound method, made once (each timer would make one)."""

    def __len__(self) -> int:
        return sum(map(len, self._lanes)) + len(self._heap)

    def add(self, at: float, entry: Deadline) -> None:
        """Expire ``entry`` at virtual time ``at`` unless it is no longer active by then."""
        item = (at, next(self._seq), entry)
        for lane in self._lanes:
            if not lane or lane[-1][0] <= at:
                lane.append(item)
                break
        else:
            if len(self._lanes) < _LANES:
                self._lanes.append(deque((item,)))
            else:
                heapq.heappush(self._heap, item)
        if at < self._armed:
            self._arm(at)

    def _arm(self, at: float) -> None:
        self._armed = at
        call_later(self._env, at - self._env._now, self._woken)

    def _earliest(self) -> tuple[deque[_Item] | list[_Item] | None, _Item | None]:
        """The lane (or the heap) whose first deadline comes first, None when all are empty;
        and the first deadline of all the others (None if they are empty)."""
        found: deque[_Item] | list[_Item] | None = self._heap or None
        runner_up: _Item | None = None
        for lane in self._lanes:
            if lane:
                if found is None:
                    found = lane
                elif lane[0] < found[0]:
                    runner_up = found[0] if runner_up is None or found[0] < runner_up else runner_up
                    found = lane
                elif runner_up is None or lane[0] < runner_up:
                    runner_up = lane[0]
        return found, runner_up

    def _wake(self, _: Timer) -> None:
        now = self._env._now
        if self._armed > now:
            return  # an earlier timer was armed since; this one is stale
        heap = self._heap
        while True:
            source, runner_up = self._earliest()
            if source is None or source[0][0] > now:
                break
            if isinstance(source, deque):
                # Take this lane's due entries up to the others' first: answered ones cost a
                # pop; an expiry may add deadlines, so look at every source again after one.
                if runner_up is None:  # the only one with deadlines (the usual case)
                    while source and source[0][0] <= now:
                        entry = source.popleft()[2]
                        if entry.active:
                            entry.expire()
                            break
                    continue
                while source and source[0][0] <= now and source[0] < runner_up:
                    entry = source.popleft()[2]
                    if entry.active:
                        entry.expire()
                        break
                continue
            entry = heapq.heappop(heap)[2]
            if entry.active:
                entry.expire()
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        for lane in self._lanes:
            while lane and not lane[0][2].active:
                lane.popleft()
        source, _later = self._earliest()
        if source is not None:
            self._arm(source[0][0])
        else:
            self._armed = math.inf
