"""Protection of one backend: load shedder, circuit breaker and request buffer, in that order.

A :class:`BackendGuard` is pure bookkeeping over the policy objects of
:mod:`operators.policies`; it never waits. ``admit`` answers at once with a ticket that runs
now or waits in the buffer, or raises ``503 UNAVAILABLE``. One call's use of it is written once
as :class:`operators.integrator.flow.GuardedCall`; the driver of each mode (asyncio or SimPy)
parks a waiting call on its own primitive and registers a waker that ``finish`` calls when the
ticket is promoted. So both modes take the very same admit/refuse decisions for the same
sequence of calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from operators.errors import CamaraError, gateway_timeout, unavailable
from operators.policies import (
    AdmissionShedder,
    CircuitBreaker,
    LoadShedder,
    NoShedding,
    RequestBuffer,
    Ticket,
    TicketState,
)
from operators.types import Clock

from .guard_settings import GuardSettings

__all__ = ["BackendGuard", "GuardSettings", "Outcome"]

_REJECTED = TicketState.REJECTED
"""A module constant: reading an Enum member off its class costs far more."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a guarded call ended, as the breaker and the shedder must learn it."""

    failed: bool
    duration: float


class BackendGuard:
    """One backend's breaker, buffer and shedder, with the wakers of its waiting calls."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        settings: GuardSettings | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        buffer: RequestBuffer | None = None,
        shedder: AdmissionShedder | None = None,
    ) -> None:
        s = settings or GuardSettings()
        self.name = name
        self.clock = clock
        self.settings = s
        # Read on every call; plain copies of the frozen settings' fields.
        self.max_concurrent = s.max_concurrent
        self.call_timeout = s.call_timeout
        self.breaker = breaker or CircuitBreaker(s.breaker, clock)
        self.buffer = buffer or RequestBuffer(s.max_concurrent, s.max_waiting, s.max_wait, clock)
        self.shedder: AdmissionShedder = shedder or (
            LoadShedder(s.shed_target) if s.shed_target is not None else NoShedding()
        )
        self._wakers: dict[int, Callable[[], None]] = {}
        self._probes: dict[int, int] = {}
        """Ticket id -> the breaker's HALF_OPEN stretch, for tickets admitted as its probes."""
        self.refused = 0

    def _refuse(self, why: str) -> CamaraError:
        self.refused += 1
        return unavailable(f"{self.name} unavailable: {why}")

    def admit(self) -> Ticket:
        """A RUNNING or WAITING ticket, or ``503 UNAVAILABLE`` at once (shed, open, full)."""
        if not self.shedder.admit(self.buffer.waiting, self.max_concurrent):
            raise self._refuse("load shed")
        breaker = self.breaker
        if not breaker.try_acquire_permission():
            raise self._refuse("circuit open")
        ticket = self.buffer.request()
        if ticket.state is _REJECTED:
            breaker.release_permission()
            raise self._refuse("request buffer full")
        episode = breaker.probe_episode()
        if episode is not None:
            self._probes[ticket.id] = episode
        return ticket

    def on_promotion(self, ticket: Ticket, waker: Callable[[], None]) -> None:
        """Register how to wake a WAITING ticket once a slot frees for it."""
        self._wakers[ticket.id] = waker

    def give_up(self, ticket: Ticket) -> CamaraError:
        """A waiter reached its deadline: leave the buffer and answer 503."""
        self.withdraw(ticket)
        return self._refuse("waited too long for a slot")

    def withdraw(self, ticket: Ticket) -> None:
        """The caller went away, waiting or running: free what it held and learn nothing."""
        self._wakers.pop(ticket.id, None)
        self._wake(self.buffer.cancel(ticket))
        # Only a probe frees a probe again, and only in its own HALF_OPEN stretch; a permit
        # taken while CLOSED has nothing to give back.
        episode = self._probes.pop(ticket.id, None) if self._probes else None
        if episode is not None:
            self.breaker.release_permission(episode)

    def finish(self, ticket: Ticket, outcome: Outcome) -> None:
        """Record how the call ended and free the slot for the next waiter."""
        self.end(ticket, outcome.failed, outcome.duration)

    def end(self, ticket: Ticket, failed: bool, duration: float) -> None:
        """:meth:`finish` without building an :class:`Outcome` (once per guarded call)."""
        # on_error/on_success, not the breaker's one recording step: they are its public
        # surface, which the simulation's parity test watches on the very instance.
        if failed:
            self.breaker.on_error(duration)
        else:
            self.breaker.on_success(duration)
            self.shedder.record_service_time(duration)
        if self._probes:
            self._probes.pop(ticket.id, None)
        promoted = self.buffer.release(ticket)
        if promoted:
            self._wake(promoted)

    def time_out(self, ticket: Ticket, duration: float) -> None:
        """A call that got no answer within :attr:`call_timeout`: a failure, and a service time
        of the whole timeout for the shedder (the call held its server at least that long;
        learning only from answers, behind a hung backend it kept the last fast answer's and
        admitted everyone). The timeout itself, not the measured wait, so the asyncio and the
        SimPy drivers, whose clocks round differently, feed it the same number."""
        self.shedder.record_service_time(self.call_timeout)
        self.end(ticket, True, duration)

    def timeout(self) -> CamaraError:
        return gateway_timeout(f"{self.name} did not answer within {self.call_timeout}s")

    def _wake(self, promoted: list[Ticket]) -> None:
        for ticket in promoted:
            waker = self._wakers.pop(ticket.id, None)
            if waker is not None:
                waker()
