"""Address confirmation: a one-use link mailed to a member who typed their address.

A member who signs up or joins by password typed an address nobody has checked; until they
follow the link mailed to it (to the party's :class:`~operators.portal.outbox.Outbox`) they
use the sandbox but cannot ask for production, so the operator's production customers are
people it can reach. Members whom the organisation's identity provider signs in are confirmed
by it (its ID token's ``email_verified``), and members from before this rule keep what they
had.

The link opens a page with a button: the POST confirms. A mail scanner that fetches every link
of a message therefore confirms nothing. A link is good once, for :data:`LINK_LIFETIME`, and
only for the address it was sent to; another may be asked for once per :data:`RESEND_INTERVAL`.
"""

from __future__ import annotations

import secrets

from ..storage import Database
from ..types import Clock
from .accounts import AccountError, DeveloperAccounts
from .developers import Developer
from .outbox import Outbox
from .passwords import code_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_email_codes (
    code_hash TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL,
    email TEXT NOT NULL,
    sent_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX IF NOT EXISTS portal_email_codes_developer
    ON portal_email_codes (developer_id, sent_at);
"""

PATH = "/portal/email/confirm"
LINK_LIFETIME = 24 * 3600.0
RESEND_INTERVAL = 60.0
"""Seconds between two links to one member: the button cannot be used to flood a mailbox."""

SUBJECT = "Confirm your address for the developer portal"


class EmailConfirmations:
    """Mails confirmation links and redeems them, for one party's portal."""

    def __init__(self, db: Database, accounts: DeveloperAccounts, outbox: Outbox, clock: Clock,
                 *, origin: str, sender: str) -> None:
        self.db = db
        self.accounts = accounts
        self.outbox = outbox
        self.clock = clock
        self.origin = origin.rstrip("/")
        self.sender = sender
        """Who the message says it is from (the party's display name)."""
        db.ensure_schema(SCHEMA)
        accounts.void_at_deactivation("confirmation links", self._void)

    def _void(self, developer_id: str) -> None:
        self.db.execute("UPDATE portal_email_codes SET used_at = ? WHERE developer_id = ?"
                        " AND used_at IS NULL", (self.clock(), developer_id))

    def send(self, developer: Developer) -> None:
        """Mail a new link to ``developer``'s address; AccountError when it is confirmed
        already (409) or a link went less than :data:`RESEND_INTERVAL` ago (429)."""
        if developer.email_confirmed:
            raise AccountError(409, "email", "email: your address is confirmed already.")
        code = secrets.token_urlsafe(18)
        now = self.clock()
        with self.db.transaction():
            last = self.db.one("SELECT MAX(sent_at) AS at FROM portal_email_codes"
                               " WHERE developer_id = ?", (developer.developer_id,))
            if last is not None and last["at"] is not None and now - last["at"] < RESEND_INTERVAL:
                raise AccountError(429, "email", "email: a link was sent less than a minute "
                                                 "ago; look for it, or ask again in a minute.")
            self.db.execute("DELETE FROM portal_email_codes WHERE expires_at <= ?", (now,))
            self.db.execute(
                "INSERT INTO portal_email_codes (code_hash, developer_id, email, sent_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?)",
                (code_digest(code), developer.developer_id, developer.email, now,
                 now + LINK_LIFETIME))
            self.outbox.send(developer.email, SUBJECT, self._body(developer, code))

    def _body(self, developer: Developer, code: str) -> str:
        return (f"Hello {developer.name},\n\n"
                f"Confirm that {developer.email} is your address on {self.sender}'s developer "
                f"portal by opening this link within 24 hours:\n\n"
                f"{self.origin}{PATH}?code={code}\n\n"
                "Until then your applications work in the sandbox but cannot ask for "
                "production. If you did not sign up, ignore this message.\n")

    def holder(self, code: str) -> Developer:
        """The member a link is for, if it can still be used; AccountError (400) otherwise."""
        row = self.db.one("SELECT * FROM portal_email_codes WHERE code_hash = ?",
                          (code_digest(code),))
        if row is None or row["used_at"] is not None or row["expires_at"] <= self.clock():
            raise AccountError(400, "code", "code: this link is unknown, used or expired; sign "
                                            "in and ask for a new one.")
        developer = self.accounts.developer(row["developer_id"])
        if developer is None or not developer.active or developer.email != row["email"]:
            raise AccountError(400, "code", "code: this link's account is no longer active.")
        return developer

    def confirm(self, code: str) -> Developer:
        """Confirm the link's address and spend the link (and every other of its member's).

        One conditional statement spends it only while it is unused and unexpired and its
        member active at the address it was sent to: two submissions confirm once."""
        developer = self.holder(code)
        now = self.clock()
        with self.db.transaction():
            spent = self.db.execute(
                "UPDATE portal_email_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL"
                " AND expires_at > ? AND EXISTS (SELECT 1 FROM portal_developers d WHERE"
                " d.developer_id = portal_email_codes.developer_id AND d.active = 1"
                " AND d.email = portal_email_codes.email)",
                (now, code_digest(code), now))
            if not spent:
                raise AccountError(400, "code", "code: this link was used, or its account "
                                                "changed, meanwhile.")
            self.db.execute("UPDATE portal_email_codes SET used_at = ? WHERE developer_id = ?"
                            " AND used_at IS NULL", (now, developer.developer_id))
            changed = self.db.execute("UPDATE portal_developers SET email_confirmed = 1"
                                      " WHERE developer_id = ? AND email_confirmed = 0",
                                      (developer.developer_id,))
        confirmed = self.accounts.developer(developer.developer_id)
        assert confirmed is not None
        if changed:  # not when a reset link confirmed it meanwhile
            self.accounts.note_email_confirmed(confirmed)
        return confirmed
