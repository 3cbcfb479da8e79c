"""Database.version: the stamp the read caches compare, and the event-loop turn it is kept for."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from operators.storage import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY, revoked INTEGER)"


def _pair(tmp_path: Path) -> tuple[Database, Database]:
    """Two replicas' handles on one file (two connections, as two gateway processes)."""
    path = str(tmp_path / "shared.sqlite3")
    first, second = Database(path), Database(path)
    first.ensure_schema(SCHEMA)
    second.ensure_schema(SCHEMA)
    return first, second


def test_a_write_through_another_handle_moves_the_stamp_at_once(tmp_path: Path) -> None:
    first, second = _pair(tmp_path)

    async def within_one_turn() -> None:
        before = first.version("grants")
        assert first.version("grants") == before  # read once, kept for the turn
        second.execute("INSERT INTO grants (revoked) VALUES (1)")  # no await in between
        assert first.version("grants") != before

    asyncio.run(within_one_turn())
    first.close()
    second.close()


def test_another_process_commit_is_seen_from_the_next_turn(tmp_path: Path) -> None:
    first, second = _pair(tmp_path)
    outside = sqlite3.connect(first.path, isolation_level=None)  # not a Database: no notice

    async def across_turns() -> None:
        before = first.version("grants")
        outside.execute("INSERT INTO grants (revoked) VALUES (1)")
        assert first.version("grants") == before  # the same turn: as if it landed later
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert first.version("grants") != before

    asyncio.run(across_turns())
    before = first.version("grants")  # no event loop: asked every time
    outside.execute("INSERT INTO grants (revoked) VALUES (0)")
    assert first.version("grants") != before
    outside.close()
    first.close()
    second.close()


def test_own_writes_move_the_table_counter(tmp_path: Path) -> None:
    first, _ = _pair(tmp_path)
    before = first.version("grants")
    with first.transaction():
        first.execute("UPDATE grants SET revoked = 1")
    assert first.version("grants")[1] == before[1] + 1
    memory = Database()
    assert memory.version("grants") == (0, 0)


def test_a_commit_elsewhere_to_another_table_leaves_the_stamp(tmp_path: Path) -> None:
    """Two data centres over one file: the other site's usage events must not empty this
    site's grant caches, while its writes to the grants still do."""
    first, second = _pair(tmp_path)
    second.ensure_schema("CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY)")
    second.execute("INSERT INTO grants (revoked) VALUES (0)")
    before = first.version("grants")
    second.execute("INSERT INTO usage DEFAULT VALUES")
    assert first.version("grants") == before
    second.execute("UPDATE grants SET revoked = 1")  # a revocation by the other site
    moved = first.version("grants")
    assert moved != before
    second.execute("INSERT INTO grants (revoked) VALUES (0)")
    assert first.version("grants") != moved
    second.execute("DELETE FROM grants")
    assert first.version("grants") != moved
    first.close()
    second.close()


def test_a_table_first_asked_about_inside_a_transaction_counts_every_commit(
    tmp_path: Path,
) -> None:
    """Triggers made inside a transaction could be rolled back with it: until a stamp is
    asked outside one, any other connection's commit moves it."""
    first, second = _pair(tmp_path)
    second.ensure_schema("CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY)")
    with first.transaction():
        inside = first.version("grants")
    second.execute("INSERT INTO usage DEFAULT VALUES")
    outside = first.version("grants")  # watched from here on
    assert outside != inside
    second.execute("INSERT INTO usage DEFAULT VALUES")
    assert first.version("grants") == outside
    first.close()
    second.close()


def test_a_table_made_again_elsewhere_is_watched_again(tmp_path: Path) -> None:
    """Another process renames, drops or makes a table again (its triggers go with it):
    the stamp moves, and the table's later writes still move it."""
    first, _ = _pair(tmp_path)
    outside = sqlite3.connect(first.path, isolation_level=None)
    before = first.version("grants")
    outside.execute("ALTER TABLE grants RENAME TO grants_away")
    renamed = first.version("grants")
    assert renamed != before
    outside.execute("DROP TABLE grants_away")
    outside.execute(SCHEMA)
    made_again = first.version("grants")
    assert made_again != renamed
    outside.execute("INSERT INTO grants (revoked) VALUES (1)")
    assert first.version("grants") != made_again
    outside.close()
    first.close()


