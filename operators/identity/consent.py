"""Purpose-bound consent records: granted, viewed, revoked; every change leaves an audit row."""

from __future__ import annotations

import dataclasses
import itertools
import json
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import OAuthError
from ..storage import Database
from ..types import Clock

MAX_LIFETIME = 10 * 365 * 86_400
"""The longest consent one may grant, in seconds (ten years): an expiry far beyond it would
overflow the dates that Consent Info answers with."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_consents (
    id TEXT PRIMARY KEY,
    msisdn TEXT NOT NULL,
    client_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS identity_consents_subject ON identity_consents (msisdn, client_id);
CREATE TABLE IF NOT EXISTS identity_consent_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consent_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identity_consent_audit_consent ON identity_consent_audit (consent_id);
"""


@dataclass(frozen=True)
class Consent:
    """One subscriber's consent to one client for one purpose and a set of API scopes."""

    id: str
    msisdn: str
    client_id: str
    purpose: str
    scopes: tuple[str, ...]
    granted_at: float
    expires_at: float | None
    revoked_at: float | None

    @classmethod
    def new(
        cls, consent_id: str, msisdn: str, client_id: str, purpose: str,
        scopes: tuple[str, ...], now: float, lifetime: float | None,
    ) -> Consent:
        """A consent granted ``now`` for the scopes asked (deduplicated, in a stable order)."""
        return cls(
            id=consent_id, msisdn=msisdn, client_id=client_id, purpose=purpose,
            scopes=tuple(sorted(set(scopes))), granted_at=now,
            expires_at=None if lifetime is None else now + lifetime, revoked_at=None,
        )

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def covers(self, client_id: str, purpose: str, scopes: tuple[str, ...], now: float) -> bool:
        return (self.active(now) and self.client_id == client_id and self.purpose == purpose
                and set(scopes) <= set(self.scopes))

    def view(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id, "phoneNumber": self.msisdn, "clientId": self.client_id,
            "purpose": self.purpose, "scopes": list(self.scopes), "grantedAt": self.granted_at,
            "expiresAt": self.expires_at, "revokedAt": self.revoked_at,
            "status": "active" if self.active(now) else
                      "revoked" if self.revoked_at is not None else "expired",
        }


@dataclass(frozen=True)
class AuditEntry:
    id: int
    consent_id: str
    msisdn: str
    action: str
    actor: str
    at: float
    detail: dict[str, Any]

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "consentId": self.consent_id, "phoneNumber": self.msisdn,
                "action": self.action, "actor": self.actor, "at": self.at, "detail": self.detail}


class ConsentRecords(Protocol):
    """What grants and the gateway ask of an operator's consent records.

    :class:`ConsentStore` keeps them in the operator's SQLite database (live);
    :class:`InMemoryConsentStore` in memory (the simulation keeps one per data centre, so each
    replica can lag). A contract test runs the same sequence against both.
    """

    def grant(
        self,
        msisdn: str,
        client_id: str,
        purpose: str,
        scopes: tuple[str, ...],
        *,
        actor: str,
        lifetime: float | None = None,
    ) -> Consent: ...

    def revoke(self, consent_id: str, *, actor: str) -> Consent: ...

    def get(self, consent_id: str) -> Consent | None: ...

    def for_subscriber(self, msisdn: str | None = None) -> list[Consent]: ...

    def find_active(
        self, msisdn: str, client_id: str, purpose: str, scopes: tuple[str, ...]
    ) -> Consent | None: ...


