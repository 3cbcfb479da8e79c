"""The network core realised in virtual time: each function a SimPy station with a waiting room.

Built from the same :class:`~operators.core.description.NetworkFunctionSpec` and the same
:class:`~operators.core.service_model.ServiceModel` as the live asyncio function
(:class:`operators.core.LiveNetworkFunction`), answering with the same handlers, raising the
same :mod:`operators.core.errors` and keeping the same
:class:`~operators.core.occupancy.Occupancy` books; only the clock and the waiting differ.
This is the one SimPy realisation: the scenario engine runs it and ``ogsim validate`` holds it
against queueing theory.

A call costs no SimPy process: the servers and the FIFO waiting room are a counter and a
deque, a call in service is one timer (:func:`~sim.tiers.timers.call_later`), and
:meth:`CallbackNetworkFunction.submit` hands the record or the
:class:`~operators.core.BackendError` to a callback::

    hlr.submit(MsisdnQuery("+34600000001"), lambda ok, payload: ...)

A call is never abandoned once queued: a caller that stops waiting (its guard timed it out)
leaves the backend to finish the work, as a real backend would.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any, Generic, TypeVar

import simpy

from operators.core import (
    BackendBusy,
    BackendError,
    BackendFailure,
    BackendUnavailable,
    Draw,
    Faults,
    NetworkFunctionSpec,
    Occupancy,
    OccupancySnapshot,
    Outcome,
    ServiceModel,
)
from sim.tiers.fault_change import FaultChange
from sim.tiers.timers import Timer, call_later, clock

__all__ = ["Answered", "CallbackNetworkFunction", "FaultChange"]

Req = TypeVar("Req")
Rec = TypeVar("Rec")

_OUTAGE = Outcome.OUTAGE
_ERROR = Outcome.ERROR
"""Outcomes as module constants: read on every call, off the Enum class they cost more."""

Answered = Callable[[bool, Any], None]
"""``(True, record)`` or ``(False, BackendError)``, possibly before ``submit`` returns."""


class _Call:
    """One request in the function: its draw, arrival time, and whom to answer."""

    __slots__ = ("arrived", "done", "draw", "request", "started")

    def __init__(self, request: Any, draw: Draw, arrived: float, done: Answered) -> None:
        self.request = request
        self.draw = draw
        self.arrived = arrived
        self.done = done
        self.started = 0.0


class CallbackNetworkFunction(Generic[Req, Rec]):
    """One network function in virtual time: ``servers`` slots and a bounded FIFO queue."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: NetworkFunctionSpec,
        handler: Callable[[Req], Rec],
        rng: random.Random,
    ) -> None:
        self.env = env
        self.spec = spec
        self.handler = handler
        self.model = ServiceModel(spec, rng)
        self.occupancy = Occupancy(clock(env))
        self._servers = spec.servers
        self._capacity = spec.capacity
        self._busy = 0
        self._waiting: deque[_Call] = deque()
        self._on_served = self._served
        """The bound method, made once (each timer would make one)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def faults(self) -> Faults:
        return self.model.faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults now; calls already in service keep the fate they drew."""
        self.model.set_faults(faults)

    def schedule_faults(self, timeline: Iterable[FaultChange]) -> simpy.Process:
        """Apply each change of a fault timeline at its time, as a process of its own."""
        changes = sorted(timeline, key=lambda change: change.at)

        def run() -> Generator[simpy.Event, Any, None]:
            for change in changes:
                if change.at > self.env.now:
                    yield self.env.timeout(change.at - self.env.now)
                self.set_faults(change.faults)

        return self.env.process(run())

    @property
    def in_service(self) -> int:
        return self._busy

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def snapshot(self) -> OccupancySnapshot:
        """Counters and time averages (L, Lq, W, Wq, throughput) since the last reset."""
        return self.occupancy.snapshot()

    def submit(self, request: Req, done: Answered) -> None:
        """Serve ``request``; ``done`` gets the record or the BackendError the live one raises."""
        draw = self.model.draw()
        occupancy = self.occupancy
        arrived = occupancy.offer()
        if draw.outcome is _OUTAGE:
            occupancy.refuse()
            done(False, BackendUnavailable(self.name, "in outage"))
            return
        if self._capacity is not None and self._busy + len(self._waiting) >= self._capacity:
            occupancy.reject()
            done(False, BackendBusy(self.name, "all servers busy and waiting room full"))
            return
        call = _Call(request, draw, arrived, done)
        if self._busy < self._servers:
            self._busy += 1
            call.started = occupancy.start(arrived, queued=False)  # as _start, inline
            call_later(self.env, draw.duration, self._on_served, call)
        else:
            occupancy.enqueue()
            self._waiting.append(call)

    def _start(self, call: _Call, *, queued: bool) -> None:
        call.started = self.occupancy.start(call.arrived, queued=queued)
        call_later(self.env, call.draw.duration, self._on_served, call)

    def _served(self, event: Timer) -> None:
        call: _Call = event.value
        ok = False
        payload: Any
        if call.draw.outcome is _ERROR:
            payload = BackendFailure(self.name, "injected error")
        else:
            try:
                payload = self.handler(call.request)
                ok = True
            except BackendError as error:
                payload = error
        self.occupancy.depart(call.arrived, call.started, ok=ok)
        if self._waiting:
            self._start(self._waiting.popleft(), queued=True)
        else:
            self._busy -= 1
        call.done(ok, payload)
