"""The network core's functions served by callbacks: one Timeout per call, no process.

:class:`CallbackNetworkFunction` is :class:`sim.core.SimNetworkFunction` (same spec, same
:class:`~operators.core.service_model.ServiceModel` draws, same handlers, same
:class:`~operators.core.occupancy.Occupancy` books, same errors) with its servers and FIFO
waiting room kept as a counter and a deque: :meth:`submit` hands the record or the
:class:`~operators.core.BackendError` to a callback instead of resuming a process. A call is
never abandoned once queued, as in the process realisation, where nobody interrupts it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import simpy

from operators.core import BackendError
from operators.core.errors import BackendBusy, BackendFailure, BackendUnavailable
from operators.core.service_model import Draw, Outcome
from sim.core import SimNetworkFunction

__all__ = ["Answered", "CallbackNetworkFunction"]

Req = TypeVar("Req")
Rec = TypeVar("Rec")

Answered = Callable[[bool, Any], None]
"""``(True, record)`` or ``(False, BackendError)``, possibly before ``submit`` returns."""


class _Call:
    """One request in the function: its draw, arrival time, and whom to answer."""

    __slots__ = ("arrived", "done", "draw", "function", "request", "started")

    def __init__(
        self,
        function: CallbackNetworkFunction[Any, Any],
        request: Any,
        draw: Draw,
        arrived: float,
        done: Answered,
    ) -> None:
        self.function = function
        self.request = request
        self.draw = draw
        self.arrived = arrived
        self.done = done
        self.started = 0.0


class CallbackNetworkFunction(SimNetworkFunction[Req, Rec], Generic[Req, Rec]):
    """A network function in virtual time whose calls end in a callback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._servers = self.spec.servers
        self._busy = 0
        self._waiting: deque[_Call] = deque()

    @property
    def in_service(self) -> int:
        return self._busy

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def submit(self, request: Req, done: Answered) -> None:
        """Serve ``request``; ``done`` gets the record or the BackendError the live one raises."""
        draw = self.model.draw()
        occupancy = self.occupancy
        arrived = occupancy.offer()
        if draw.outcome is Outcome.OUTAGE:
            occupancy.refuse()
            done(False, BackendUnavailable(self.name, "in outage"))
            return
        if self._capacity is not None and self._busy + len(self._waiting) >= self._capacity:
            occupancy.reject()
            done(False, BackendBusy(self.name, "all servers busy and waiting room full"))
            return
        call = _Call(self, request, draw, arrived, done)
        if self._busy < self._servers:
            self._busy += 1
            self._start(call, queued=False)
        else:
            occupancy.enqueue()
            self._waiting.append(call)

    def _start(self, call: _Call, *, queued: bool) -> None:
        call.started = self.occupancy.start(call.arrived, queued=queued)
        self.env.timeout(call.draw.duration, call).callbacks.append(self._served)

    def _served(self, event: simpy.Event) -> None:
        self._finish(cast(_Call, event.value))

    def _finish(self, call: _Call) -> None:
        ok = False
        payload: Any
        if call.draw.outcome is Outcome.ERROR:
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
