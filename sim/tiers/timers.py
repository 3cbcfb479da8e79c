"""Clocks and timers on a SimPy environment that run no Python frame of SimPy's own.

The tiers read the virtual time many times per call (every policy object takes a clock) and
schedule a timer for each service time. ``lambda: env.now`` costs two Python frames per read
(the lambda and SimPy's ``now`` property); :func:`clock` reads the same attribute through C
(``functools.partial(getattr, env, "_now")``). :func:`call_later` schedules a callback exactly
where ``env.timeout(delay).callbacks.append(callback)`` would (same time, same priority, the
next event id, so the order of events and every result stay the same) with a two-slot
timer instead of a :class:`simpy.Timeout`, whose constructor and ``schedule`` call cost more
than the callbacks they carry. SimPy's ``step`` asks an event for nothing else than
``callbacks``, ``_ok`` (and ``_value`` if it failed), so the timer is processed like any event.

These read SimPy's environment internals (``_now``, ``_queue``, ``_eid``), stable since
SimPy 3; ``tests/sim/scenario/test_timers.py`` holds them to ``env.timeout``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["Timer", "calendar", "call_later", "clock"]


def clock(env: simpy.Environment) -> Callable[[], float]:
    """``env.now`` as a clock for the policy objects, read without a Python frame."""
    return functools.partial(getattr, env, "_now")


def calendar(env: simpy.Environment, epoch: float) -> Callable[[], float]:
    """Epoch seconds at virtual time ``env.now`` (the operator's wall calendar)."""
    now = clock(env)

    def at() -> float:
        return epoch + now()

    return at


class Timer:
    """A scheduled callback: SimPy processes it as a triggered event; ``value`` is its payload.

    Made by :func:`call_later` only, which sets both slots (no ``__init__``: one frame less
    per event); it always succeeds. ``fn`` is its one callback: the engine's loop
    (:func:`sim.engine._run_until`) calls it straight away; SimPy's own ``step`` reads and
    clears ``callbacks``, a view of the same slot, so either loop processes a timer alike.
    """

    __slots__ = ("fn", "value")
    __deletable__ = ("fn",)  # the callbacks setter deletes it: mypyc must be told (build_compiled)

    _ok = True

    fn: Callable[[Timer], None]
    value: Any

    @property
    def callbacks(self) -> list[Callable[[Timer], None]] | None:
        """SimPy's view: the callback to run, or None once processed."""
        return [self.fn] if hasattr(self, "fn") else None

    @callbacks.setter
    def callbacks(self, callbacks: list[Callable[[Timer], None]] | None) -> None:
        if callbacks is not None:
            raise TypeError("a timer runs exactly one callback, set by call_later")
        del self.fn


_new_timer = Timer.__new__


def call_later(
    env: simpy.Environment, delay: float, callback: Callable[[Timer], None], value: Any = None
) -> None:
    """Call ``callback(timer)`` after ``delay`` virtual seconds (``timer.value`` is ``value``)."""
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    timer = _new_timer(Timer)
    timer.fn = callback
    timer.value = value
    queue: list[Any] = env._queue
    heappush(queue, (env._now + delay, NORMAL, next(env._eid), timer))
