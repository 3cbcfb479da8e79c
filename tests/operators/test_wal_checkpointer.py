"""The WAL checkpointer copies the log back into the database file from its own thread, so a
commit on the event loop no longer has to, and hands checkpoints back to the commits when it
stops."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from operators.operator import Operator
from operators.storage import Database
from operators.wal_checkpointer import BACKSTOP_PAGES, WalCheckpointer
from tests.operators.gateway.conftest import FakeClock, gateway_config

ROW = "x" * 5000
"""More than a page: each row's commit adds three or four frames to the log, so the 400 rows
the tests write take it past SQLite's own threshold (1000 pages), not past the backstop."""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database(str(tmp_path / "operator.db"))
    db.ensure_schema("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body TEXT)")
    yield db
    db.close()


def write(db: Database, rows: int) -> None:
    for _ in range(rows):
        db.insert("INSERT INTO rows (body) VALUES (?)", (ROW,))


def autocheckpoint(db: Database) -> int:
    row = db.one("PRAGMA wal_autocheckpoint")
    assert row is not None
    return int(row[0])


def file_size(db: Database) -> int:
    return Path(db.path).stat().st_size


def wait_for(condition: Callable[[], bool], bound: float = 20.0) -> bool:
    """Poll ``condition`` until it holds or a generous bound passes (no timed assertion)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_checkpoint_is_due_once_the_connection_wrote_its_rows(db: Database) -> None:
    db.set_autocheckpoint(BACKSTOP_PAGES)  # as the checkpointer sets it, without its thread
    checkpointer = WalCheckpointer(db, rows=400)
    connection = sqlite3.connect(db.path)
    try:
        before = file_size(db)
        write(db, 399)
        assert not checkpointer.round(connection)  # not yet: no fsync for a trickle
        assert file_size(db) == before  # the commits left every page in the log
        write(db, 1)
        assert checkpointer.round(connection)
        assert file_size(db) > before  # copied back into the database file
        assert not checkpointer.round(connection)  # nothing written since
    finally:
        connection.close()
    assert (checkpointer.stats.checkpoints, checkpointer.stats.failures) == (1, 0)


def test_the_thread_copies_the_log_back_that_no_commit_copies(db: Database) -> None:
    checkpointer = WalCheckpointer(db)
    checkpointer.start()
    try:
        before = file_size(db)
        write(db, 400)  # the 250th row's commit wakes the thread
        assert wait_for(lambda: file_size(db) > before)  # the thread copied the log back
    finally:
        checkpointer.stop()
    assert checkpointer.stats.failures == 0
    assert checkpointer.stats.checkpoints >= 1  # the thread has ended: its count is final
    assert db.one("SELECT COUNT(*) FROM rows")[0] == 400  # type: ignore[index]


def starts_and_hands_back(checkpointer: WalCheckpointer, db: Database) -> None:
    """Start it: it runs, the commits checkpoint only at the backstop; stop it: they do again."""
    checkpointer.start()
    try:
        assert checkpointer.running
        assert autocheckpoint(db) == BACKSTOP_PAGES
    finally:
        checkpointer.stop()
    assert not checkpointer.running
    assert autocheckpoint(db) == 1000  # the commits checkpoint again


def test_while_it_runs_commits_checkpoint_only_at_the_backstop(db: Database) -> None:
    assert autocheckpoint(db) == 1000  # SQLite's own threshold
    starts_and_hands_back(WalCheckpointer(db, rows=10**9), db)  # started, but never due


def test_stopping_restores_the_threshold_the_connection_had(db: Database) -> None:
    db.set_autocheckpoint(300)
    checkpointer = WalCheckpointer(db, rows=10**9)
    checkpointer.start()
    checkpointer.stop()
    assert autocheckpoint(db) == 300


def test_a_disabled_checkpointer_leaves_the_checkpoints_to_the_commits(db: Database) -> None:
    checkpointer = WalCheckpointer(db, enabled=False)
    checkpointer.start()
    assert not checkpointer.running
    assert autocheckpoint(db) == 1000
    checkpointer.stop()


def died(db: Database, monkeypatch: pytest.MonkeyPatch) -> WalCheckpointer:
    """A checkpointer whose thread met a bug in its first round and has ended."""
    checkpointer = WalCheckpointer(db, rows=1)

    def broken(_: sqlite3.Connection) -> bool:
        raise RuntimeError("a bug in a round")

    monkeypatch.setattr(checkpointer, "_round", broken)
    checkpointer.start()
    write(db, 1)  # due: the thread's first round
    assert wait_for(lambda: not checkpointer.running)
    return checkpointer


def test_a_thread_that_dies_hands_the_checkpoints_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = died(db, monkeypatch)
    assert autocheckpoint(db) == 1000  # the commits checkpoint again, not at the backstop
    checkpointer.stop()
    assert autocheckpoint(db) == 1000


def test_a_reader_on_an_old_snapshot_makes_a_checkpoint_partial(db: Database) -> None:
    write(db, 50)
    checkpointer = WalCheckpointer(db)
    first, second = sqlite3.connect(db.path), sqlite3.connect(db.path)
    try:
        # a reader holding an old snapshot: the checkpoint runs but cannot copy every frame
        first.execute("BEGIN")
        first.execute("SELECT COUNT(*) FROM rows").fetchone()
        write(db, 50)
        checkpointer.checkpoint(second)
        assert (checkpointer.stats.checkpoints, checkpointer.stats.partial) == (1, 1)
        assert checkpointer.stats.largest_log > 0
    finally:
        first.close()
        second.close()


def test_stopping_takes_a_last_checkpoint(db: Database) -> None:
    checkpointer = WalCheckpointer(db, rows=10**9)
    checkpointer.start()
    before = file_size(db)
    write(db, 400)
    assert file_size(db) == before  # past SQLite's threshold, short of the backstop
    checkpointer.stop()  # the last round copies what the last commits wrote
    assert file_size(db) > before
    assert checkpointer.stats.checkpoints == 1


def test_an_in_memory_database_has_no_log_to_checkpoint() -> None:
    db = Database()
    checkpointer = WalCheckpointer(db)
    checkpointer.start()
    assert not checkpointer.running
    checkpointer.stop()  # nothing to stop
    db.close()


def test_a_failing_checkpoint_is_counted_and_the_thread_goes_on(db: Database) -> None:
    checkpointer = WalCheckpointer(db)
    broken = sqlite3.connect(db.path)
    broken.close()
    checkpointer.checkpoint(broken)  # sqlite3 refuses a closed connection
    checkpointer.checkpoint(broken)
    assert checkpointer.stats.failures == 2
    assert checkpointer.stats.checkpoints == 0
    working = sqlite3.connect(db.path)
    try:
        checkpointer.checkpoint(working)
    finally:
        working.close()
    assert checkpointer.stats.checkpoints == 1


async def test_the_operator_checkpoints_in_its_lifespan(tmp_path: Path) -> None:
    config = gateway_config().model_copy(update={"storage": str(tmp_path / "op.db")})
    clock = FakeClock()
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    try:
        assert not operator.checkpoints.running
        await operator.start()
        try:
            assert operator.checkpoints.running
            assert autocheckpoint(operator.db) == BACKSTOP_PAGES
        finally:
            await operator.stop()
        assert not operator.checkpoints.running
        assert autocheckpoint(operator.db) == 1000
    finally:
        operator.close()


class _Busy:
    """A connection on which another connection is checkpointing: SQLite's answer is busy."""

    def execute(self, _: str) -> _Busy:
        return self

    def fetchone(self) -> tuple[int, int, int]:
        return (1, -1, -1)


