"""A database written before interactive handsets gains the ``pressed`` column on start."""

from __future__ import annotations

from pathlib import Path

from operators.config import example_operator
from operators.storage import Database

from .conftest import build_operator

OLD_SCHEMA = """
CREATE TABLE identity_ciba_requests (
    auth_req_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, consent_party TEXT NOT NULL,
    msisdn TEXT NOT NULL, scope TEXT NOT NULL, binding_message TEXT, created_at REAL NOT NULL,
    expires_at REAL NOT NULL, interval REAL NOT NULL, last_poll_at REAL NOT NULL,
    prompt INTEGER NOT NULL, handset TEXT NOT NULL, status TEXT NOT NULL
);
INSERT INTO identity_ciba_requests VALUES ('old', 'app', 'app', '+34600000001', 's', NULL,
    0, 1e12, 2, 0, 1, '{"answer": "approve", "delay": 0.0}', 'pending');
"""


def test_an_old_database_gains_the_column_once(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite3")
    old = Database(path)
    old.ensure_schema(OLD_SCHEMA)
    old.close()
    config = example_operator().model_copy(update={"storage": path})
    first, second = build_operator(config), build_operator(config)  # two data centres
    columns = {r["name"] for r in first.db.all("PRAGMA table_info(identity_ciba_requests)")}
    assert "pressed" in columns
    assert first.server.ciba.prompts("+34600000001") == []  # the old row: a scripted handset
    first.db.close()
    second.db.close()