def test_a_table_renamed_away_takes_its_triggers_and_the_new_one_gets_its_own(
    tmp_path: Path,
) -> None:
    """A table renamed and kept takes its triggers along; the table made under the old name
    is watched on its own (writes to it elsewhere move the stamp)."""
    first, _ = _pair(tmp_path)
    outside = sqlite3.connect(first.path, isolation_level=None)
    first.version("grants")
    outside.execute("ALTER TABLE grants RENAME TO grants_old")
    outside.execute(SCHEMA)
    made_again = first.version("grants")  # the schema moved: the triggers are checked again
    outside.execute("INSERT INTO grants (revoked) VALUES (1)")
    assert first.version("grants") != made_again
    tables = {
        row[0]
        for row in outside.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE 'ogsim_table_versions_grants_%'"
        )
    }
    assert tables == {"grants"}
    outside.close()
    first.close()


def test_a_rolled_back_write_leaves_no_stamp_a_cache_could_match(tmp_path: Path) -> None:
    """A read after an uncommitted write sees that row; once the transaction is undone, the
    stamp it was cached under must never come back."""
    first, second = _pair(tmp_path)
    memory = Database()
    memory.ensure_schema(SCHEMA)
    for db in (first, memory):
        db.version("grants")  # watched from here on
        try:
            with db.transaction():
                db.execute("INSERT INTO grants (id, revoked) VALUES (1, 0)")
                inside = db.version("grants")
                raise LookupError("the call failed after its write")
        except LookupError:
            pass
        after = db.version("grants")
        assert after != inside
        db.execute("INSERT INTO grants (id, revoked) VALUES (2, 0)")  # counters move on
        assert db.version("grants") != inside
    second.close()


def test_a_rolled_back_savepoint_moves_the_stamp(tmp_path: Path) -> None:
    """The group commit undoes one failed call's writes with ROLLBACK TO a savepoint."""
    first, _ = _pair(tmp_path)
    first.version("grants")
    with first.transaction():
        first.execute("SAVEPOINT call")
        first.execute("INSERT INTO grants (id, revoked) VALUES (1, 0)")
        inside = first.version("grants")
        first.execute("ROLLBACK TO call")
        first.execute("RELEASE call")
    assert first.version("grants") != inside
    assert first.execute("UPDATE grants SET revoked = 1") == 0  # the row was never kept


def test_a_transaction_sqlite_undid_by_itself_moves_the_stamp(tmp_path: Path) -> None:
    """SQLite rolls a whole transaction back on its own on some errors (a full disk, I/O,
    ``INSERT OR ROLLBACK``): the caller gets that error, not a failed ROLLBACK's, and the
    stamp read after the transaction's first write never comes back."""
    first, _ = _pair(tmp_path)
    first.version("grants")
    with pytest.raises(sqlite3.IntegrityError), first.transaction():
        first.execute("INSERT INTO grants (id, revoked) VALUES (1, 0)")
        inside = first.version("grants")
        first.execute("INSERT OR ROLLBACK INTO grants (id, revoked) VALUES (1, 0)")
    assert not first.in_transaction
    assert first.version("grants") != inside
    assert first.execute("UPDATE grants SET revoked = 1") == 0  # nothing was kept


def test_returning_commits_its_write_and_moves_the_stamp(tmp_path: Path) -> None:
    """A check-and-change in one statement: its rows back, committed for the other replica
    (so it may write the row at once), and this handle's caches told."""
    first, second = _pair(tmp_path)
    first.insert("INSERT INTO grants (id, revoked) VALUES (1, 0)")
    before = first.version("grants")
    rows = first.returning("UPDATE grants SET revoked = 1 WHERE id = 1 AND revoked = 0"
                           " RETURNING id")
    assert [row["id"] for row in rows] == [1]
    assert first.version("grants") != before
    assert second.execute("UPDATE grants SET revoked = 2 WHERE revoked = 1") == 1
    assert first.returning("UPDATE grants SET revoked = 1 WHERE revoked = 0 RETURNING id") == []
    first.close()
    second.close()
