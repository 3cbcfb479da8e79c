"""What the developer portal needs from the party that serves it.

An operator and the aggregator both serve ``/portal``; neither is imported here. Each hands the
portal a :class:`PortalHost` built from its own parts, so the pages, the accounts and the
billing read the same objects the gateway and the identity server use (one client registry,
one plan store, one usage ledger), and a change made in the portal is what the next call sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import OperatorConfig
from ..storage import Database
from ..test_numbers import TestNumber
from ..types import Clock

if TYPE_CHECKING:
    from ..analytics.activity_log import ActivityLog
    from ..billing import IssuedInvoices
    from ..gateway.call_statistics import CallStatistics
    from ..gateway.metering import UsageLedger
    from ..gateway.subscriptions import PlanStore
    from ..identity import IdentityServer


@dataclass
class PortalHost:
    """The serving party's parts the portal reads and changes."""

    config: OperatorConfig
    """Whose plans, purposes and admin secret these are (the aggregator passes its identity
    server's config)."""
    db: Database
    """The party's own database: accounts, sessions and applications live next to its clients."""
    identity: IdentityServer
    """The client registry and the token endpoint applications use."""
    plans: PlanStore
    """What the gateway's admission reads: a subscription made in the portal is the next
    call's plan."""
    clock: Clock
    """Epoch seconds (sessions, sign-up dates, usage days, invoices)."""
    origin: str
    """The public origin the pages are served on, e.g. ``http://127.0.0.1:8101``."""
    api_root: str
    """Where applications send CAMARA calls (the gateway's or the aggregator's API root)."""
    apis: tuple[str, ...]
    """The CAMARA API names this party serves (operation table's ``api`` values)."""
    usage: UsageLedger | None = None
    """The party's usage events; the aggregator has none of its own (its calls are metered by
    the operator that served them, and recorded for settlement)."""
    issued: IssuedInvoices | None = None
    """Closed months' invoices as first issued (with ``usage``): what the invoice pages give
    for a past month once it is closed, so a later price change does not re-rate it."""
    statistics: CallStatistics | None = None
    """The gateway's call statistics, so the usage pages also show calls not yet written; None
    reads the statistics tables in ``db`` alone (a party without a gateway of its own)."""
    activity: ActivityLog | None = None
    """Where developers' milestones (sign-up, applications, keys, plans, production,
    suspension) go for the analytics; None: the party keeps none."""
    kind: str = "operator"
    """``operator`` or ``aggregator``: what the pages call the party."""
    test_numbers: Callable[[], list[tuple[TestNumber, str]]] | None = None
    """The documented test numbers a sandbox application reaches here (the console and the
    first-call example name them); None: the party's own subscribers' (an aggregator, which
    has none, lists its operators')."""

    def sandbox_numbers(self) -> list[tuple[TestNumber, str]]:
        if self.test_numbers is not None:
            return self.test_numbers()
        return self.identity.subscribers.test_numbers()
