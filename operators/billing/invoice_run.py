"""The month-end invoice run: every closed month's invoices issued once, when it closes.

:class:`~operators.billing.issued.IssuedInvoices` freezes an invoice the first time it is
drawn after its month closed. Left at that, an invoice nobody opened for weeks would still be
rated from the config of the day it is first opened: a price changed in between would reach
a month it was never in force for. The run draws every closed month's invoices (per
application, and per organisation where the party keeps organisations) as soon as the month
closes, so what is issued is what the config said at the close. It runs beside the requests,
once per database (as the housekeeping does), and notes each month it issued, so a restart
issues only the months it missed; a run that fails is retried at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from operators.background import cancel_and_wait
from operators.config import OperatorConfig
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanStore
from operators.types import Clock, Seconds

from .invoices import application_invoices, organisation_invoices
from .issued import IssuedInvoices
from .months import Month
from .rating import ApplicationTerms

__all__ = ["InvoiceRun"]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS billing_invoice_runs (
    month TEXT PRIMARY KEY,
    invoices INTEGER NOT NULL,
    run_at REAL NOT NULL
);
"""


class InvoiceRun:
    """Issues the invoices of each month that closed since the last run.

    ``owners`` and ``terms`` are the developer portal's (client id -> organisation, and when
    applications began and ended); they are set once the portal is installed, and without
    them the run issues invoices per application with a whole month of fees, as
    ``/admin/invoices`` draws them.
    """

    def __init__(
        self,
        config: OperatorConfig,
        plans: PlanStore,
        usage: UsageLedger,
        issued: IssuedInvoices,
        *,
        clock: Clock,
        interval: Seconds = 60.0,
    ) -> None:
        self.config = config
        self.plans = plans
        self.usage = usage
        self.issued = issued
        self.clock = clock
        self.interval = interval
        self.owners: Callable[[], Mapping[str, str]] | None = None
        self.terms: Callable[[], ApplicationTerms] | None = None
        self._task: asyncio.Task[None] | None = None
        issued.db.ensure_schema(SCHEMA)

    def due(self, now: float) -> list[Month]:
        """The closed months no run has issued yet, oldest first, from the month of the first
        usage event or application (fees run without calls): a database that was not served
        at a month's close gets that month issued at its next start."""
        starts = [] if self.terms is None else list(self.terms().since.values())
        first = self.usage.first_at()
        if first is not None:
            starts.append(first)
        if not starts:
            return []
        done = {r["month"] for r in self.issued.db.all("SELECT month FROM billing_invoice_runs")}
        months: list[Month] = []
        month = Month.of(min(starts))
        while self.issued.closed(month, now):
            if str(month) not in done:
                months.append(month)
            month = month.next()
        return months

    def issue(self, month: Month, now: float) -> int:
        """Draw ``month``'s invoices (which stores them as issued); how many there are."""
        events = self.usage.events(since=month.start, until=month.end)
        terms = None if self.terms is None else self.terms()
        issued = application_invoices(
            self.config, self.plans, events, month, now=now, terms=terms, issued=self.issued
        )
        count = len(issued)
        if self.owners is not None:
            count += len(organisation_invoices(
                self.config, self.plans, events, month, self.owners(), now=now, terms=terms,
                issued=self.issued,
            ))
        self.issued.db.execute(
            "INSERT OR IGNORE INTO billing_invoice_runs (month, invoices, run_at) VALUES (?, ?, ?)",
            (str(month), count, now),
        )
        return count

    def run(self) -> dict[str, int]:
        """Issue every month due now; the number of invoices per month issued."""
        now = self.clock()
        counts = {str(month): self.issue(month, now) for month in self.due(now)}
        if counts:
            log.info("%s: invoices issued %s", self.config.id, counts)
        return counts

    # -- live: a background task of the operator's lifespan ----------------------------------

    def start(self) -> None:
        """Run now and then every ``interval`` seconds, in the running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:  # rating a month reads all its events: off the event loop
                await asyncio.to_thread(self.run)
            except Exception:  # a failed run is retried next time, never fatal
                log.exception("%s: the invoice run failed", self.config.id)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
