"""The portal's password work (scrypt hashes and checks): a few threads and a bounded queue.

Each hash takes about 16 MiB and tens of milliseconds. Run on the event loop, a burst of them
stalls the CAMARA APIs the same loop serves; run in an unbounded pool, a flood of sign-ups
queues without limit, each queued request holding its connection and form while it waits.
So at most ``threads`` run at once and ``waiting`` more wait their turn; past that the portal
answers 503 with ``Retry-After`` (how long the queue ahead takes at the recent pace) at once,
the cheap answer an operator gives an overload, instead of a slow one for everybody.

The admission count is kept on the event loop (every caller awaits :meth:`PasswordWork.run`
from it, and a thread's end is handed back to the loop), so it needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .accounts import AccountError

THREADS = 2
"""Password hashes computed at once per portal: bounded, so a flood of sign-ins takes the
memory of two scrypt runs, not of forty threads'."""

WAITING = 16
"""Password requests that may wait for a thread; one more is answered 503 at once."""

FIRST_ESTIMATE = 0.1
"""Seconds one piece of work is assumed to take before any has been timed."""

T = TypeVar("T")


class PasswordsBusyError(AccountError):
    """Every thread is busy and the queue is full: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(503, "form", "The portal is busy checking other passwords. "
                                          f"Try again in {retry_after} {unit}.")
        self.retry_after = retry_after


class PasswordWork:
    """Runs password work off the event loop, refusing what would wait past the queue."""

    def __init__(self, threads: int = THREADS, waiting: int = WAITING) -> None:
        self.threads = threads
        self.waiting = waiting
        self.admitted = 0
        """Pieces of work running or waiting now."""
        self.mean_seconds = FIRST_ESTIMATE
        """Moving average of one piece of work's duration, for ``Retry-After``."""
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="portal-passwords")

    def check_room(self) -> None:
        """Raise :class:`PasswordsBusyError` unless one more piece of work would be admitted.

        Sign-in asks first, so a refused attempt is not counted by the login throttle.
        """
        if self.admitted >= self.threads + self.waiting:
            raise PasswordsBusyError(self.retry_after())

    def retry_after(self) -> int:
        """Whole seconds until the queue ahead has drained at the recent pace (at least 1)."""
        return max(1, math.ceil(self.admitted * self.mean_seconds / self.threads))

    async def run(self, work: Callable[..., T], *args: str) -> T:
        """``work(*args)`` in a password thread; its exception (an AccountError, say) is
        raised here. Raises :class:`PasswordsBusyError` when the queue is full.

        The slot is given back when the work ends, not when this call does: a request
        cancelled meanwhile (its client gone, a shutdown) leaves its hash running, and the
        bound counts it until it finishes (or, still waiting, is cancelled with it)."""
        self.check_room()
        loop = asyncio.get_running_loop()
        future = self._pool.submit(self._timed, work, *args)
        self.admitted += 1
        future.add_done_callback(lambda _: self._release_on(loop))
        return await asyncio.wrap_future(future)

    def _release_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the slot back on ``loop`` (called from the thread that ran the work)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody counts any more
            loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        self.admitted -= 1

    def _timed(self, work: Callable[..., T], *args: str) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            # two threads may update it at once; a lost update only skews an estimate
            self.mean_seconds += 0.2 * (time.perf_counter() - started - self.mean_seconds)

    def close(self) -> None:
        """Stop the threads; work still waiting is cancelled (its requests are going too)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
