"""Verification keys are cached, and refreshed when a token names a kid the cache lacks."""

from __future__ import annotations

from pathlib import Path

from operators.config import example_operator
from operators.identity import IdentityServer
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

from .conftest import FakeClock


def replica(path: str, clock: FakeClock) -> IdentityServer:
    config = example_operator(storage=path)
    db = Database(path)
    return IdentityServer(config, db, SubscriberBase(config, db, clock=clock), clock)


def test_a_key_rotated_by_another_replica_is_picked_up_on_unknown_kid(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "shared.sqlite3")
    first, second = replica(path, clock), replica(path, clock)
    old_kid = first.keys.active().kid
    assert first.keys.find(old_kid) is not None  # cache now warm
    new_key = second.rotate_keys()
    assert new_key.kid != old_kid
    assert first.keys.find("made-up-kid") is None
    clock.advance(first.keys.MIN_RELOAD_INTERVAL)  # reloads on unknown kids are rate-limited
    found = first.keys.find(new_key.kid)  # unknown to the cache: read again
    assert found is not None and found.kid == new_key.kid
    assert first.keys.find(old_kid) is not None  # retired, still within its retention


def test_retired_key_leaves_after_its_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    server = replica(str(tmp_path / "one.sqlite3"), clock)
    old_kid = server.keys.active().kid
    server.rotate_keys()
    clock.advance(server.keys.retention + 1)
    assert server.keys.find(old_kid) is None
