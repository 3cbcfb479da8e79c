"""Consent captures: the operator's own page where a subscriber gives (or refuses) consent.

Consent Info hands an application a ``captureUrl`` when consent is missing; the subscriber
opens it, proves who they are to the operator (network-based when the browser comes from
their own device, else a one-time code sent to their phone) and approves or refuses. The
application never sees the subscriber's answer except as ``capture_result`` on its callback
and as the status Consent Info reports afterwards.

A capture is a row here: what was asked (client, purpose, scopes, callback), when it runs
out, how far the subscriber got, and the outcome. One-time codes are stored as salted hashes
and allow :data:`MAX_CODE_ATTEMPTS` tries each, and a capture sends at most :data:`MAX_CODES`
of them (whoever holds the link could otherwise guess forever, a new code every five tries,
and fill the subscriber's phone with messages); the browser that authenticated holds a random
session secret whose hash the row keeps, so a capture link forwarded to someone else is of
no use to them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from ..storage import Database
from ..types import Clock
from .consent_status import Capture

__all__ = ["CaptureCap", "CaptureOutcome", "CaptureRequest", "ConsentCaptures"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_consent_captures (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    purpose TEXT NOT NULL,
    scopes TEXT NOT NULL,
    callback_url TEXT,
    state TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    code_hash TEXT,
    code_expires_at REAL,
    code_attempts INTEGER NOT NULL DEFAULT 0,
    codes_sent INTEGER NOT NULL DEFAULT 0,
    session_hash TEXT,
    outcome TEXT,
    decided_at REAL
);
CREATE INDEX IF NOT EXISTS identity_consent_captures_subject
    ON identity_consent_captures (msisdn, client_id, purpose);
"""

CAPTURE_LIFETIME = 15 * 60.0
"""Seconds a capture URL stays usable (then its result is ``timeout``)."""
CODE_LIFETIME = 5 * 60.0
MAX_CODE_ATTEMPTS = 5
MAX_CODES = 3
"""One-time codes one capture sends: the first and two more on request."""
CODE_DIGITS = 6


class CaptureOutcome(StrEnum):
    """The ``capture_result`` values of the Consent Info callback."""

    GRANTED = "granted"
    DENIED = "denied"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    id: str
    client_id: str
    msisdn: str
    purpose: str
    scopes: tuple[str, ...]
    callback_url: str | None
    state: str | None
    created_at: float
    expires_at: float
    code_attempts: int
    codes_sent: int
    authenticated: bool
    outcome: CaptureOutcome | None
    decided_at: float | None

    def expired(self, now: float) -> bool:
        return self.outcome is None and now >= self.expires_at

    def as_status_fact(self) -> Capture:
        """A timeout or an error is no answer of the subscriber's: only approve and refuse
        count as one."""
        granted = {CaptureOutcome.GRANTED: True, CaptureOutcome.DENIED: False}.get(
            self.outcome) if self.outcome else None
        return Capture(self.scopes, self.created_at, self.expires_at, self.decided_at, granted)


@dataclass(frozen=True, slots=True)
class CaptureCap:
    """At most ``limit`` captures a client may ask about one subscriber since ``since``."""

    since: float
    limit: int


class _Ask(NamedTuple):
    """What a capture asks, as its row keeps it (``scopes`` the sorted JSON list)."""

    client_id: str
    msisdn: str
    purpose: str
    scopes: str
    callback_url: str | None


