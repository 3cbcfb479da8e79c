"""A tier of parallel servers with a FIFO waiting room, driven by callbacks.

The gateway replicas and identity servers only hold a caller for a sampled service time, so
they need no SimPy process per call: :meth:`Station.serve` starts the job at once when a
server is free (one timer, its callback finishing the job) or parks it in order. This is a
``simpy.Resource`` with ``request``/``timeout``/``release`` folded into one event per job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import simpy

from sim.tiers.timers import Timer, call_later

__all__ = ["Job", "Station"]

Job = Callable[[], None]
"""Called when the job's service time is over (its server is already free again)."""


class Station:
    """``servers`` parallel slots; a job holds one for its duration, then its callback runs."""

    __slots__ = ("_env", "_waiting", "busy", "servers")

    def __init__(self, env: simpy.Environment, servers: int) -> None:
        self._env = env
        self.servers = servers
        self.busy = 0
        self._waiting: deque[tuple[float, Job]] = deque()

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def serve(self, duration: float, done: Job) -> None:
        """Hold a server for ``duration`` seconds (after the jobs ahead), then call ``done``."""
        if self.busy < self.servers:
            self.busy += 1
            self._start(duration, done)
        else:
            self._waiting.append((duration, done))

    def _start(self, duration: float, done: Job) -> None:
        call_later(self._env, duration, self._finish, done)

    def _finish(self, event: Timer) -> None:
        if self._waiting:
            self._start(*self._waiting.popleft())
        else:
            self.busy -= 1
        done: Job = event.value
        done()