class ConsentStore:
    """Consent records of one operator; a revocation is seen by the very next check."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def grant(
        self,
        msisdn: str,
        client_id: str,
        purpose: str,
        scopes: tuple[str, ...],
        *,
        actor: str,
        lifetime: float | None = None,
    ) -> Consent:
        now = self.clock()
        consent = Consent.new(f"cns-{secrets.token_hex(10)}", msisdn, client_id, purpose, scopes,
                              now, lifetime)
        with self.db.transaction():
            self.db.insert(
                "INSERT INTO identity_consents (id, msisdn, client_id, purpose, scopes,"
                " granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (consent.id, msisdn, client_id, purpose, json.dumps(consent.scopes), now,
                 consent.expires_at),
            )
            self._audit(consent, "granted", actor, {"scopes": list(consent.scopes),
                                                     "expiresAt": consent.expires_at})
        return consent

    def revoke(self, consent_id: str, *, actor: str) -> Consent:
        with self.db.transaction():
            consent = self.get(consent_id)
            if consent is None:
                raise OAuthError("not_found", "no such consent", 404)
            if consent.revoked_at is None:
                self.db.execute("UPDATE identity_consents SET revoked_at = ? WHERE id = ?",
                                (self.clock(), consent_id))
                self._audit(consent, "revoked", actor, {})
            revoked = self.get(consent_id)
        assert revoked is not None
        return revoked

    def get(self, consent_id: str) -> Consent | None:
        row = self.db.one("SELECT * FROM identity_consents WHERE id = ?", (consent_id,))
        return None if row is None else _consent(row)

    def for_subscriber(self, msisdn: str | None = None) -> list[Consent]:
        if msisdn is None:
            rows = self.db.all("SELECT * FROM identity_consents ORDER BY granted_at, rowid")
        else:
            rows = self.db.all(
                "SELECT * FROM identity_consents WHERE msisdn = ? ORDER BY granted_at, rowid",
                (msisdn,),
            )
        return [_consent(r) for r in rows]

    def find_active(
        self, msisdn: str, client_id: str, purpose: str, scopes: tuple[str, ...]
    ) -> Consent | None:
        """The newest active consent covering this client, purpose and every scope asked."""
        now = self.clock()
        rows = self.db.all(
            "SELECT * FROM identity_consents WHERE msisdn = ? AND client_id = ? AND purpose = ?"
            " AND revoked_at IS NULL ORDER BY granted_at DESC, rowid DESC",
            (msisdn, client_id, purpose),
        )
        return next((c for c in map(_consent, rows) if c.covers(client_id, purpose, scopes, now)),
                    None)

    def audit(
        self, *, consent_id: str | None = None, msisdn: str | None = None
    ) -> list[AuditEntry]:
        clauses, params = [], []
        if consent_id is not None:
            clauses.append("consent_id = ?")
            params.append(consent_id)
        if msisdn is not None:
            clauses.append("msisdn = ?")
            params.append(msisdn)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.all(f"SELECT * FROM identity_consent_audit{where} ORDER BY id", params)
        return [AuditEntry(r["id"], r["consent_id"], r["msisdn"], r["action"], r["actor"],
                           r["at"], json.loads(r["detail"])) for r in rows]

    def record(self, consent: Consent, action: str, actor: str, detail: dict[str, Any]) -> None:
        """Audit a use of a consent (e.g. a token issued under it) without changing it."""
        self._audit(consent, action, actor, detail)

    def _audit(self, consent: Consent, action: str, actor: str, detail: dict[str, Any]) -> None:
        self.db.insert(
            "INSERT INTO identity_consent_audit (consent_id, msisdn, action, actor, at, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (consent.id, consent.msisdn, action, actor, self.clock(), json.dumps(detail)),
        )


class InMemoryConsentStore:
    """Consent records in memory, with the same answers as :class:`ConsentStore`.

    Ids are numbered, not random, so a seeded simulation names the same consents every run;
    :meth:`adopt` copies a record under its own id, which is how a data centre's replica
    receives a consent recorded elsewhere.
    """

    def __init__(self, *, clock: Clock, prefix: str = "cns") -> None:
        self.clock = clock
        self.prefix = prefix
        self._records: dict[str, Consent] = {}
        self._ids = itertools.count(1)
        self.audit_log: list[tuple[str, str, str, float]] = []
        """``(consent id, action, actor, at)`` for every grant and revocation."""

    def grant(
        self,
        msisdn: str,
        client_id: str,
        purpose: str,
        scopes: tuple[str, ...],
        *,
        actor: str,
        lifetime: float | None = None,
    ) -> Consent:
        now = self.clock()
        consent = Consent.new(f"{self.prefix}-{next(self._ids):012d}", msisdn, client_id,
                              purpose, scopes, now, lifetime)
        self.adopt(consent)
        self.audit_log.append((consent.id, "granted", actor, now))
        return consent

    def adopt(self, consent: Consent) -> None:
        """Hold ``consent`` as it is (a replica receiving a record made elsewhere)."""
        self._records[consent.id] = consent

    def revoke(self, consent_id: str, *, actor: str) -> Consent:
        consent = self._records.get(consent_id)
        if consent is None:
            raise OAuthError("not_found", "no such consent", 404)
        if consent.revoked_at is None:
            now = self.clock()
            consent = dataclasses.replace(consent, revoked_at=now)
            self._records[consent_id] = consent
            self.audit_log.append((consent_id, "revoked", actor, now))
        return consent

    def get(self, consent_id: str) -> Consent | None:
        return self._records.get(consent_id)

    def for_subscriber(self, msisdn: str | None = None) -> list[Consent]:
        return [c for c in self._records.values() if msisdn is None or c.msisdn == msisdn]

    def find_active(
        self, msisdn: str, client_id: str, purpose: str, scopes: tuple[str, ...]
    ) -> Consent | None:
        """The newest active consent covering this client, purpose and every scope asked."""
        now = self.clock()
        for consent in reversed(self._records.values()):
            if consent.msisdn == msisdn and consent.covers(client_id, purpose, scopes, now):
                return consent
        return None


def _consent(row: Any) -> Consent:
    return Consent(
        id=row["id"], msisdn=row["msisdn"], client_id=row["client_id"], purpose=row["purpose"],
        scopes=tuple(json.loads(row["scopes"])), granted_at=row["granted_at"],
        expires_at=row["expires_at"], revoked_at=row["revoked_at"],
    )
