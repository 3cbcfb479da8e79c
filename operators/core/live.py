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
from collections.abc import Callable
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
        """Serve ``request``; raises a :class:`~operators.core.errors.BackendError` subclass."""
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
            await self._wait_for_server()
        else:
            self._free -= 1
        started = occupancy.start(arrived, queued=queued)
        ok = False
        try:
            hold = draw.duration * self.time_scale
            meter = self.meter
            if meter is not None:
                meter.served(hold)
            if draw.duration > 0:
                await asyncio.sleep(hold)
            if draw.outcome is Outcome.ERROR:
                raise BackendFailure(self.name, "injected error")
            record = self.handler(request)
            ok = True
            return record
        finally:
            occupancy.depart(arrived, started, ok=ok)
            self._release()

    async def _wait_for_server(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.occupancy.enqueue()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # a server was handed over just as we were cancelled
            elif waiter in self._waiters:  # a releaser may already have skipped it
                self._waiters.remove(waiter)
            self.occupancy.abandon()
            raise

    def _release(self) -> None:
        """Hand the server to the oldest live waiter, or put it back in the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