def _hash(secret: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


class ConsentCaptures:
    """The capture rows of one operator (shared by its data centres through the database)."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)
        db.ensure_column("identity_consent_captures", "codes_sent", "INTEGER NOT NULL DEFAULT 0")

    def offer(
        self,
        client_id: str,
        msisdn: str,
        purpose: str,
        scopes: tuple[str, ...],
        callback_url: str | None,
    ) -> CaptureRequest:
        """A new capture, or the pending one that already asks for the same (so asking twice
        does not send the subscriber two requests)."""
        offered = self.offer_capped(client_id, msisdn, purpose, scopes, callback_url, cap=None)
        assert offered is not None  # only a cap refuses a capture
        return offered

    def offer_capped(
        self,
        client_id: str,
        msisdn: str,
        purpose: str,
        scopes: tuple[str, ...],
        callback_url: str | None,
        *,
        cap: CaptureCap | None,
    ) -> CaptureRequest | None:
        """As :meth:`offer`, but None when the client already asked about this subscriber
        ``cap.limit`` times since ``cap.since`` (and no pending capture asks the same).

        Replicas share the rows, so the cap's count, the look for the same pending ask and
        the new row are one conditional INSERT: counted first and inserted after, parallel
        requests would all see the cap's last place free (more requests, each sending codes,
        to the subscriber's phone than the cap allows), or two captures for one ask."""
        wanted = tuple(sorted(set(scopes)))
        ask = _Ask(client_id, msisdn, purpose, json.dumps(wanted), callback_url)
        same = self._pending_same(ask)
        if same is not None:
            return same
        capture_id = f"cap-{secrets.token_urlsafe(18)}"
        if not self._insert_unless_asked_or_capped(capture_id, ask, cap):
            return self._pending_same(ask)  # made meanwhile by another replica, or capped
        return self.get(capture_id)

    def _pending_same(self, ask: _Ask) -> CaptureRequest | None:
        """The newest pending capture asking exactly what ``ask`` asks."""
        row = self.db.one(
            "SELECT * FROM identity_consent_captures WHERE client_id = ? AND msisdn = ?"
            " AND purpose = ? AND scopes = ? AND callback_url IS ? AND outcome IS NULL"
            " AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
            (*ask, self.clock()),
        )
        return None if row is None else _capture(row)

    def _insert_unless_asked_or_capped(
        self, capture_id: str, ask: _Ask, cap: CaptureCap | None
    ) -> bool:
        """Insert the capture unless the same ask is pending or ``cap`` is reached, in one
        statement (one write lock: no other replica's write between the checks and the row)."""
        now = self.clock()
        changed = self.db.execute(
            "INSERT INTO identity_consent_captures (id, client_id, msisdn, purpose, scopes,"
            " callback_url, created_at, expires_at)"
            " SELECT :id, :client, :msisdn, :purpose, :scopes, :callback, :now, :expires"
            " WHERE NOT EXISTS (SELECT 1 FROM identity_consent_captures WHERE client_id = :client"
            " AND msisdn = :msisdn AND purpose = :purpose AND scopes = :scopes"
            " AND callback_url IS :callback AND outcome IS NULL AND expires_at > :now)"
            " AND (:limit IS NULL OR (SELECT COUNT(*) FROM identity_consent_captures"
            " WHERE client_id = :client AND msisdn = :msisdn AND created_at >= :since) < :limit)",
            {"id": capture_id, "client": ask.client_id, "msisdn": ask.msisdn,
             "purpose": ask.purpose, "scopes": ask.scopes, "callback": ask.callback_url,
             "now": now, "expires": now + CAPTURE_LIFETIME,
             "limit": None if cap is None else cap.limit,
             "since": None if cap is None else cap.since},
        )
        return changed == 1

    def get(self, capture_id: str) -> CaptureRequest | None:
        row = self.db.one("SELECT * FROM identity_consent_captures WHERE id = ?", (capture_id,))
        return None if row is None else _capture(row)

    def pending(self, client_id: str, msisdn: str, purpose: str) -> list[CaptureRequest]:
        now = self.clock()
        return [c for c in self.of(msisdn, client_id, purpose)
                if c.outcome is None and now < c.expires_at]

    def of(self, msisdn: str, client_id: str, purpose: str) -> list[CaptureRequest]:
        rows = self.db.all(
            "SELECT * FROM identity_consent_captures WHERE msisdn = ? AND client_id = ?"
            " AND purpose = ? ORDER BY created_at",
            (msisdn, client_id, purpose),
        )
        return [_capture(r) for r in rows]

    def keep_state(self, capture_id: str, state: str) -> None:
        """Remember the ``state`` the application opened the capture URL with (first one)."""
        self.db.execute(
            "UPDATE identity_consent_captures SET state = ? WHERE id = ? AND state IS NULL",
            (state, capture_id),
        )

    # -- proving who the subscriber is --------------------------------------------------------

    def new_code(self, capture_id: str) -> str | None:
        """A fresh one-time code for the capture, replacing any earlier one (the caller sends
        it to the handset): what the subscriber's own "send a new code" asks for. None once
        the capture has sent :data:`MAX_CODES`."""
        return self._send_code(capture_id, unless_live=False)

    def first_code(self, capture_id: str) -> str | None:
        """As :meth:`new_code`, but only when no code can still be tried (none sent, expired,
        or its tries spent): what a page load sends. None otherwise.

        The check and the new code are one conditional UPDATE. Checked first and sent after,
        two page loads at once (a link preview and the subscriber, at two replicas) both
        found no live code and both sent one: the second replaced the first, so the message
        the subscriber read no longer worked, and one of the capture's codes was wasted."""
        return self._send_code(capture_id, unless_live=True)

    def _send_code(self, capture_id: str, *, unless_live: bool) -> str | None:
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        now = self.clock()
        changed = self.db.execute(
            "UPDATE identity_consent_captures SET code_hash = :hash, code_expires_at = :expires,"
            " code_attempts = 0, codes_sent = codes_sent + 1"
            " WHERE id = :id AND codes_sent < :max_codes AND (NOT :unless_live"
            " OR code_hash IS NULL OR code_expires_at <= :now OR code_attempts >= :max_tries)",
            {"hash": _hash(code, capture_id), "expires": now + CODE_LIFETIME, "id": capture_id,
             "max_codes": MAX_CODES, "unless_live": unless_live, "now": now,
             "max_tries": MAX_CODE_ATTEMPTS},
        )
        return code if changed == 1 else None

    def codes_unsent(self, capture_id: str) -> int:
        """How many more codes the capture may send."""
        capture = self.get(capture_id)
        return 0 if capture is None else max(0, MAX_CODES - capture.codes_sent)

    def check_code(self, capture_id: str, code: str) -> bool:
        """Whether ``code`` is the capture's live code; every try counts, right or wrong.

        Several processes share the row, so the try is counted and the code used up by
        conditional statements, never by reading the row and writing it back: two guesses
        racing for the last try, or two right answers racing for one code, would otherwise
        both pass the check read before either wrote."""
        stored = self._spend_try(capture_id)
        if stored is None or not hmac.compare_digest(stored, _hash(code, capture_id)):
            return False
        return self._use_code(capture_id, stored)

    def _spend_try(self, capture_id: str) -> str | None:
        """Count one try when the live code has tries left; the code's hash to compare with,
        or None (no code, expired, or its tries spent). Check and count are one statement."""
        rows = self.db.returning(
            "UPDATE identity_consent_captures SET code_attempts = code_attempts + 1"
            " WHERE id = ? AND code_hash IS NOT NULL AND code_attempts < ?"
            " AND code_expires_at > ? RETURNING code_hash",
            (capture_id, MAX_CODE_ATTEMPTS, self.clock()),
        )
        return None if not rows else str(rows[0]["code_hash"])

    def _use_code(self, capture_id: str, code_hash: str) -> bool:
        """Use the code up; False when another request already did (only one of two right
        answers wins), or a new code replaced it meanwhile."""
        changed = self.db.execute(
            "UPDATE identity_consent_captures SET code_hash = NULL WHERE id = ? AND code_hash = ?",
            (capture_id, code_hash),
        )
        return changed == 1

    def codes_left(self, capture_id: str) -> int:
        capture = self.get(capture_id)
        return 0 if capture is None else max(0, MAX_CODE_ATTEMPTS - capture.code_attempts)

    def open_session(self, capture_id: str) -> str:
        """The secret of the browser that proved to be the subscriber (a cookie)."""
        secret = secrets.token_urlsafe(24)
        self.db.execute(
            "UPDATE identity_consent_captures SET session_hash = ? WHERE id = ?",
            (_hash(secret, capture_id), capture_id),
        )
        return secret

    def holds_session(self, capture_id: str, secret: str | None) -> bool:
        row = self.db.one(
            "SELECT session_hash FROM identity_consent_captures WHERE id = ?", (capture_id,)
        )
        if row is None or row["session_hash"] is None or not secret:
            return False
        return hmac.compare_digest(row["session_hash"], _hash(secret, capture_id))

    def decide(self, capture_id: str, outcome: CaptureOutcome) -> bool:
        """Record the outcome once; False when the capture was already decided."""
        changed = self.db.execute(
            "UPDATE identity_consent_captures SET outcome = ?, decided_at = ?"
            " WHERE id = ? AND outcome IS NULL",
            (outcome.value, self.clock(), capture_id),
        )
        return changed == 1


def _capture(row: Any) -> CaptureRequest:
    outcome = row["outcome"]
    return CaptureRequest(
        id=row["id"], client_id=row["client_id"], msisdn=row["msisdn"], purpose=row["purpose"],
        scopes=tuple(json.loads(row["scopes"])), callback_url=row["callback_url"],
        state=row["state"], created_at=row["created_at"], expires_at=row["expires_at"],
        code_attempts=row["code_attempts"], codes_sent=row["codes_sent"],
        authenticated=row["session_hash"] is not None,
        outcome=CaptureOutcome(outcome) if outcome else None, decided_at=row["decided_at"],
    )
