"""Single-use assertion ids (``jti``), persisted so a restart does not reopen a replay window."""

from __future__ import annotations

import sqlite3

from ..storage import Database
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_seen_jti (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
);
"""


class ReplayGuard:
    """Remembers each (issuer, jti) until the assertion that carried it has expired."""

    def __init__(self, db: Database, *, clock: Clock, keep_after_expiry: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.keep_after_expiry = keep_after_expiry
        db.ensure_schema(SCHEMA)

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """True the first time this (issuer, jti) is seen; False on every replay."""
        now = self.clock()
        with self.db.transaction():
            self.db.execute("DELETE FROM identity_seen_jti WHERE expires_at < ?",
                            (now - self.keep_after_expiry,))
            try:
                self.db.insert(
                    "INSERT INTO identity_seen_jti (issuer, jti, expires_at) VALUES (?, ?, ?)",
                    (issuer, jti, max(expires_at, now) + self.keep_after_expiry),
                )
            except sqlite3.IntegrityError:
                return False
        return True
