"""Where the policy function keeps its QoS sessions: in memory, or in the operator's database.

The simulator gives each operator one PCF and wants the same ids for the same requests, so it
keeps sessions in memory with counted ids. Live operators run one PCF per data centre over one
shared database: sessions must be visible from every site, and ids unique across sites, so they
are rows keyed by a random UUID.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from operators.storage import Database

from .records import QosSessionRecord, QosSessionState

__all__ = ["DatabaseQosSessions", "MemoryQosSessions", "QosSessionStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS pcf_sessions (
    session_id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    qos_profile TEXT NOT NULL,
    started_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


class QosSessionStore(Protocol):
    """What the policy function asks of its session storage."""

    def new_id(self) -> str: ...

    def get(self, session_id: str) -> QosSessionRecord | None: ...

    def put(self, record: QosSessionRecord) -> None: ...

    def delete(self, session_id: str) -> None: ...

    def active(self, now: float) -> int: ...


class MemoryQosSessions:
    """Sessions of one PCF instance; ids count up, so a replayed run gives the same ids."""

    def __init__(self, prefix: str = "pcf") -> None:
        self.prefix = prefix
        self._sessions: dict[str, QosSessionRecord] = {}
        self._created = 0

    def new_id(self) -> str:
        self._created += 1
        return f"{self.prefix}-{self._created:08d}"

    def get(self, session_id: str) -> QosSessionRecord | None:
        return self._sessions.get(session_id)

    def put(self, record: QosSessionRecord) -> None:
        self._sessions[record.session_id] = record

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def active(self, now: float) -> int:
        return sum(1 for s in self._sessions.values() if s.expires_at > now)


class DatabaseQosSessions:
    """Sessions shared by every PCF replica that opens the same database file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def new_id(self) -> str:
        return f"pcf-{uuid.uuid4()}"

    def get(self, session_id: str) -> QosSessionRecord | None:
        row = self.db.one("SELECT * FROM pcf_sessions WHERE session_id = ?", (session_id,))
        if row is None:
            return None
        return QosSessionRecord(
            session_id=row["session_id"],
            msisdn=row["msisdn"],
            qos_profile=row["qos_profile"],
            started_at=row["started_at"],
            expires_at=row["expires_at"],
            state=QosSessionState.ACTIVE,
        )

    def put(self, record: QosSessionRecord) -> None:
        self.db.execute(
            "INSERT INTO pcf_sessions (session_id, msisdn, qos_profile, started_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
            " expires_at = excluded.expires_at",
            (
                record.session_id,
                record.msisdn,
                record.qos_profile,
                record.started_at,
                record.expires_at,
            ),
        )

    def delete(self, session_id: str) -> None:
        self.db.execute("DELETE FROM pcf_sessions WHERE session_id = ?", (session_id,))

    def active(self, now: float) -> int:
        row = self.db.one("SELECT COUNT(*) AS n FROM pcf_sessions WHERE expires_at > ?", (now,))
        return int(row["n"]) if row is not None else 0
