"""Forgotten passwords: a link mailed to the member's address lets them choose a new one.

The page answers alike whether or not the address belongs to anyone, so it tells a stranger
nothing about who has an account. Only a member who signs in with a password gets a link
(a set-a-password link, :class:`~operators.portal.password_links.PasswordLinks`, mailed and
good for :data:`RESET_LIFETIME`); a member of an organisation that signs in through its
identity provider is mailed a note saying so instead. At most one mail per member per
:data:`RESET_INTERVAL`, so the form cannot be used to flood a mailbox, and at most
:data:`ASKS_PER_ADDRESS` requests per client address in a window, so it cannot flood the
outbox either.

Because the link was read at the member's address, following it also confirms the address;
the portal then ends the member's other sessions, as a new password should.
"""

from __future__ import annotations

from urllib.parse import urlencode

from .accounts import DeveloperAccounts
from .developers import Developer
from .outbox import Outbox
from .password_links import PATH, PasswordLinks

RESET_LIFETIME = 3600.0
RESET_INTERVAL = 60.0
ASKS_PER_ADDRESS = 10
"""Reset requests one client address may send in the sign-in throttle's window (15 minutes),
whoever they name: past it the form answers 429, so knowing many members' addresses does not
let one client fill the outbox."""
SUBJECT = "Choose a new password for the developer portal"
CORPORATE_PATH = "/portal/sign-in/corporate"


class PasswordResets:
    """Mails reset links (or a note) to the members who ask."""

    def __init__(self, links: PasswordLinks, accounts: DeveloperAccounts, outbox: Outbox, *,
                 origin: str, sender: str) -> None:
        self.links = links
        self.accounts = accounts
        self.outbox = outbox
        self.origin = origin.rstrip("/")
        self.sender = sender

    def ask(self, email: str) -> None:
        """Mail the member with this address a reset link, or a note, or nothing at all (no
        such active member, or one mailed less than :data:`RESET_INTERVAL` ago)."""
        developer = self.accounts.by_email(email)
        if developer is None or not developer.active:
            return
        with self.links.db.transaction():
            # the outbox is the record of what was mailed: one reset mail (link or note) a minute
            last = self.outbox.last_sent(developer.email, SUBJECT)
            if last is not None and self.links.clock() - last < RESET_INTERVAL:
                return
            organisation = self.accounts.organisation(developer.org_id)
            if organisation is not None and organisation.idp_issuer is not None:
                self.outbox.send(developer.email, SUBJECT, self._federated(
                    developer, organisation.name, organisation.org_id))
                return
            code = self.links.issue(developer.developer_id, RESET_LIFETIME, mailed=True)
            self.outbox.send(developer.email, SUBJECT, self._reset(developer, code))

    def _reset(self, developer: Developer, code: str) -> str:
        return (f"Hello {developer.name},\n\n"
                f"Someone asked to choose a new password for {developer.email} on "
                f"{self.sender}'s developer portal. If it was you, open this link within an "
                f"hour:\n\n{self.origin}{PATH}?code={code}\n\n"
                "Your other sessions end when the new password is set. If it was not you, "
                "ignore this message: your password stays as it is.\n")

    def _federated(self, developer: Developer, organisation: str, org_id: str) -> str:
        return (f"Hello {developer.name},\n\n"
                f"Someone asked to choose a new password for {developer.email} on "
                f"{self.sender}'s developer portal. {organisation} signs in through its own "
                "identity provider, so the portal keeps no password of yours: sign in at\n\n"
                f"{self.origin}{CORPORATE_PATH}?{urlencode({'org': org_id})}\n\n"
                "and recover your password the way your organisation does.\n")
