"""Developer sessions: an HMAC-signed cookie naming a session row, so signing out really ends it.

The cookie ``ogsim_dev`` holds ``{sid, signed, exp}`` and an HMAC-SHA256 over it under the
party's developer-portal key (kept in its database, so every data centre sharing the file
accepts the same cookies). A signed-in session also has a row (keyed by a hash of ``sid``,
so a leaked database holds no usable cookie) that sign-out and the kill switch end; a cookie
whose row is ended or gone is worth nothing even though its signature still verifies. A
visitor who has not signed in gets an anonymous session too, so the sign-in and sign-up forms
carry a CSRF token; signing in always starts a new ``sid`` (no session fixation). The CSRF
token is an HMAC of the ``sid``: nothing to store, useless with another session's cookie.

A session an organisation's identity provider started records that provider's issuer. It
lasts no longer than the organisation's trust in it: it starts only while the organisation
names that issuer, and stopping or changing corporate sign-in ends it, as the provider's
own deprovisioning (SCIM, RISC) could no longer reach it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from ..storage import Database
from ..types import Clock

COOKIE = "ogsim_dev"
SIGNED_IN_LIFETIME = 12 * 3600.0
"""A signed-in session lasts a working day from sign-in."""
ANONYMOUS_LIFETIME = 3600.0
MAX_COOKIE = 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_dev_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS portal_dev_sessions (
    sid_hash TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at REAL,
    issuer TEXT
);
CREATE INDEX IF NOT EXISTS portal_dev_sessions_developer ON portal_dev_sessions (developer_id);
"""


class SessionRefusedError(Exception):
    """A session that may not start after all: something changed while its sign-in ran."""


class IssuerNotTrustedError(SessionRefusedError):
    """The organisation stopped trusting the provider while its sign-in was under way."""


class MemberNotActiveError(SessionRefusedError):
    """The member was deactivated (or removed) while their sign-in was under way."""


@dataclass(frozen=True)
class CookieSession:
    """What a verified cookie says: ``developer_id`` is set only while its row stands."""

    sid: str
    expires_at: float
    developer_id: str | None = None


class DeveloperSessions:
    """Issues, reads and ends the developer portal's sessions."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)
        db.ensure_column("portal_dev_sessions", "issuer", "TEXT")
        db.execute("INSERT OR IGNORE INTO portal_dev_secret (id, secret) VALUES (1, ?)",
                   (secrets.token_bytes(32),))
        row = db.one("SELECT secret FROM portal_dev_secret WHERE id = 1")
        assert row is not None
        self._key = bytes(row["secret"])

    def mac(self, label: str, message: str) -> str:
        """HMAC-SHA256 of ``message`` under a key of its own for ``label``, base64url."""
        digest = hmac.new(self._key, f"{label}\x00{message}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def anonymous(self) -> CookieSession:
        return CookieSession(secrets.token_urlsafe(18), self.clock() + ANONYMOUS_LIFETIME)

    def start(self, developer_id: str, issuer: str | None = None) -> CookieSession:
        """A new signed-in session (fresh ``sid``) with its row; ``issuer`` names the identity
        provider that vouched for the developer (None: a portal password or link).

        The row is written only while the developer is active and, for a provider's session,
        while their organisation still names that issuer, in the same statement
        (:class:`MemberNotActiveError`, :class:`IssuerNotTrustedError`): a sign-in that passed
        its checks just before a deactivation, or before the admin stopped corporate sign-in,
        cannot leave a session behind that the change did not end (and that would work again
        were the member reactivated).
        """
        session = CookieSession(secrets.token_urlsafe(18), self.clock() + SIGNED_IN_LIFETIME,
                                developer_id)
        row = (_hash(session.sid), developer_id, self.clock(), session.expires_at, issuer)
        written = self.db.execute(
            "INSERT INTO portal_dev_sessions"
            " (sid_hash, developer_id, created_at, expires_at, issuer) SELECT ?, ?, ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM portal_developers d JOIN portal_organisations o"
            " ON o.org_id = d.org_id WHERE d.developer_id = ? AND d.active = 1"
            " AND (? IS NULL OR o.idp_issuer = ?))",
            (*row, developer_id, issuer, issuer))
        if written:
            return session
        active = self.db.one("SELECT 1 FROM portal_developers WHERE developer_id = ?"
                             " AND active = 1", (developer_id,))
        if active is None or issuer is None:
            raise MemberNotActiveError(developer_id)
        raise IssuerNotTrustedError(issuer)

    def end(self, session: CookieSession) -> None:
        self.db.execute("UPDATE portal_dev_sessions SET ended_at = ? WHERE sid_hash = ?"
                        " AND ended_at IS NULL", (self.clock(), _hash(session.sid)))

    def end_all(self, developer_id: str) -> int:
        """End every session of a developer (the kill switch signs them out everywhere)."""
        return self.db.execute("UPDATE portal_dev_sessions SET ended_at = ?"
                               " WHERE developer_id = ? AND ended_at IS NULL",
                               (self.clock(), developer_id))

    def end_vouched_elsewhere(self, org_id: str, trusted: str | None,
                              keep: CookieSession | None = None) -> int:
        """End the sessions of the organisation's members that an identity provider other
        than ``trusted`` started (every provider's, when ``trusted`` is None), but ``keep``
        (the admin's own, who is handing out the set-a-password links)."""
        return self.db.execute(
            "UPDATE portal_dev_sessions SET ended_at = ? WHERE ended_at IS NULL"
            " AND issuer IS NOT NULL AND issuer IS NOT ? AND sid_hash IS NOT ?"
            " AND developer_id IN (SELECT developer_id FROM portal_developers WHERE org_id = ?)",
            (self.clock(), trusted, None if keep is None else _hash(keep.sid), org_id))

    def encode(self, session: CookieSession) -> str:
        payload = json.dumps({"sid": session.sid, "signed": session.developer_id is not None,
                              "exp": session.expires_at}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self.mac('session', body)}"

    def decode(self, cookie: str | None) -> CookieSession | None:
        """The session a cookie holds, or None when absent, forged, expired or ended."""
        if not cookie or len(cookie) > MAX_COOKIE or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self.mac("session", body).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            sid, signed, expires_at = str(data["sid"]), bool(data["signed"]), float(data["exp"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        now = self.clock()
        if now >= expires_at:
            return None
        if not signed:
            return CookieSession(sid, expires_at)
        row = self.db.one("SELECT developer_id, expires_at, ended_at FROM portal_dev_sessions"
                          " WHERE sid_hash = ?", (_hash(sid),))
        if row is None or row["ended_at"] is not None or now >= row["expires_at"]:
            return None
        return CookieSession(sid, expires_at, row["developer_id"])

    def csrf_token(self, session: CookieSession) -> str:
        return self.mac("csrf", session.sid)

    def csrf_ok(self, session: CookieSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            str(token).encode(), self.csrf_token(session).encode()
        )


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
