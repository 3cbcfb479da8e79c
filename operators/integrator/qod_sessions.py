"""The integrator's record of the QoD sessions it created: CAMARA's view next to the PCF's id.

Live, the record is a table in the operator's database, so every data centre's replica of the
gateway answers for every session, and a restart keeps them; the simulator and unit tests keep
it in memory.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Protocol

from operators.camara.common import DeviceResponse
from operators.camara.quality_on_demand import CreateSession, QosStatus, StatusInfo
from operators.storage import Database

__all__ = [
    "DatabaseQodSessions",
    "MemoryQodSessions",
    "QodSession",
    "QodSessionStore",
    "due_to_change",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS qod_sessions (
    session_id TEXT PRIMARY KEY,
    pcf_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    request TEXT NOT NULL,
    device TEXT,
    started_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    status TEXT NOT NULL,
    status_info TEXT
);
CREATE INDEX IF NOT EXISTS qod_sessions_msisdn ON qod_sessions (msisdn);
CREATE UNIQUE INDEX IF NOT EXISTS qod_sessions_one_available ON qod_sessions (msisdn)
    WHERE status = 'AVAILABLE';
"""


@dataclass(frozen=True, slots=True)
class QodSession:
    session_id: str
    pcf_id: str
    client_id: str
    msisdn: str
    request: CreateSession
    device: DeviceResponse | None
    started_at: float
    expires_at: float
    status: QosStatus = QosStatus.AVAILABLE
    status_info: StatusInfo | None = None


class QodSessionStore(Protocol):
    def get(self, session_id: str) -> QodSession | None: ...

    def put(self, session: QodSession) -> None: ...

    def delete(self, session_id: str) -> None: ...

    def all(self) -> list[QodSession]: ...

    def for_msisdn(self, msisdn: str) -> list[QodSession]:
        """One number's sessions, in the order they were created (as :meth:`all` gives)."""
        ...

    def due(self, now: float, retention: float) -> list[QodSession]:
        """The sessions whose state is due to change at ``now``, in :meth:`all`'s order: an
        available one whose duration ended, an unavailable one past ``retention`` after it."""
        ...


class MemoryQodSessions:
    def __init__(self) -> None:
        self._sessions: dict[str, QodSession] = {}

    def get(self, session_id: str) -> QodSession | None:
        return self._sessions.get(session_id)

    def put(self, session: QodSession) -> None:
        self._sessions[session.session_id] = session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def all(self) -> list[QodSession]:
        return list(self._sessions.values())

    def for_msisdn(self, msisdn: str) -> list[QodSession]:
        return [s for s in self._sessions.values() if s.msisdn == msisdn]

    def due(self, now: float, retention: float) -> list[QodSession]:
        return [s for s in self._sessions.values() if due_to_change(s, now, retention)]


class DatabaseQodSessions:
    """QoD sessions as rows of the operator's database, shared by all its replicas."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def get(self, session_id: str) -> QodSession | None:
        row = self.db.one("SELECT * FROM qod_sessions WHERE session_id = ?", (session_id,))
        return None if row is None else _session(row)

    def put(self, session: QodSession) -> None:
        device = session.device.model_dump_json(exclude_none=True) if session.device else None
        self.db.effect(
            "INSERT INTO qod_sessions (session_id, pcf_id, client_id, msisdn, request, device,"
            " started_at, expires_at, status, status_info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET started_at = excluded.started_at,"
            " expires_at = excluded.expires_at, status = excluded.status,"
            " status_info = excluded.status_info",
            (
                session.session_id,
                session.pcf_id,
                session.client_id,
                session.msisdn,
                session.request.model_dump_json(exclude_none=True),
                device,
                session.started_at,
                session.expires_at,
                session.status.value,
                session.status_info.value if session.status_info else None,
            ),
        )

    def delete(self, session_id: str) -> None:
        self.db.effect("DELETE FROM qod_sessions WHERE session_id = ?", (session_id,))

    def all(self) -> list[QodSession]:
        return [_session(row) for row in self.db.all("SELECT * FROM qod_sessions ORDER BY rowid")]

    def for_msisdn(self, msisdn: str) -> list[QodSession]:
        rows = self.db.all("SELECT * FROM qod_sessions WHERE msisdn = ? ORDER BY rowid", (msisdn,))
        return [_session(row) for row in rows]

    def due(self, now: float, retention: float) -> list[QodSession]:
        rows = self.db.all(
            "SELECT * FROM qod_sessions WHERE (status = ? AND expires_at <= ?)"
            " OR (status = ? AND expires_at + ? <= ?) ORDER BY rowid",
            (QosStatus.AVAILABLE.value, now, QosStatus.UNAVAILABLE.value, retention, now),
        )
        return [_session(row) for row in rows]


def due_to_change(session: QodSession, now: float, retention: float) -> bool:
    """Whether ``session``'s state changes at ``now``: an available one's duration ended, or
    an unavailable one is ``retention`` past it (the rule ``DatabaseQodSessions.due`` states
    in SQL)."""
    if session.status is QosStatus.AVAILABLE:
        return session.expires_at <= now
    return session.status is QosStatus.UNAVAILABLE and session.expires_at + retention <= now


def _session(row: sqlite3.Row) -> QodSession:
    get = row.__getitem__
    device = get("device")
    return QodSession(
        session_id=get("session_id"),
        pcf_id=get("pcf_id"),
        client_id=get("client_id"),
        msisdn=get("msisdn"),
        request=CreateSession.model_validate(json.loads(get("request"))),
        device=DeviceResponse.model_validate(json.loads(device)) if device else None,
        started_at=get("started_at"),
        expires_at=get("expires_at"),
        status=QosStatus(get("status")),
        status_info=StatusInfo(get("status_info")) if get("status_info") else None,
    )
