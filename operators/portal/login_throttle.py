"""Login throttling: too many failed sign-ins per email or per client address wait a while.

A sliding window on a clock (a callable returning epoch seconds): after ``limit`` failures
within ``window`` seconds for the same email, or for the same client address, sign-in is
refused until the oldest of them leaves the window; the answer says how long
(``Retry-After``). A success clears the email's failures (not the address's: one address
guessing many accounts stays slow). Counting per email stops guessing one account from many
addresses; counting per address stops one address guessing many accounts.

The failures are rows of the party's own database, one per failure and key, not memory of
one process: the replicas of ``ogsim up --autoscale`` share that file, so password guesses
spread over N replicas count once (in memory each replica allowed ``limit``, N times the
limit in all), and a restart forgets nothing. Every failure deletes the rows that have left
the window and keeps the table at :data:`MAX_ROWS` at most (the oldest go first), so an
attacker with many emails and addresses cannot grow it without bound; the operator's
housekeeping deletes them past the window too, so a failure followed by none is not kept.
Keys are stored as hashes: the table keeps what strangers typed into the email field,
sometimes a password.

Another form that strangers may send over and over (asking for a password reset) uses the
same table under a ``scope`` of its own, so its counts and sign-in's never mix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..storage import Database
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_login_failures (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_login_failures_key ON portal_login_failures (key, at);
CREATE INDEX IF NOT EXISTS portal_login_failures_at ON portal_login_failures (at);
"""

WINDOW = 15 * 60.0
"""Seconds a failure counts for: the default window, and how long housekeeping keeps a row
(past it, no rule reads the row again)."""

MAX_ROWS = 200_000
"""Failure rows kept at most (two per failure with an address), every scope's together: bounds
the table an attacker with many emails and addresses can make, at a few megabytes."""


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt let through, already counted as a failure until it succeeds."""

    rows: tuple[tuple[int, str, float], ...]
    """Each row it counted, as (rowid, key, at): a rowid alone may name another row by the
    time the attempt is taken back (SQLite reuses the largest rowid once it is deleted, as
    a successful sign-in for the same email deletes it)."""


class LoginThrottle:
    """Failures per email and per address in a sliding window, in the party's database."""

    def __init__(self, db: Database, *, clock: Clock, limit: int = 5,
                 window: float = WINDOW, scope: str = "") -> None:
        if not 0 < window <= WINDOW:
            # the table keeps a row for WINDOW, whoever wrote it (housekeeping as well)
            raise ValueError(f"window: between 0 and {WINDOW:g} seconds, not {window!r}")
        self.db = db
        self.clock = clock
        self.limit = limit
        self.window = window
        self.scope = scope
        """Prefix of this throttle's keys: "" for sign-in (the rows written before scopes)."""
        db.ensure_schema(SCHEMA)

    def retry_after(self, email: str | None, address: str | None) -> float | None:
        """Seconds to wait before another attempt is heard, or None when one may try now
        (``email`` None: counted per address only)."""
        now = self.clock()
        waits = [self._wait(key, now) for key in self._keys(email, address)]
        return max((w for w in waits if w is not None), default=None)

    def attempt(self, email: str | None, address: str | None) -> Attempt | float:
        """Let one sign-in attempt be heard, counted as a failure at once (Attempt), or the
        seconds to wait (float).

        The limit is checked and the try counted in one transaction: checked first and
        counted after the password (:meth:`retry_after`, then :meth:`failed`), guesses sent
        at once to several replicas all passed the check before any was counted, and each
        scrypt check takes long enough for many to be under way. :meth:`succeeded` takes
        the count back."""
        now = self.clock()
        with self.db.transaction():
            wait = self.retry_after(email, address)
            if wait is not None:
                return wait
            self._forget_old(now)
            rows = tuple(
                (self.db.insert("INSERT INTO portal_login_failures (key, at) VALUES (?, ?)",
                                (key, now)), key, now)
                for key in self._keys(email, address))
            self._keep_bounded()
        return Attempt(rows)

    def failed(self, email: str, address: str | None) -> None:
        """Count a failed sign-in against the email and the address (one row each)."""
        now = self.clock()
        with self.db.transaction():
            self._forget_old(now)
            for key in self._keys(email, address):
                self.db.execute("INSERT INTO portal_login_failures (key, at) VALUES (?, ?)",
                                (key, now))
            self._keep_bounded()

    def succeeded(self, email: str, attempt: Attempt | None = None) -> None:
        """Forget the email's failures, and ``attempt`` (the address's other failures stay
        counted)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM portal_login_failures WHERE key = ?",
                            (self._key("email", email.strip().lower()),))
            for row in attempt.rows if attempt is not None else ():
                self.db.execute("DELETE FROM portal_login_failures WHERE rowid = ? AND key = ?"
                                " AND at = ?", row)

    def _wait(self, key: str, now: float) -> float | None:
        """Until the ``limit``-th newest failure of ``key`` in the window leaves it, or None
        while fewer than ``limit`` are in it."""
        row = self.db.one(
            "SELECT at FROM portal_login_failures WHERE key = ? AND at > ?"
            " ORDER BY at DESC LIMIT 1 OFFSET ?",
            (key, now - self.window, self.limit - 1),
        )
        if row is None:
            return None
        return max(1.0, float(row["at"]) + self.window - now)

    def _forget_old(self, now: float) -> None:
        """Rows past :data:`WINDOW` count for nobody any more (not past this throttle's own
        window: the rows of every scope are in the table, and another may read further back)."""
        self.db.execute("DELETE FROM portal_login_failures WHERE at <= ?", (now - WINDOW,))

    def _keep_bounded(self) -> None:
        """Keep the newest :data:`MAX_ROWS` rows. Each row's rowid is above every older one's
        (SQLite gives a new row the largest rowid plus one), so the rows at or below the
        largest minus :data:`MAX_ROWS` are the oldest, found through the rowid alone."""
        self.db.execute(
            "DELETE FROM portal_login_failures WHERE rowid <="
            " (SELECT MAX(rowid) FROM portal_login_failures) - ?",
            (MAX_ROWS,),
        )

    def _keys(self, email: str | None, address: str | None) -> list[str]:
        keys = [] if email is None else [self._key("email", email.strip().lower())]
        if address:
            keys.append(self._key("address", address))
        return keys

    def _key(self, kind: str, value: str) -> str:
        return hashlib.sha256(f"{self.scope}{kind}:{value}".encode()).hexdigest()
