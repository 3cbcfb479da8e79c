"""The party's mail outbox: what the portal would send by mail, kept where the operator reads it.

ogsim fetches nothing from, and sends nothing to, the internet, so the portal's mail (address
confirmation links) goes to a table of the party's own database instead of an SMTP relay, and
the operator admin reads it on ``/portal/admin/outbox``, as a mail catcher shows a test
environment's mail. Each message is written in the same transaction as the record that needs
it, so a link is never stored without its message, nor a message without its link.

The table keeps the newest :data:`MAX_MESSAGES` messages: a sign-up flood cannot grow it
without bound.
"""

from __future__ import annotations

from typing import NamedTuple

from ..storage import Database
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_outbox (
    message_id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_outbox_recipient ON portal_outbox (recipient, message_id);
"""

MAX_MESSAGES = 10_000
"""Messages kept at most (the oldest go first)."""


class Message(NamedTuple):
    message_id: int
    recipient: str
    subject: str
    body: str
    sent_at: float


class Outbox:
    """Sends (stores) and lists one party's mail."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def send(self, recipient: str, subject: str, body: str) -> None:
        """Store one message (inside the caller's transaction, when there is one)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO portal_outbox (recipient, subject, body, sent_at) VALUES (?, ?, ?, ?)",
                (recipient, subject, body, self.clock()))
            self.db.execute(
                "DELETE FROM portal_outbox WHERE message_id <="
                " (SELECT MAX(message_id) FROM portal_outbox) - ?", (MAX_MESSAGES,))

    def last_sent(self, recipient: str, subject: str) -> float | None:
        """When ``recipient`` was last sent a message with this subject (None: never, or no
        longer kept)."""
        row = self.db.one("SELECT MAX(sent_at) AS at FROM portal_outbox"
                          " WHERE recipient = ? AND subject = ?", (recipient, subject))
        return None if row is None else row["at"]

    def messages(self, recipient: str | None = None, limit: int = 100) -> list[Message]:
        """The newest messages first, to ``recipient`` only if given."""
        if recipient is None:
            rows = self.db.all("SELECT * FROM portal_outbox ORDER BY message_id DESC LIMIT ?",
                               (limit,))
        else:
            rows = self.db.all("SELECT * FROM portal_outbox WHERE recipient = ?"
                               " ORDER BY message_id DESC LIMIT ?", (recipient, limit))
        return [Message(r["message_id"], r["recipient"], r["subject"], r["body"], r["sent_at"])
                for r in rows]
