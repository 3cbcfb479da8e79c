"""The request buffer: bounded concurrency plus a bounded FIFO waiting room with a maximum wait.

Pure bookkeeping: nothing here waits. ``request()`` answers at once with a ticket that is
RUNNING, WAITING or REJECTED; the caller parks a WAITING ticket on its own primitive (an asyncio
future live, a SimPy event simulated) and wakes the tickets that ``release`` promotes. A full
room means an immediate rejection, never a hang.

resilience4j mapping: ``max_concurrent`` is the semaphore bulkhead's ``maxConcurrentCalls``;
``max_wait`` its ``maxWaitDuration`` (0, the default there, fails fast when all slots are busy,
and so does ``max_wait=0`` or ``max_waiting=0`` here); ``max_waiting`` is the thread-pool
bulkhead's ``queueCapacity``, which the semaphore variant lacks (its waiters are unbounded).

Waiting time is enforced either by the caller's own timer, which calls ``cancel`` at
``ticket.deadline``, or by calling ``expire()``; ``release`` promotes the oldest waiter
regardless of its age, so the two realisations agree on who runs next.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from enum import StrEnum

from operators.types import Clock

__all__ = ["RequestBuffer", "Ticket", "TicketState"]


class TicketState(StrEnum):
    """Where a request stands in the buffer."""

    RUNNING = "RUNNING"
    WAITING = "WAITING"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    RELEASED = "RELEASED"


# Members as module constants: reading an Enum member off its class costs far more than a global.
_RUNNING = TicketState.RUNNING
_WAITING = TicketState.WAITING
_REJECTED = TicketState.REJECTED
_EXPIRED = TicketState.EXPIRED
_CANCELLED = TicketState.CANCELLED
_RELEASED = TicketState.RELEASED


class Ticket:
    """A request's handle (not a record): its state moves only as the buffer decides."""

    __slots__ = ("_admitted_at", "_deadline", "_id", "_requested_at", "_state")

    def __init__(
        self, ticket_id: int, state: TicketState, requested_at: float, deadline: float
    ) -> None:
        self._id = ticket_id
        self._state = state
        self._requested_at = requested_at
        self._deadline = deadline
        self._admitted_at: float | None = requested_at if state is _RUNNING else None

    @property
    def id(self) -> int:
        """Sequence number, unique within its buffer, increasing in request order."""
        return self._id

    @property
    def state(self) -> TicketState:
        """The current state."""
        return self._state

    @property
    def requested_at(self) -> float:
        """Clock time of the request."""
        return self._requested_at

    @property
    def deadline(self) -> float:
        """Clock time after which a waiter expires; the caller's timer fires here."""
        return self._deadline

    @property
    def admitted_at(self) -> float | None:
        """Clock time it started running, or None if it never ran."""
        return self._admitted_at

    @property
    def waited(self) -> float | None:
        """Seconds spent in the waiting room before running, or None if it never ran."""
        return None if self._admitted_at is None else self._admitted_at - self._requested_at

    def __repr__(self) -> str:
        return f"Ticket(id={self._id}, state={self._state}, requested_at={self._requested_at})"


class RequestBuffer:
    """Runs at most ``max_concurrent`` requests and parks at most ``max_waiting`` more."""

    def __init__(
        self, max_concurrent: int, max_waiting: int, max_wait: float, clock: Clock
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent!r}")
        if max_waiting < 0:
            raise ValueError(f"max_waiting must not be negative, got {max_waiting!r}")
        if max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {max_wait!r}")
        self._max_concurrent = max_concurrent
        self._max_waiting = max_waiting if max_wait > 0 else 0
        self._max_wait = max_wait
        self._clock = clock
        self._ids = itertools.count(1)
        self._running = 0
        self._waiting: OrderedDict[int, Ticket] = OrderedDict()

    @property
    def running(self) -> int:
        """Requests holding a slot."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests in the waiting room."""
        return len(self._waiting)

    def request(self) -> Ticket:
        """Admit now, park in the waiting room, or reject at once when the room is full."""
        now = self._clock()
        ticket_id = next(self._ids)
        deadline = now + self._max_wait
        if self._running < self._max_concurrent and not self._waiting:
            self._running += 1
            return Ticket(ticket_id, _RUNNING, now, deadline)
        if len(self._waiting) < self._max_waiting:
            ticket = Ticket(ticket_id, _WAITING, now, deadline)
            self._waiting[ticket_id] = ticket
            return ticket
        return Ticket(ticket_id, _REJECTED, now, deadline)

    def _promote(self) -> list[Ticket]:
        # Called on most releases under load: the loop works on locals, one clock read.
        waiting = self._waiting
        running, limit = self._running, self._max_concurrent
        if not waiting or running >= limit:
            return []
        now = self._clock()
        promoted: list[Ticket] = []
        while waiting and running < limit:
            _, ticket = waiting.popitem(last=False)
            ticket._state = _RUNNING
            ticket._admitted_at = now
            running += 1
            promoted.append(ticket)
        self._running = running
        return promoted

    def release(self, ticket: Ticket) -> list[Ticket]:
        """Free the slot of a finished request; returns the waiters now RUNNING, to be woken."""
        if ticket._state is not _RUNNING:
            raise ValueError(f"only a RUNNING ticket can be released, not {ticket!r}")
        ticket._state = _RELEASED
        self._running -= 1
        if not self._waiting:
            return []  # nobody to promote: what _promote() answers, without the call
        return self._promote()

    def cancel(self, ticket: Ticket) -> list[Ticket]:
        """Withdraw a waiter that gave up; a ticket already RUNNING is released instead."""
        if ticket._state is _WAITING:
            del self._waiting[ticket._id]
            ticket._state = _CANCELLED
            return []
        if ticket._state is _RUNNING:
            return self.release(ticket)
        return []

    def expire(self) -> list[Ticket]:
        """Remove the waiters that have waited longer than ``max_wait``, oldest first."""
        now = self._clock()
        expired: list[Ticket] = []
        while self._waiting:
            ticket = next(iter(self._waiting.values()))
            if now - ticket._requested_at <= self._max_wait:
                break
            self._waiting.popitem(last=False)
            ticket._state = _EXPIRED
            expired.append(ticket)
        return expired
