from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.policies import RequestBuffer, Ticket, TicketState
from tests.operators.policies.conftest import FakeClock

RUNNING, WAITING, REJECTED = TicketState.RUNNING, TicketState.WAITING, TicketState.REJECTED


def test_admits_up_to_max_concurrent_then_waits_then_rejects(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=2, max_waiting=2, max_wait=5.0, clock=fake_clock)
    states = [buffer.request().state for _ in range(5)]
    assert states == [RUNNING, RUNNING, WAITING, WAITING, REJECTED]
    assert (buffer.running, buffer.waiting) == (2, 2)


def test_release_promotes_waiters_in_fifo_order(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=3, max_wait=5.0, clock=fake_clock)
    first = buffer.request()
    waiters = [buffer.request() for _ in range(3)]
    fake_clock.advance(2.0)
    assert buffer.release(first) == [waiters[0]]
    assert waiters[0].state is RUNNING
    assert waiters[0].waited == pytest.approx(2.0)
    assert first.state is TicketState.RELEASED
    assert buffer.release(waiters[0]) == [waiters[1]]
    assert (buffer.running, buffer.waiting) == (1, 1)


def test_zero_max_wait_fails_fast_like_resilience4j(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=10, max_wait=0.0, clock=fake_clock)
    assert buffer.request().state is RUNNING
    assert buffer.request().state is REJECTED
    assert buffer.waiting == 0


def test_cancel_removes_a_waiter_and_keeps_the_order(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=3, max_wait=5.0, clock=fake_clock)
    running = buffer.request()
    a, b, c = (buffer.request() for _ in range(3))
    assert buffer.cancel(b) == []
    assert b.state is TicketState.CANCELLED
    assert buffer.waiting == 2
    assert buffer.release(running) == [a]
    assert buffer.release(a) == [c]


def test_cancel_of_a_promoted_ticket_releases_its_slot(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=2, max_wait=5.0, clock=fake_clock)
    first, second, third = buffer.request(), buffer.request(), buffer.request()
    buffer.release(first)  # second runs, but its caller timed out at the same instant
    assert buffer.cancel(second) == [third]
    assert buffer.cancel(second) == []  # already done: nothing happens


def test_expire_removes_waiters_older_than_max_wait(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=3, max_wait=5.0, clock=fake_clock)
    buffer.request()
    old = buffer.request()
    fake_clock.advance(3.0)
    young = buffer.request()
    fake_clock.advance(2.0)
    assert buffer.expire() == []  # exactly max_wait is not older than it
    assert old.deadline == 5.0
    fake_clock.advance(0.5)
    assert buffer.expire() == [old]
    assert old.state is TicketState.EXPIRED
    assert (buffer.waiting, young.state) == (1, WAITING)


def test_release_of_a_ticket_not_running_is_an_error(fake_clock: FakeClock) -> None:
    buffer = RequestBuffer(max_concurrent=1, max_waiting=1, max_wait=5.0, clock=fake_clock)
    running, waiting = buffer.request(), buffer.request()
    with pytest.raises(ValueError):
        buffer.release(waiting)
    buffer.release(running)
    with pytest.raises(ValueError):
        buffer.release(running)


@given(
    max_concurrent=st.integers(1, 4),
    max_waiting=st.integers(0, 4),
    steps=st.lists(
        st.tuples(st.sampled_from(["request", "release", "cancel", "expire"]), st.integers(0, 20)),
        min_size=20,
        max_size=120,
    ),
)
def test_never_more_than_max_running_or_max_waiting(
    max_concurrent: int, max_waiting: int, steps: list[tuple[str, int]]
) -> None:
    clock = FakeClock()
    buffer = RequestBuffer(max_concurrent, max_waiting, max_wait=3.0, clock=clock)
    tickets: list[Ticket] = []
    for op, pick in steps:
        clock.advance(0.5)
        if op == "request":
            tickets.append(buffer.request())
        elif op == "expire":
            buffer.expire()
        elif tickets:
            ticket = tickets[pick % len(tickets)]
            if op == "release" and ticket.state is RUNNING:
                buffer.release(ticket)
            elif op == "cancel":
                buffer.cancel(ticket)
        running = [t for t in tickets if t.state is RUNNING]
        waiting = [t for t in tickets if t.state is WAITING]
        assert buffer.running == len(running) <= max_concurrent
        assert buffer.waiting == len(waiting) <= max_waiting
        # Nobody waits while a slot is free.
        assert not waiting or len(running) == max_concurrent
