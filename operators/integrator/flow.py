"""Sans-IO operation flows and the guarded backend call, written once for both modes.

An operation is written once as a generator that yields :class:`BackendCall` and is sent the
backend's record (or has the CAMARA error of a failed call thrown into it, which it may catch
to degrade). Each backend call goes through that backend's :class:`BackendGuard` as one
:class:`GuardedCall`: admitted, refused, parked in the buffer, given up, timed out, failed or
answered. Every decision of that life is taken here; a driver only waits: for a promotion or
the buffer deadline, for the backend's answer or the call timeout. There are two drivers, and
nothing else drives a flow:

* asyncio, live: :func:`operators.integrator.live.run_async`;
* SimPy, virtual time: :func:`sim.tiers.integrator.run_flow`.

So a scenario's verdict on the breaker, the buffer or the shedder is a verdict on this code.
A driver's loop is::

    step = next_call(flow, guards)
    while isinstance(step, GuardedCall):
        if step.waiting: wait for a promotion until step.wait_deadline, then step.waited()
        step.start(); call the backend within step.timeout
        ... step.answered(record) / step.failed(error) / step.timed_out() / step.abandon()
        step = next_call(flow, guards, record, error)
    return step  # the flow's result
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, NamedTuple, TypeVar

from operators.core import BackendError, NetworkFunctionKind, SessionUnknown, SubscriberUnknown
from operators.errors import CamaraError
from operators.policies import TicketState

from .protection import BackendGuard

__all__ = ["BackendCall", "Flow", "GuardedCall", "next_call", "translate_backend_error"]

T = TypeVar("T")

# Members as module constants: reading an Enum member off its class costs far more.
_RUNNING = TicketState.RUNNING
_WAITING = TicketState.WAITING


class BackendCall(NamedTuple):
    """One request to one network function, in that function's own request format.

    A named tuple: one is made per backend call, and a tuple is cheaper to make.
    """

    kind: NetworkFunctionKind
    request: Any


Flow = Generator[BackendCall, Any, T]


def translate_backend_error(error: BackendError) -> tuple[CamaraError, bool]:
    """The CAMARA error for a backend error, and whether it counts as the backend failing."""
    if isinstance(error, SubscriberUnknown):
        return CamaraError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found."), False
    if isinstance(error, SessionUnknown):
        return CamaraError(404, "NOT_FOUND", "The specified resource is not found."), False
    return CamaraError(503, "UNAVAILABLE", f"{error.function} unavailable: {error.code}"), True


class GuardedCall:
    """One backend call's life under its guard; the driver reports what happened, no I/O here.

    Created admitted (``guard.admit()`` raised nothing): RUNNING, or WAITING in the buffer.
    Each ending (``answered``, ``failed``, ``timed_out``, ``waited`` refusing, ``abandon``)
    tells the guard once, which frees the slot and wakes the next waiter.
    """

    __slots__ = ("call", "guard", "started", "ticket")

    def __init__(self, guard: BackendGuard, call: BackendCall) -> None:
        self.guard = guard
        self.call = call
        self.ticket = guard.admit()
        self.started: float | None = None

    @property
    def request(self) -> Any:
        return self.call.request

    @property
    def waiting(self) -> bool:
        """Parked in the buffer: wait for a promotion (:meth:`on_promotion`) or the deadline."""
        return self.ticket.state is _WAITING

    @property
    def wait_deadline(self) -> float:
        """When a parked call stops waiting, on the guard's clock."""
        return self.ticket.deadline

    @property
    def timeout(self) -> float:
        """Seconds the backend has to answer once the call started."""
        return self.guard.call_timeout

    def on_promotion(self, waker: Callable[[], None]) -> None:
        """``waker`` is called (from inside another call's ending) when a slot frees for us."""
        self.guard.on_promotion(self.ticket, waker)

    def waited(self) -> CamaraError | None:
        """The wait is over (promoted or deadline): None to go on, else the 503 to answer."""
        if self.ticket.state is _RUNNING:
            return None
        return self.guard.give_up(self.ticket)

    def start(self) -> float:
        """The backend call begins now; returns when it times out, on the guard's clock."""
        self.started = started = self.guard.clock()
        return started + self.guard.call_timeout

    def _finish(self, failed: bool) -> None:
        assert self.started is not None, "the call never started"
        guard = self.guard
        guard.end(self.ticket, failed, guard.clock() - self.started)

    def answered(self, record: T) -> T:
        """The backend answered in time: a success for the breaker and the shedder."""
        # _finish(failed=False) inlined: most guarded calls end here.
        started = self.started
        assert started is not None, "the call never started"
        guard = self.guard
        guard.end(self.ticket, False, guard.clock() - started)
        return record

    def failed(self, error: BackendError) -> CamaraError:
        """The backend raised: its CAMARA error, a failure unless the subscriber is unknown."""
        camara, failed = translate_backend_error(error)
        self._finish(failed)
        return camara

    def timed_out(self) -> CamaraError:
        """No answer within :attr:`timeout`: a failure, ``504`` to the flow."""
        assert self.started is not None, "the call never started"
        guard = self.guard
        guard.time_out(self.ticket, guard.clock() - self.started)
        return guard.timeout()

    def abandon(self) -> None:
        """The caller went away (a cancelled task): free what the call holds, learn nothing."""
        self.guard.withdraw(self.ticket)


def next_call(
    flow: Flow[T],
    guards: Mapping[NetworkFunctionKind, BackendGuard],
    value: Any = None,
    error: CamaraError | None = None,
) -> GuardedCall | T:
    """Send a record (or throw an error) into ``flow``: its next admitted call, or its result.

    A refused admission (shed, circuit open, buffer full) is thrown straight back into the
    flow, which may degrade; an error the flow does not catch propagates to the driver.
    """
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(value)
        except StopIteration as done:
            result: T = done.value
            return result
        try:
            return GuardedCall(guards[step.kind], step)
        except CamaraError as refused:
            refused.__traceback__ = None  # thrown into the flow; no frames kept alive
            value, error = None, refused
