"""The activity log: milestones appended in batches, read back by time; "first" milestones kept
once across restarts and replicas; owners filled in at write; nothing lost on a failed write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from operators.analytics.activity_log import ActivityLog
from operators.analytics.records import Activity
from operators.storage import Database

START = 1_790_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FailingDatabase(Database):
    failing = False

    def transaction(self):  # type: ignore[no-untyped-def]
        if self.failing:
            raise OSError("disk full")
        return super().transaction()


def test_milestones_are_appended_and_read_back_by_time(tmp_path: Path) -> None:
    clock = FakeClock()
    log = ActivityLog(Database(str(tmp_path / "op.db")), clock)
    log.note("signed_up", developer_id="dev-1", org_id="org-1")
    clock.advance(10)
    log.note(
        "application_created",
        developer_id="dev-1",
        org_id="org-1",
        client_id="app-1",
        detail="Fraud checks",
    )
    clock.advance(10)
    log.record(
        Activity(START + 20, "plan_changed", "dev-1", "org-1", "app-1", "sim-swap", "enterprise")
    )
    assert log.read() == [], "nothing is written before a flush"
    assert log.flush() == 3 and log.pending == 0
    kinds = [a.kind for a in log.read()]
    assert kinds == ["signed_up", "application_created", "plan_changed"]
    assert [a.kind for a in log.read(START + 10, START + 20)] == ["application_created"]
    assert log.read(START + 20)[0].detail == "enterprise"
    rows = log.read_rows()
    assert [a.kind for _, a in log.read_rows(after_id=rows[0][0])] == kinds[1:]
    assert [a.kind for a in log.developer_activities("dev-1")] == kinds
    assert log.developer_activities("dev-2") == []


def test_firsts_are_kept_once_across_restarts_and_replicas(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "shared.db")
    one, two = ActivityLog(Database(path), clock), ActivityLog(Database(path), clock)
    one.first_token("app-1")
    one.first_token("app-1")
    assert one.pending == 1, "a process notes a first once"
    one.first_success("app-1", "sim-swap")
    one.first_success("app-1", "kyc-match")
    two.first_token("app-1")  # another replica saw it too
    two.first_success("app-1", "sim-swap")
    one.flush()
    clock.advance(5)
    two.flush()
    restarted = ActivityLog(Database(path), clock)
    restarted.first_token("app-1")
    restarted.first_token("app-2")
    restarted.note("signed_up", developer_id="dev-1", org_id="org-1")
    restarted.note("signed_up", developer_id="dev-1", org_id="org-1")  # not a first: kept
    restarted.flush()
    found = [(a.kind, a.client_id, a.api, a.at) for a in restarted.read()]
    assert found == [
        ("first_token", "app-1", "", START),
        ("first_success", "app-1", "sim-swap", START),
        ("first_success", "app-1", "kyc-match", START),
        ("first_token", "app-2", "", START + 5),
        ("signed_up", "", "", START + 5),
        ("signed_up", "", "", START + 5),
    ]


def test_owners_are_filled_in_at_write(tmp_path: Path) -> None:
    owners = {"app-1": ("dev-1", "org-1")}
    log = ActivityLog(Database(str(tmp_path / "op.db")), FakeClock(), owner_of=owners.get)
    log.first_token("app-1")
    log.first_token("admin-registered")
    log.note("key_generated", developer_id="dev-9", org_id="org-9", client_id="app-1")
    log.flush()
    found = [(a.client_id, a.developer_id, a.org_id) for a in log.read()]
    assert found == [
        ("app-1", "dev-1", "org-1"),
        ("admin-registered", "", ""),
        ("app-1", "dev-9", "org-9"),
    ]


def test_a_failed_write_keeps_the_milestones_in_order(tmp_path: Path) -> None:
    db = FailingDatabase(str(tmp_path / "op.db"))
    clock = FakeClock()
    log = ActivityLog(db, clock)
    log.note("signed_up", developer_id="dev-1", org_id="org-1")
    db.failing = True
    with pytest.raises(OSError):
        log.flush()
    assert asyncio.run(log.flush_soon()) == 0
    clock.advance(1)
    log.note("deactivated", developer_id="dev-1", org_id="org-1")
    db.failing = False
    assert log.flush() == 2
    assert [a.kind for a in log.read()] == ["signed_up", "deactivated"]


async def test_the_writer_flushes_in_the_background_and_at_stop(tmp_path: Path) -> None:
    log = ActivityLog(Database(str(tmp_path / "op.db")), FakeClock(), interval=0.05)
    await log.start()
    log.note("signed_up", developer_id="dev-1", org_id="org-1")
    for _ in range(400):
        if log.read():
            break
        await asyncio.sleep(0.025)
    assert len(log.read()) == 1
    log.interval = 3600.0
    log.note("deactivated", developer_id="dev-1", org_id="org-1")
    await log.stop()
    assert [a.kind for a in log.read()] == ["signed_up", "deactivated"]
