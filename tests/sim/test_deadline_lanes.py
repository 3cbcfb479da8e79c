"""Deadlines kept in ordered lanes expire as one heap of (time, order added) would have them."""

from __future__ import annotations

import heapq
import itertools
import math
import random

import simpy

from sim.tiers.deadlines import Deadlines
from sim.tiers.timers import Timer, call_later


class _HeapDeadlines:
    """The reference: every deadline in one heap, one timer at the earliest active one."""

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._armed = math.inf

    def add(self, at: float, entry: _Entry) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), entry))
        if at < self._armed:
            self._armed = at
            call_later(self._env, at - self._env.now, self._wake)

    def _wake(self, _: Timer) -> None:
        now = self._env.now
        if self._armed > now:
            return
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if entry.active:
                entry.expire()
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        if heap:
            self._armed = heap[0][0]
            call_later(self._env, heap[0][0] - now, self._wake)
        else:
            self._armed = math.inf


class _Entry:
    def __init__(self, name: int, world: _World) -> None:
        self.name, self.world, self.active = name, world, True

    def expire(self) -> None:
        self.active = False
        self.world.expired(self.name)


class _World:
    """Entries with a few fixed timeouts and some odd ones; answers cancel some; an expiry
    may add a deadline due at once (as a flow's next buffered call can)."""

    def __init__(self, lanes: bool, seed: int) -> None:
        self.env = simpy.Environment()
        self.deadlines = Deadlines(self.env) if lanes else _HeapDeadlines(self.env)
        self.rng = random.Random(seed)
        self.log: list[tuple[float, str, int]] = []
        self.names = itertools.count()

    def expired(self, name: int) -> None:
        self.log.append((self.env.now, "expired", name))
        if self.rng.random() < 0.2:
            self.add(self.rng.choice((0.0, 0.3)))

    def add(self, timeout: float) -> None:
        entry = _Entry(next(self.names), self)
        self.deadlines.add(self.env.now + timeout, entry)
        if self.rng.random() < 0.7:
            answer_in = self.rng.uniform(0, timeout * 1.2) if timeout else 0.0

            def answered(_: Timer) -> None:
                if entry.active:
                    entry.active = False
                    self.log.append((self.env.now, "answered", entry.name))

            call_later(self.env, answer_in, answered)

    def run(self) -> list[tuple[float, str, int]]:
        def arrive(_: Timer) -> None:
            timeout = self.rng.choice((1.0, 1.0, 2.5, 0.25, self.rng.uniform(0, 3)))
            self.add(timeout)
            if self.env.now < 50:
                call_later(self.env, self.rng.expovariate(20.0), arrive)

        call_later(self.env, 0.0, arrive)
        self.env.run()
        return self.log


def test_lanes_expire_as_one_heap() -> None:
    for seed in range(5):
        lanes, heap = _World(True, seed), _World(False, seed)
        assert lanes.run() == heap.run()
        assert lanes.env.now == heap.env.now  # the last wake-up at the same time
        assert len(lanes.deadlines) == 0  # type: ignore[arg-type]
