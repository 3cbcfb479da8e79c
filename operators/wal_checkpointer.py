"""WAL checkpoints in a thread of their own, so the event loop's commits never wait for an fsync.

With ``journal_mode=WAL`` and ``synchronous=NORMAL`` a commit appends to the write-ahead log
without syncing it; only a checkpoint (copying the log back into the database file) syncs,
twice. SQLite runs that checkpoint by itself inside whichever commit takes the log past
``wal_autocheckpoint`` pages, so about one group commit of the gateway in a hundred carried
the copy and both fsyncs on the event loop: 2 ms and more, up to 10 to 66 ms in
``benchmarks/gateway_throughput.py``, where the others took a third of a millisecond.

:class:`WalCheckpointer` runs passive checkpoints from a daemon thread with its own
connection instead, every few tens of milliseconds: a passive checkpoint takes no lock a
writer needs, and the sqlite3 module lets go of the GIL while SQLite works, so the loop goes
on serving while the thread copies and syncs. Durability is unchanged (WAL with
``synchronous=NORMAL`` survives a process crash either way; a power cut may lose the last
commits either way); what moves is who waits for the disk.

The connection's own threshold is raised, not removed (:data:`BACKSTOP_PAGES`). A writer
starts the log over only once a checkpoint has copied every frame in it; under writes that
never pause, each checkpoint finds new frames behind the ones it copied, and the log would
grow without end. At the backstop a commit checkpoints as before, and the log starts over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass

from .storage import Database
from .types import Seconds

__all__ = ["CheckpointStats", "WalCheckpointer"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL: Seconds = 0.02
"""Wall seconds between two checkpoints: at the gateway's few thousand events per second
(about three pages each, over the table and its indexes) a checkpoint copies a few hundred
pages, about a millisecond's work, and the log stays below SQLite's own threshold."""

BACKSTOP_PAGES = 10_000
"""The connection's own checkpoint threshold while the thread runs (SQLite's is 1000)."""


@dataclass
class CheckpointStats:
    """What the thread has done: checkpoints run, how many left frames behind, failures."""

    checkpoints: int = 0
    partial: int = 0
    """Checkpoints that could not copy every frame (a reader still needed some)."""
    failures: int = 0


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``db``'s file every ``interval`` seconds,
    from :meth:`start` until :meth:`stop` (the operator's lifespan)."""

    def __init__(self, db: Database, *, interval: Seconds = DEFAULT_INTERVAL) -> None:
        self.db = db
        self.interval = interval
        self.stats = CheckpointStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Take checkpoints over from the connection's commits (a no-op for ``:memory:``)."""
        if self.db.path == ":memory:" or self.running:
            return
        connection = sqlite3.connect(self.db.path, check_same_thread=False)
        self._stop.clear()
        self.db.set_autocheckpoint(BACKSTOP_PAGES)
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name=f"wal-checkpoint {self.db.path}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its last checkpoint and hand checkpoints back to the commits."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self.db.set_autocheckpoint(None)

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        """One passive checkpoint: copy back what no reader still needs, and sync."""
        try:
            _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:  # a locked or failing file: the next round tries again
            self.stats.failures += 1
            if not self._failing:  # once per run of failures, not fifty times a second
                log.exception("%s: WAL checkpoint failed", self.db.path)
            self._failing = True
            return
        self._failing = False
        self.stats.checkpoints += 1
        self.stats.partial += int(copied < frames)

    def _run(self, connection: sqlite3.Connection) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.checkpoint(connection)
            self.checkpoint(connection)  # what the last commits wrote, before handing back
        finally:
            connection.close()
