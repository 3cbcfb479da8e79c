"""The one loop that writes what the event loop gathers, in batches, off the event loop.

The call statistics, the usage buckets and the activity log each gather on the event loop
(a dictionary update or an append per call, nothing written there) and hand the database a
batch every ``interval`` seconds. :class:`BatchWriter` is what they share:

* the batch is swapped out on the event loop, so anything gathered while a batch is being
  written lands in the next batch, never in a written one;
* the write runs in a worker thread, in one transaction: all of the batch or none of it;
* a failed write puts the batch back (with whatever was gathered since) for the next try;
* :meth:`BatchWriter.stop` tells the background loop to finish (it is not cancelled, so no
  batch is cut in half), then writes what was gathered since on the calling thread.

A store subclasses it and says how to take, write and put back its batch, and what a batch
counts (calls, activities); how it gathers stays its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sized
from typing import ClassVar, Generic, TypeVar

__all__ = ["BatchWriter"]

Batch = TypeVar("Batch", bound=Sized)


class BatchWriter(ABC, Generic[Batch]):
    """Writes a store's pending batch every ``interval`` seconds once started, and at stop.

    ``interval`` may be changed while running: the next wait uses it.
    """

    noun: ClassVar[str] = "records"
    """What a failed write's log line says could not be written."""
    logger: ClassVar[logging.Logger] = logging.getLogger("ogsim")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    @abstractmethod
    def _take(self) -> Batch:
        """Swap the pending batch out for an empty one (on the event loop)."""

    @abstractmethod
    def _write(self, batch: Batch) -> None:
        """Write one batch in one transaction (any thread)."""

    @abstractmethod
    def _put_back(self, batch: Batch) -> None:
        """Return a batch that could not be written to the pending one (on the event loop)."""

    @abstractmethod
    def _count(self, batch: Batch) -> int:
        """What a batch holds, as :meth:`flush` reports it (calls, activities)."""

    def flush(self) -> int:
        """Write what is pending now, on this thread (at stop and close); what it held.
        A failed write keeps it pending and raises."""
        batch = self._take()
        if not len(batch):
            return 0
        try:
            self._write(batch)
        except BaseException:
            self._put_back(batch)
            raise
        return self._count(batch)

    async def flush_soon(self) -> int:
        """Write what is pending now in a worker thread; what it held, 0 when the write
        failed (logged; the batch stays pending for the next attempt)."""
        batch = self._take()
        if not len(batch):
            return 0
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception:
            self._put_back(batch)
            self.logger.exception("%s could not be written; kept for the next flush", self.noun)
            return 0
        return self._count(batch)

    async def start(self) -> None:
        """Flush every ``interval`` seconds in the background, until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._stopping = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(self._stopping))

    async def _run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            await self.flush_soon()

    async def stop(self) -> None:
        """Let the background writer finish its batch, then write whatever was gathered
        since."""
        task, stopping = self._task, self._stopping
        self._task = self._stopping = None
        if task is not None and stopping is not None:
            stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.flush()
