"""Metering counts each billable call once, whatever the replays, and only when committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from operators.gateway.metering import UsageEvent, UsageLedger
from operators.storage import Database


def event(correlator: str, client: str = "app-1", api: str = "sim-swap") -> UsageEvent:
    return UsageEvent(client, correlator, api, "check", "free", 0.01, "EUR", 200, 1000.0)


def test_a_replayed_event_counts_once() -> None:
    ledger = UsageLedger(Database())
    assert ledger.record(event("c-1"))
    for _ in range(5):
        assert not ledger.record(event("c-1"))
    assert ledger.record(event("c-1", client="app-2"))  # keys are per client
    assert ledger.totals() == {("app-1", "sim-swap"): 1, ("app-2", "sim-swap"): 1}


def test_event_rolls_back_with_the_call_effect() -> None:
    db = Database()
    ledger = UsageLedger(db)
    with pytest.raises(RuntimeError), db.transaction():
        ledger.record(event("c-2"))
        raise RuntimeError("the call's effect failed after metering")
    assert ledger.events() == []


def test_outbox_publishes_each_event_and_survives_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "usage.sqlite3")
    ledger = UsageLedger(Database(path))
    for i in range(3):
        ledger.record(event(f"c-{i}"))
    ledger.mark_published(ledger.unpublished(limit=2), at=2000.0)
    reopened = UsageLedger(Database(path))
    assert [e.correlator for e in reopened.unpublished()] == ["c-2"]
    assert len(reopened.events("app-1")) == 3


async def test_group_commit_batches_concurrent_events_and_reports_each() -> None:
    import asyncio

    from operators.gateway.metering import GroupCommit

    db = Database()
    ledger = UsageLedger(db)
    commits = GroupCommit(ledger)
    transactions = 0
    original = db.transaction

    def counting_transaction():  # type: ignore[no-untyped-def]
        nonlocal transactions
        transactions += 1
        return original()

    db.transaction = counting_transaction  # type: ignore[method-assign]
    outcomes = await asyncio.gather(*(commits.record(event(f"g-{i % 5}")) for i in range(10)))
    assert outcomes.count(True) == 5 and outcomes.count(False) == 5
    assert transactions == 1
    assert len(ledger.events()) == 5


async def test_group_commit_failure_reaches_every_waiter() -> None:
    import asyncio

    from operators.gateway.metering import GroupCommit

    db = Database()
    ledger = UsageLedger(db)
    db.close()
    commits = GroupCommit(ledger)
    results = await asyncio.gather(
        commits.record(event("x-1")), commits.record(event("x-2")), return_exceptions=True
    )
    assert all(isinstance(r, Exception) for r in results)


def test_a_batch_fails_whole_when_sqlite_undoes_its_transaction() -> None:
    """One call's conflicting write is undone alone (its savepoint); a failure after which
    SQLite has rolled back the whole transaction by itself (here ``INSERT OR ROLLBACK``; live,
    a full disk or an I/O error) fails the batch with that error, and no event is left."""
    db = Database()
    db.ensure_schema("CREATE TABLE holds (id INTEGER PRIMARY KEY)")
    ledger = UsageLedger(db)
    conflict = (db, "INSERT INTO holds (id) VALUES (1)", ())
    outcomes = ledger.record_many(
        [(event("c-1"), b"", [conflict]), (event("c-2"), b"", [conflict])]
    )
    assert outcomes[0] is True and isinstance(outcomes[1], sqlite3.IntegrityError)
    assert [e.correlator for e in ledger.events()] == ["c-1"]

    undone = (db, "INSERT OR ROLLBACK INTO holds (id) VALUES (1)", ())
    with pytest.raises(sqlite3.IntegrityError):
        ledger.record_many(
            [(event("c-3"), b"", []), (event("c-4"), b"", [undone]), (event("c-5"), b"", [])]
        )
    assert [e.correlator for e in ledger.events()] == ["c-1"]
    assert not db.in_transaction


def test_a_call_whose_key_is_taken_leaves_no_writes() -> None:
    """A call recorded under a key another call took first is not billed, and its held
    writes (a QoD session's row, say) are undone with it: it did not happen."""
    db = Database()
    db.ensure_schema("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
    ledger = UsageLedger(db)
    first = (db, "INSERT INTO sessions (id) VALUES ('s-1')", ())
    second = (db, "INSERT INTO sessions (id) VALUES ('s-2')", ())
    outcomes = ledger.record_many(
        [(event("twin"), b"{}", [first]), (event("twin"), b"{}", [second])]
    )
    assert outcomes == [True, False]
    assert [row[0] for row in db.all("SELECT id FROM sessions")] == ["s-1"]


def test_a_replay_lookup_knows_a_key_whose_answer_was_dropped() -> None:
    db = Database()
    ledger = UsageLedger(db)
    ledger.record(event("c-1"), b'{"swapped": false}')
    kept = ledger.replay("app-1", "c-1")
    assert kept is not None and kept.body == b'{"swapped": false}'
    db.execute("UPDATE usage_events SET response = NULL")  # what housekeeping does
    dropped = ledger.replay("app-1", "c-1")
    assert dropped is not None and dropped.body is None and dropped.status == 200
    assert ledger.replay("app-1", "c-2") is None
