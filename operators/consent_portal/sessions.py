"""Signed-cookie sessions of the portal, with a CSRF token bound to each session.

The cookie holds ``{sid, msisdn, exp}`` and an HMAC-SHA256 over it under the operator's portal
secret (:class:`PortalSecret`, kept in the operator's database so every data centre sharing
the file accepts the same cookies). A visitor who has not signed in gets an anonymous session
too, so the sign-in forms carry a CSRF token; signing in issues a new ``sid`` (no session
fixation). The CSRF token is an HMAC of the ``sid``: nothing to store, and useless with another
session's cookie. Signing out records the ``sid`` as ended until its cookie would have expired
anyway, so a copy of the cookie taken before (another browser, a shared computer) opens
nothing after.
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

COOKIE = "ogsim_my"
SIGNED_IN_LIFETIME = 30 * 60.0
"""A signed-in session lasts 30 minutes from sign-in."""
ANONYMOUS_LIFETIME = 60 * 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS portal_ended_sessions (
    sid TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class PortalSecret:
    """The operator's key for the portal's HMACs (cookies, CSRF, one-time code hashes)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        db.execute("INSERT OR IGNORE INTO portal_secret (id, secret) VALUES (1, ?)",
                   (secrets.token_bytes(32),))
        row = db.one("SELECT secret FROM portal_secret WHERE id = 1")
        assert row is not None
        self._key = bytes(row["secret"])

    def mac(self, label: str, message: str) -> str:
        """HMAC-SHA256 of ``message`` under a key of its own for ``label``, base64url."""
        digest = hmac.new(self._key, f"{label}\x00{message}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Session:
    """Who the browser is: ``msisdn`` None until signed in."""

    sid: str
    msisdn: str | None
    expires_at: float

    @property
    def signed_in(self) -> bool:
        return self.msisdn is not None


class Sessions:
    """Issues, reads and checks the portal's cookies."""

    def __init__(self, secret: PortalSecret, *, clock: Clock) -> None:
        self.secret = secret
        self.clock = clock

    def anonymous(self) -> Session:
        return Session(secrets.token_urlsafe(18), None, self.clock() + ANONYMOUS_LIFETIME)

    def signed_in(self, msisdn: str) -> Session:
        """A fresh session (new ``sid``) for ``msisdn``."""
        return Session(secrets.token_urlsafe(18), msisdn, self.clock() + SIGNED_IN_LIFETIME)

    def encode(self, session: Session) -> str:
        payload = json.dumps({"sid": session.sid, "msisdn": session.msisdn,
                              "exp": session.expires_at}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self.secret.mac('session', body)}"

    def decode(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, or None when it is absent, forged or expired."""
        if not cookie or len(cookie) > 1024 or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), self.secret.mac("session", body).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["sid"]), data["msisdn"], float(data["exp"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if session.msisdn is not None and not isinstance(session.msisdn, str):
            return None
        if self.clock() >= session.expires_at:
            return None
        if session.signed_in and self._ended(session.sid):
            return None
        return session

    def end(self, session: Session) -> None:
        """Sign out: the session's cookie, wherever a copy of it is, opens nothing from now."""
        now = self.clock()
        db = self.secret.db
        db.execute("DELETE FROM portal_ended_sessions WHERE expires_at <= ?", (now,))
        db.execute("INSERT OR REPLACE INTO portal_ended_sessions (sid, expires_at) VALUES (?, ?)",
                   (session.sid, session.expires_at))

    def _ended(self, sid: str) -> bool:
        return self.secret.db.one(
            "SELECT 1 FROM portal_ended_sessions WHERE sid = ?", (sid,)) is not None

    def csrf_token(self, session: Session) -> str:
        return self.secret.mac("csrf", session.sid)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            str(token).encode(), self.csrf_token(session).encode()
        )
