"""Six-digit one-time codes sent to a subscriber's handset to sign in to the portal.

A code is kept only as an HMAC under the operator's portal secret (a stolen table does not
give six-digit codes away to a brute force), lives :data:`LIFETIME` seconds, allows
:data:`MAX_ATTEMPTS` wrong guesses and is used once. Sending is throttled per number
(:data:`MAX_SENDS` per :data:`SEND_WINDOW`), for numbers the operator serves and numbers it
does not alike, so the answers never tell who is a subscriber. The operator's housekeeping
drops rows whose code and throttle window are both over.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..storage import Database
from ..types import Clock
from .sessions import PortalSecret

LIFETIME = 300.0
MAX_ATTEMPTS = 5
MAX_SENDS = 3
SEND_WINDOW = 600.0
DIGITS = 6

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_codes (
    msisdn TEXT PRIMARY KEY,
    code_mac TEXT,
    expires_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    window_start REAL NOT NULL,
    sends INTEGER NOT NULL
);
"""


class Check(StrEnum):
    """What a code entered for a number turned out to be."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    """Not the code; guesses remain."""
    SPENT = "spent"
    """No usable code: never sent, expired, used, or too many wrong guesses."""


@dataclass(frozen=True)
class Issued:
    """A code to deliver, or None when the number asked for too many codes lately."""

    code: str | None
    retry_after: float = 0.0


class OneTimeCodes:
    """The portal's sign-in codes, per number, in the operator's database."""

    def __init__(
        self,
        db: Database,
        secret: PortalSecret,
        *,
        clock: Clock,
        randbelow: Callable[[int], int] = secrets.randbelow,
    ) -> None:
        self.db = db
        self.secret = secret
        self.clock = clock
        self.randbelow = randbelow
        db.ensure_schema(SCHEMA)

    def _mac(self, msisdn: str, code: str) -> str:
        return self.secret.mac("one-time-code", f"{msisdn}\x00{code}")

    def issue(self, msisdn: str) -> Issued:
        """A fresh code for ``msisdn`` (replacing any earlier one), unless throttled."""
        now = self.clock()
        with self.db.transaction():
            row = self.db.one("SELECT * FROM portal_codes WHERE msisdn = ?", (msisdn,))
            window_start, sends = (now, 0)
            if row is not None and now - row["window_start"] < SEND_WINDOW:
                window_start, sends = row["window_start"], row["sends"]
            if sends >= MAX_SENDS:
                return Issued(None, window_start + SEND_WINDOW - now)
            code = f"{self.randbelow(10**DIGITS):0{DIGITS}d}"
            self.db.execute(
                "INSERT OR REPLACE INTO portal_codes (msisdn, code_mac, expires_at, attempts,"
                " window_start, sends) VALUES (?, ?, ?, 0, ?, ?)",
                (msisdn, self._mac(msisdn, code), now + LIFETIME, window_start, sends + 1),
            )
        return Issued(code)

    def check(self, msisdn: str, code: str) -> Check:
        """Whether ``code`` is the live code of ``msisdn``; an accepted code is used up."""
        now = self.clock()
        with self.db.transaction():
            row = self.db.one("SELECT * FROM portal_codes WHERE msisdn = ?", (msisdn,))
            if (row is None or row["code_mac"] is None or now >= row["expires_at"]
                    or row["attempts"] >= MAX_ATTEMPTS):
                return Check.SPENT
            if hmac.compare_digest(row["code_mac"], self._mac(msisdn, code)):
                self.db.execute("UPDATE portal_codes SET code_mac = NULL WHERE msisdn = ?",
                                (msisdn,))
                return Check.ACCEPTED
            self.db.execute("UPDATE portal_codes SET attempts = attempts + 1 WHERE msisdn = ?",
                            (msisdn,))
            return Check.WRONG if row["attempts"] + 1 < MAX_ATTEMPTS else Check.SPENT
