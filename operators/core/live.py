"""The network core realised live: an asyncio station with bounded servers and waiting room.

Each call draws its fate from the shared :class:`~operators.core.service_model.ServiceModel`
at arrival, then either is refused (outage), rejected at once (servers and waiting room full:
:class:`~operators.core.errors.BackendBusy`, never an unbounded wait), or waits FIFO for a
server, holds it for ``duration * time_scale`` wall seconds and answers the handler's record.
A server is handed directly from the call that frees it to the oldest waiter, so a newcomer
can never overtake the queue (the FIFO discipline that Erlang C assumes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Generic, TypeVar

from operators.types import Clock

from .backend_metrics import BackendMeter
from .description import Faults, NetworkFunctionSpec
from .errors import BackendBusy, BackendFailure, BackendUnavailable
from .occupancy import Occupancy, OccupancySnapshot
from .service_model import Outcome, ServiceModel

__all__ = ["LiveNetworkFunction"]

Req = TypeVar("Req")
Rec = TypeVar("Rec")


class LiveNetworkFunction(Generic[Req, Rec]):
    """One network function behind the live gateway; ``await call(request)`` gives its record.

    ``time_scale`` multiplies every sampled duration (0.001 turns seconds into milliseconds for
    fast tests). Counters and time averages are in wall seconds on ``clock``. ``meter``, when
    set, is told each call's service time as a server takes it (the operator's Prometheus
    metrics); the integrator's driver, which alone knows a timeout, times the whole call.
    """

    meter: BackendMeter | None = None

    def __init__(
        self,
        spec: NetworkFunctionSpec,
        handler: Callable[[Req], Rec],
        rng: random.Random,
        *,
        time_scale: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be non-negative")
        self.spec = spec
        self.handler = handler
        self.model = ServiceModel(spec, rng)
        self.time_scale = time_scale
        self.occupancy = Occupancy(clock)
        self._free = spec.servers
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._unattended: set[asyncio.Task[None]] = set()
        """Requests whose callers stopped waiting, still queued or in service."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def faults(self) -> Faults:
        return self.model.faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults now; calls already in service keep the fate they drew."""
        self.model.set_faults(faults)

    @property
    def in_service(self) -> int:
        return self.spec.servers - self._free

    @property
    def queue_length(self) -> int:
        return len(self._waiters)

    def snapshot(self) -> OccupancySnapshot:
        """Counters (served, rejected, ...) and time averages for metrics."""
        return self.occupancy.snapshot()

    async def call(self, request: Req) -> Rec:
        """Serve ``request``; raises a :class:`~operators.core.errors.BackendError` subclass.

        A caller that stops waiting (its guard timed it out, or it went away) does not take
        the request back: it keeps its place in the queue and then its server for the time it
        drew, served for nobody, as a real backend would and as the simulated function does.
        """
        draw = self.model.draw()
        occupancy = self.occupancy
        arrived = occupancy.offer()
        if draw.outcome is Outcome.OUTAGE:
            occupancy.refuse()
            raise BackendUnavailable(self.name, "in outage")
        queued = self._free == 0
        if queued:
            limit = self.spec.queue_limit
            if limit is not None and len(self._waiters) >= limit:
                occupancy.reject()
                raise BackendBusy(self.name, "all servers busy and waiting room full")
            waiter = self._enqueue()
            try:
                await asyncio.shield(waiter)  # the place is kept if this caller is cancelled
            except asyncio.CancelledError:
                self._leave_behind(self._queued_for_nobody(waiter, arrived, draw.duration))
                raise
        else:
            self._free -= 1
        started, hold = self._start(arrived, queued, draw.duration)
        if draw.duration > 0:
            ends = asyncio.get_running_loop().time() + hold
            try:
                await asyncio.sleep(hold)
            except asyncio.CancelledError:
                remaining = ends - asyncio.get_running_loop().time()
                self._leave_behind(self._served_for_nobody(remaining, arrived, started))
                raise
        ok = False
        try:
            if draw.outcome is Outcome.ERROR:
                raise BackendFailure(self.name, "injected error")
            record = self.handler(request)
            ok = True
            return record
        finally:
            occupancy.depart(arrived, started, ok=ok)
            self._release()

    def _start(self, arrived: float, queued: bool, duration: float) -> tuple[float, float]:
        """A server takes the call: its start time and how long it holds the server."""
        started = self.occupancy.start(arrived, queued=queued)
        hold = duration * self.time_scale
        meter = self.meter
        if meter is not None:
            meter.served(hold)
        return started, hold

    def _enqueue(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.occupancy.enqueue()
        return waiter

    def _leave_behind(self, work: Coroutine[None, None, None]) -> None:
        """Finish a caller's request without it (the task is kept until done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._unattended.add(task)
        task.add_done_callback(self._unattended.discard)

    async def _queued_for_nobody(
        self, waiter: asyncio.Future[None], arrived: float, duration: float
    ) -> None:
        try:
            await waiter
        except asyncio.CancelledError:  # the loop is closing
            if waiter.done() and not waiter.cancelled():
                self._release()  # a server was handed over just as we were cancelled
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self.occupancy.abandon()
            raise
        started, hold = self._start(arrived, True, duration)
        await self._served_for_nobody(hold, arrived, started)

    async def _served_for_nobody(self, remaining: float, arrived: float, started: float) -> None:
        """The rest of a service nobody waits for: the handler's record is not made (its
        effects, a QoS session say, are the answer's, and nobody gets the answer)."""
        try:
            if remaining > 0:
                await asyncio.sleep(remaining)
        finally:
            self.occupancy.depart(arrived, started, ok=True)
            self._release()

    def _release(self) -> None:
        """Hand the server to the oldest live waiter, or put it back in the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
