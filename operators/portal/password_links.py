"""One-use links that let a member set a portal password when corporate sign-in stops.

A member whom the organisation's identity provider signed in has no portal password:
:meth:`DeveloperAccounts.create_federated` never gives one, and linking a password member to
the provider clears theirs (so that only the provider, whose SCIM and RISC deprovision, can let
them in). When the organisation's admin stops corporate sign-in, nothing would let those
members in again, the admin included. Stopping it therefore gives each active member without a
password a link, shown once to the admin who stopped it, as invitations are: the portal sends
no mail.

A link is good once, for a week, while its member is active and while the organisation signs
in with passwords: federating again voids every link (and the next stop gives new ones), and
a leaver's link lets nobody in.

The same links reset a forgotten password (:mod:`operators.portal.password_reset`): those are
mailed to the member's address, good for an hour, and following one also confirms the
address (whoever read the mail holds it).
"""

from __future__ import annotations

import secrets
from typing import NamedTuple

from ..storage import Database
from ..types import Clock
from .accounts import AccountError, DeveloperAccounts, strong_password_hash
from .developers import Developer
from .passwords import code_digest

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_password_links (
    code_hash TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX IF NOT EXISTS portal_password_links_developer
    ON portal_password_links (developer_id);
"""

LINK_LIFETIME = 7 * 24 * 3600.0
"""As long as an invitation: the admin hands links over by hand."""

PATH = "/portal/password"


class PasswordLink(NamedTuple):
    """A member without a password and the code of the link that lets them set one."""

    developer: Developer
    code: str


class PasswordLinks:
    """Issues and redeems the set-a-password links of one party's portal."""

    def __init__(self, db: Database, accounts: DeveloperAccounts, clock: Clock) -> None:
        self.db = db
        self.accounts = accounts
        self.clock = clock
        db.ensure_schema(SCHEMA)
        db.ensure_column("portal_password_links", "mailed", "INTEGER NOT NULL DEFAULT 0")
        accounts.void_at_deactivation("password links", self._void)

    def _void(self, developer_id: str) -> None:
        self.db.execute("UPDATE portal_password_links SET used_at = ? WHERE developer_id = ?"
                        " AND used_at IS NULL", (self.clock(), developer_id))

    def issue(self, developer_id: str, lifetime: float, *, mailed: bool = False) -> str:
        """A new link's code for the member (inside the caller's transaction, if any)."""
        code = secrets.token_urlsafe(18)
        self.db.execute(
            "INSERT INTO portal_password_links (code_hash, developer_id, expires_at, mailed)"
            " VALUES (?, ?, ?, ?)",
            (code_digest(code), developer_id, self.clock() + lifetime, int(mailed)))
        return code

    def mailed(self, code: str) -> bool:
        """Whether the link was mailed (a reset) rather than shown to an admin."""
        row = self.db.one("SELECT mailed FROM portal_password_links WHERE code_hash = ?",
                          (code_digest(code),))
        return row is not None and bool(row["mailed"])

    def stop_federating(self, org_id: str) -> list[PasswordLink]:
        """Turn the organisation's corporate sign-in off and give every active member who has
        no password a link, in one transaction: a member the provider signs in meanwhile is
        either linked before (and gets a link) or refused after. Links an earlier stop gave
        are void from now; an organisation already signing in with passwords gets none."""
        links: list[PasswordLink] = []
        with self.db.transaction():
            stopped = self.db.execute(
                "UPDATE portal_organisations SET idp_issuer = NULL WHERE org_id = ?"
                " AND idp_issuer IS NOT NULL", (org_id,))
            if not stopped:  # already off (a second click): the links given then still stand
                return links
            # an earlier stop's unused links die with this one: who saw them then (an admin the
            # provider has since deprovisioned) must not set a member's password now
            self.db.execute(
                "UPDATE portal_password_links SET used_at = ? WHERE used_at IS NULL AND"
                " developer_id IN (SELECT developer_id FROM portal_developers WHERE org_id = ?)",
                (self.clock(), org_id))
            rows = self.db.all(
                "SELECT developer_id FROM portal_developers WHERE org_id = ? AND active = 1"
                " AND password_hash IS NULL ORDER BY rowid", (org_id,))
            for row in rows:
                developer = self.accounts.developer(row["developer_id"])
                assert developer is not None
                links.append(PasswordLink(developer, self.issue(developer.developer_id,
                                                                LINK_LIFETIME)))
        return links

    def holder(self, code: str) -> Developer:
        """The member a link is for, if it can still be used; AccountError (400) otherwise."""
        row = self.db.one("SELECT * FROM portal_password_links WHERE code_hash = ?",
                          (code_digest(code),))
        if row is None or row["used_at"] is not None or row["expires_at"] <= self.clock():
            raise AccountError(400, "code", "code: this link is unknown, used or expired; ask "
                                            "for a new one (Forgot your password? on the "
                                            "sign-in page), or your organisation's admin.")
        developer = self.accounts.developer(row["developer_id"])
        if developer is None or not developer.active:
            raise AccountError(400, "code", "code: this link's account is no longer active.")
        organisation = self.accounts.organisation(developer.org_id)
        if organisation is not None and organisation.idp_issuer is not None:
            raise AccountError(400, "code", f"code: {organisation.name} signs in through its "
                                            "identity provider again: use its corporate "
                                            "sign-in.")
        return developer

    def redeem(self, code: str, password: str) -> Developer:
        """Set the link's member's password and spend the link (and any other of theirs).

        The strength is checked first, so a weak password spends nothing, and the slow hash
        runs before the transaction. Then one conditional statement spends the link only while
        it is unused and unexpired, its member active and the organisation signing in with
        passwords: two submissions set one password, and a member deactivated or an
        organisation federated meanwhile gets none."""
        developer = self.holder(code)
        password_hash = strong_password_hash(password)
        now = self.clock()
        with self.db.transaction():
            spent = self.db.execute(
                "UPDATE portal_password_links SET used_at = ? WHERE code_hash = ?"
                " AND developer_id = ? AND used_at IS NULL AND expires_at > ?"
                " AND EXISTS (SELECT 1 FROM portal_developers d JOIN portal_organisations o"
                " ON o.org_id = d.org_id WHERE d.developer_id = ? AND d.active = 1"
                " AND o.idp_issuer IS NULL)",
                (now, code_digest(code), developer.developer_id, now, developer.developer_id))
            if not spent:
                raise AccountError(400, "code", "code: this link was used, or its account or "
                                                "organisation changed, meanwhile.")
            self.db.execute("UPDATE portal_password_links SET used_at = ? WHERE developer_id = ?"
                            " AND used_at IS NULL", (now, developer.developer_id))
            self.db.execute("UPDATE portal_developers SET password_hash = ? WHERE developer_id = ?",
                            (password_hash, developer.developer_id))
            # a mailed link was read at the member's address: that confirms it
            confirmed = self.db.execute(
                "UPDATE portal_developers SET email_confirmed = 1 WHERE developer_id = ? AND"
                " email_confirmed = 0 AND EXISTS (SELECT 1 FROM portal_password_links"
                " WHERE code_hash = ? AND mailed = 1)",
                (developer.developer_id, code_digest(code)))
        if confirmed:
            self.accounts.note_email_confirmed(developer)
        return developer
