"""What arrives on a subscriber's phone: one-time codes, consent notices, CIBA prompts.

The inbox lives in the operator's database, so every data centre of an operator (they share
the file) shows the same phone; it keeps the latest :data:`KEEP` messages per number, so a
long run does not grow it. Codes sent here are the only channel a one-time code takes: the
portal never shows one, as a real operator would send it by SMS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..storage import Database
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS handset_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    data TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS handset_messages_by_number ON handset_messages (msisdn, id);
"""

KEEP = 50
"""Messages kept per number; older ones are dropped as new ones arrive."""


@dataclass(frozen=True)
class Message:
    id: int
    msisdn: str
    kind: str
    """``code`` (a one-time code), ``consent`` (a consent granted or revoked), ``prompt``..."""
    text: str
    data: dict[str, Any]
    sent_at: float


class HandsetInbox:
    """Messages sent to simulated phones, newest first."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def send(self, msisdn: str, kind: str, text: str, **data: Any) -> Message:
        now = self.clock()
        with self.db.transaction():
            message_id = self.db.insert(
                "INSERT INTO handset_messages (msisdn, kind, text, data, sent_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (msisdn, kind, text, json.dumps(data), now),
            )
            self.db.execute(
                "DELETE FROM handset_messages WHERE msisdn = ? AND id <= ?",
                (msisdn, message_id - KEEP),
            )
        return Message(message_id, msisdn, kind, text, data, now)

    def messages(self, msisdn: str, limit: int = KEEP) -> list[Message]:
        rows = self.db.all(
            "SELECT * FROM handset_messages WHERE msisdn = ? ORDER BY id DESC LIMIT ?",
            (msisdn, limit),
        )
        return [
            Message(r["id"], r["msisdn"], r["kind"], r["text"], json.loads(r["data"]),
                    r["sent_at"])
            for r in rows
        ]
