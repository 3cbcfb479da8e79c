"""One party's developer portal: its host, its accounts store and its guard, built together."""

from __future__ import annotations

from dataclasses import dataclass, field

from .accounts import DeveloperAccounts
from .email_confirmation import EmailConfirmations
from .guard import PortalGuard
from .host import PortalHost
from .outbox import Outbox
from .password_work import PasswordWork


@dataclass
class DeveloperPortal:
    """What every page router of ``/portal`` is built from."""

    host: PortalHost
    accounts: DeveloperAccounts
    guard: PortalGuard
    outbox: Outbox
    """The party's mail, read by the operator admin on ``/portal/admin/outbox``."""
    confirmations: EmailConfirmations
    """The links that confirm a typed address."""
    passwords: PasswordWork = field(default_factory=PasswordWork)
    """Where sign-up, sign-in, join and set-a-password hash and check passwords."""

    @classmethod
    def of(cls, host: PortalHost) -> DeveloperPortal:
        accounts = DeveloperAccounts(host.db, host.identity, host.clock, activity=host.activity)
        outbox = Outbox(host.db, host.clock)
        confirmations = EmailConfirmations(host.db, accounts, outbox, host.clock,
                                           origin=host.origin, sender=host.config.display_name)
        return cls(host, accounts, PortalGuard(host, accounts), outbox, confirmations)

    def close(self) -> None:
        """Stop the password threads (at the app's shutdown)."""
        self.passwords.close()

    def deactivate(self, developer_id: str) -> list[str]:
        """The kill switch with sign-out everywhere (what deprovisioning calls): the developer
        is inactive, their applications suspended and their tokens refused on the next call,
        and every portal session of theirs ended. Returns the suspended client ids."""
        suspended = self.accounts.deactivate(developer_id)
        self.guard.end_sessions(developer_id)
        return suspended
