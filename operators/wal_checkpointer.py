"""WAL checkpoints in a thread of their own, so the event loop's commits never wait for an fsync.

With ``journal_mode=WAL`` and ``synchronous=NORMAL`` a commit appends to the write-ahead log
without syncing it; only a checkpoint (copying the log back into the database file) syncs,
twice. SQLite runs that checkpoint by itself inside whichever commit takes the log past
``wal_autocheckpoint`` pages, so about one group commit of the gateway in a hundred carried
the copy and both fsyncs on the event loop: 2 ms and more, up to 10 to 66 ms in
``benchmarks/gateway_throughput.py``, where the others took a third of a millisecond.

:class:`WalCheckpointer` runs passive checkpoints from a daemon thread with its own
connection instead, whenever the operator's connection has written about as much as SQLite's
threshold would let through. The connection's commits wake the thread; it runs no timer,
which on this machine cost 80 to 130 µs of CPU a wake-up, 4 to 7 ms a second at 50 Hz, in
every replica. A passive checkpoint takes no lock a writer needs, and the sqlite3 module lets
go of the GIL while SQLite works, so the loop goes on serving while the thread copies and
syncs. Durability is unchanged (WAL with ``synchronous=NORMAL`` survives a
process crash either way; a power cut may lose the last commits either way); what moves is
who waits for the disk.

The connection's own threshold is raised, not removed (:data:`BACKSTOP_PAGES`). A writer
starts the log over only once a checkpoint has copied every frame in it; under writes that
never pause, each checkpoint finds new frames behind the ones it copied, and the log would
grow without end. At the backstop a commit checkpoints on the loop as before, and the log
starts over: under a steady stream of writes that is one such commit per 10,000 pages instead
of one per 1000, with less left to copy, as the thread has copied most of it already. The log
file keeps the size it reached (about 40 MB, more while a long reader such as
``ogsim reconcile`` holds an old snapshot); SQLite reuses it from its start.

Each replica (each :class:`~operators.storage.Database` connection) runs its own thread, so
that a process whose replica shares the file with another still checkpoints what it writes;
two threads on one file take turns, the second finding the checkpoint busy.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass

from .storage import Database

__all__ = ["BACKSTOP_PAGES", "CheckpointStats", "WalCheckpointer"]

log = logging.getLogger(__name__)

DEFAULT_ROWS = 250
"""Rows written (inserted, updated, deleted) since the last checkpoint that make the next one
due: a usage event with its stored answer and its indexes is about three pages of log, so
about as much as SQLite's own threshold (1000 pages). A checkpoint syncs twice, so it waits
for that much rather than running on a timer: an operator serving a few calls a second would
otherwise fsync fifty times a second."""

BACKSTOP_PAGES = 10_000
"""The connection's own checkpoint threshold while the thread runs (SQLite's is 1000)."""

RETRY_FIRST = 0.02
RETRY_MAX = 1.0
"""Wall seconds before a due checkpoint that failed (or found the file busy) is tried again,
doubling from the first to the last: not at every commit, which would retry thousands of
times a second while the file stays locked."""


@dataclass
class CheckpointStats:
    """What the thread has done, for logs and tests."""

    checkpoints: int = 0
    """Checkpoints that ran (whether or not they could copy every frame)."""
    partial: int = 0
    """Checkpoints that could not copy every frame (a reader still needed some)."""
    busy: int = 0
    """Rounds that found another connection checkpointing the file."""
    failures: int = 0
    wakeups: int = 0
    """Times a commit woke the thread (once a checkpoint was due)."""
    largest_log: int = 0
    """The most frames a checkpoint found in the log: near :data:`BACKSTOP_PAGES` when
    commits had to checkpoint on the loop."""


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``db``'s file once its connection has written
    ``rows`` rows since the last one, from :meth:`start` until :meth:`stop` (the operator's
    lifespan). ``enabled=False`` leaves the checkpoints to the commits, as SQLite does by
    itself (the gateway benchmark compares the two)."""

    def __init__(self, db: Database, *, rows: int = DEFAULT_ROWS, enabled: bool = True) -> None:
        self.db = db
        self.rows = rows
        self.enabled = enabled
        self.stats = CheckpointStats()
        self._stop = threading.Event()
        self._due = threading.Event()
        """Set by a commit that took the rows written past ``rows`` (and by :meth:`stop`)."""
        self._thread: threading.Thread | None = None
        self._threshold: int | None = None
        """The connection's own threshold before :meth:`start` raised it."""
        self._written = 0
        """The connection's rows written when the last checkpoint was taken (or due)."""
        self._failing = False
        self._stopping = threading.Lock()
        """Held by :meth:`stop` and the hand-back, which a dying thread may run meanwhile."""

    @property
    def running(self) -> bool:
        """Whether the thread is checkpointing (False once it has stopped or died)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Take checkpoints over from the connection's commits (a no-op for ``:memory:``)."""
        if not self.enabled or self.db.path == ":memory:":
            return
        if self._thread is not None:
            if self._thread.is_alive():
                return
            self.stop()  # it died (and handed back): start afresh
        if self.db.committed is not None:
            raise RuntimeError(f"{self.db.path}: another checkpointer watches these commits")
        connection = sqlite3.connect(self.db.path, check_same_thread=False)
        try:
            self._threshold = self.db.set_autocheckpoint(BACKSTOP_PAGES)
        except BaseException:
            connection.close()
            raise
        self._stop.clear()
        self._due.clear()
        self._written = self.db.rows_written()
        self.db.committed = self._committed
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name=f"wal-checkpoint {self.db.path}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its last checkpoint and hand checkpoints back to the commits.

        Blocks for that last checkpoint (a copy and two fsyncs): the operator calls it from a
        worker thread, not on its event loop."""
        with self._stopping:
            thread = self._thread
            if thread is None:
                return
            self._stop.set()
            self._due.set()
            try:
                thread.join()
            finally:
                self._thread = None
                self._hand_back()

    def is_due(self, written: int | None = None) -> bool:
        """Whether the connection wrote ``rows`` rows since the last checkpoint (``written``:
        its count, read now if not given; a count that went backwards wrapped: SQLite keeps it
        in 32 bits, so that is due too)."""
        if written is None:
            written = self.db.rows_written()
        return not 0 <= written - self._written < self.rows

    def round(self, connection: sqlite3.Connection) -> bool:
        """Checkpoint if one is due; whether one was (taken or not)."""
        return self._round(connection) is not None

    def _round(self, connection: sqlite3.Connection) -> bool | None:
        """None when no checkpoint is due; else whether the due one was taken."""
        written = self.db.rows_written()
        if not self.is_due(written):
            return None
        if not self.checkpoint(connection):
            return False
        self._written = written
        return True

    def checkpoint(self, connection: sqlite3.Connection) -> bool:
        """One passive checkpoint: copy back what no reader still needs, and sync. False when
        it could not run (the file failed, or another connection was checkpointing it)."""
        try:
            busy, frames, copied = connection.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
        except sqlite3.Error:  # a locked or failing file: the next round tries again
            self.stats.failures += 1
            if not self._failing:  # once per run of failures, not at every commit
                log.exception("%s: WAL checkpoint failed", self.db.path)
            self._failing = True
            return False
        self._failing = False
        if busy or frames < 0:  # another connection is checkpointing the file right now
            self.stats.busy += 1
            return False
        self.stats.checkpoints += 1
        self.stats.partial += int(copied < frames)
        self.stats.largest_log = max(self.stats.largest_log, frames)
        return True

    def _committed(self) -> None:
        """On the writer's thread, after each commit: a few hundred nanoseconds, and a
        wake-up once a checkpoint is due."""
        if not self._due.is_set() and self.is_due():
            self.stats.wakeups += 1
            self._due.set()

    def _hand_back(self) -> None:
        """The commits' own threshold back, and their hook off (once, whoever comes first)."""
        if self.db.committed == self._committed:
            self.db.committed = None
        threshold, self._threshold = self._threshold, None
        if threshold is not None:
            self.db.set_autocheckpoint(threshold)

    def _run(self, connection: sqlite3.Connection) -> None:
        retry = 0.0  # seconds before a failed checkpoint is tried again; 0: wait for a commit
        try:
            while True:
                if retry:
                    self._stop.wait(retry)
                else:
                    self._due.wait()
                self._due.clear()
                if self._stop.is_set():
                    break
                # Only a checkpoint that could not be taken waits to be tried again. Rows
                # written while one was being taken already set ``_due`` by their commits.
                missed = self._round(connection) is False
                retry = min(max(retry * 2, RETRY_FIRST), RETRY_MAX) if missed else 0.0
            self.checkpoint(connection)  # what the last commits wrote, before handing back
        except Exception:  # a bug, not the file: the commits must checkpoint again
            log.exception("%s: the WAL checkpointer stopped", self.db.path)
            if self._stopping.acquire(blocking=False):  # else stop() is joining: it hands back
                try:
                    self._hand_back()
                finally:
                    self._stopping.release()
        finally:
            connection.close()