def test_a_round_another_connection_keeps_busy_is_tried_again(db: Database) -> None:
    checkpointer = WalCheckpointer(db, rows=10)
    write(db, 10)
    assert checkpointer.round(_Busy())  # type: ignore[arg-type]
    assert (checkpointer.stats.busy, checkpointer.stats.checkpoints) == (1, 0)
    connection = sqlite3.connect(db.path)
    try:
        assert checkpointer.round(connection)  # still due: nothing was copied
        assert not checkpointer.round(connection)
    finally:
        connection.close()
    assert checkpointer.stats.checkpoints == 1


def test_a_count_that_wrapped_makes_a_checkpoint_due(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = WalCheckpointer(db, rows=250)
    monkeypatch.setattr(db, "rows_written", lambda: -(2**31) + 5)  # past 2**31 - 1 rows
    connection = sqlite3.connect(db.path)
    try:
        assert checkpointer.round(connection)
    finally:
        connection.close()


def test_a_checkpointer_whose_thread_died_starts_afresh(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = died(db, monkeypatch)
    monkeypatch.undo()
    starts_and_hands_back(checkpointer, db)


def test_the_commits_wake_the_thread_only_once_a_checkpoint_is_due(db: Database) -> None:
    checkpointer = WalCheckpointer(db, rows=400)
    checkpointer.start()
    try:
        assert db.committed is not None
        write(db, 399)
        assert checkpointer.stats.wakeups == 0  # no wake-up, no checkpoint for a trickle
        assert checkpointer.stats.checkpoints == 0
        write(db, 1)
        assert checkpointer.stats.wakeups == 1
        assert wait_for(lambda: checkpointer.stats.checkpoints == 1)
    finally:
        checkpointer.stop()
    assert db.committed is None  # the hook is off with the thread


def test_a_transaction_wakes_the_thread_once_at_its_commit(db: Database) -> None:
    checkpointer = WalCheckpointer(db, rows=10)
    checkpointer.start()
    try:
        with db.transaction():
            write(db, 20)
            assert checkpointer.stats.wakeups == 0  # nothing is committed yet
        assert checkpointer.stats.wakeups == 1
        assert wait_for(lambda: checkpointer.stats.checkpoints == 1)
    finally:
        checkpointer.stop()


def test_a_failing_checkpoint_is_retried_after_a_pause_not_at_every_commit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = WalCheckpointer(db, rows=10)
    attempts = [0]
    locked = [True]
    checkpoint = checkpointer.checkpoint

    def flaky(connection: sqlite3.Connection) -> bool:
        attempts[0] += 1
        return False if locked[0] else checkpoint(connection)

    monkeypatch.setattr(checkpointer, "checkpoint", flaky)
    checkpointer.start()
    try:
        write(db, 10)
        assert wait_for(lambda: attempts[0] >= 3)  # tried again with no commit coming
        write(db, 1000)  # a thousand commits while it stays locked
        assert attempts[0] < 100  # after pauses of 20 ms doubling, not a thousand times
        locked[0] = False
        assert wait_for(lambda: checkpointer.stats.checkpoints >= 1)
    finally:
        checkpointer.stop()


class _Timed(threading.Event):
    """The checkpointer's stop event, noting each pause it waits (its retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            self.pauses.append(timeout)
        return super().wait(timeout)


def test_rows_written_during_a_checkpoint_bring_the_next_at_once_not_a_retry(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady writes a checkpoint may take long enough for the next one to be due when
    it ends: that one runs straight away, with no pause kept for checkpoints that failed."""
    checkpointer = WalCheckpointer(db, rows=10)
    stop = checkpointer._stop = _Timed()
    checkpoint = checkpointer.checkpoint
    first = [True]

    def slow(connection: sqlite3.Connection) -> bool:
        if first[0]:
            first[0] = False
            write(db, 20)  # commits arriving while it copies and syncs
        return checkpoint(connection)

    monkeypatch.setattr(checkpointer, "checkpoint", slow)
    checkpointer.start()
    try:
        write(db, 10)
        assert wait_for(lambda: checkpointer.stats.checkpoints >= 2)
    finally:
        checkpointer.stop()
    assert stop.pauses == []
    assert checkpointer.stats.failures == checkpointer.stats.busy == 0


def test_one_database_has_one_checkpointer(db: Database) -> None:
    first = WalCheckpointer(db, rows=10**9)
    first.start()
    try:
        with pytest.raises(RuntimeError, match="another checkpointer"):
            WalCheckpointer(db).start()
        assert db.committed is not None
    finally:
        first.stop()
