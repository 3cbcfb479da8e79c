"""The month-end invoice run: a closed month's invoices are issued when it closes, so a price
changed afterwards never reaches them, even if nobody drew them before the change."""

from __future__ import annotations

from operators.billing import (
    LATE_USAGE,
    InvoiceRun,
    IssuedInvoices,
    application_invoices,
)
from operators.billing.rating import ApplicationTerms
from operators.config import OperatorConfig
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database

from .support import DAY, MARCH, FakeClock, event, priced_operator
from .test_issued_invoices import _march, _repriced

CLOSED = MARCH.end + LATE_USAGE


def _run(config: OperatorConfig, db: Database, clock: FakeClock) -> InvoiceRun:
    return InvoiceRun(config, PlanSubscriptions(config, db), UsageLedger(db), IssuedInvoices(db),
                      clock=clock)


def _drawn_total(config: OperatorConfig, db: Database, now: float) -> str:
    """March's invoice as the portal or ``/admin/invoices`` would draw it at ``now``."""
    (invoice,) = application_invoices(
        config, PlanSubscriptions(config, db), UsageLedger(db).events(), MARCH, now=now,
        issued=IssuedInvoices(db),
    )
    return str(invoice.document()["total"])


def test_a_month_is_issued_when_it_closes_not_when_first_drawn() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    clock = FakeClock(CLOSED - 1)
    run = _run(config, db, clock)
    assert run.run() == {}, "late usage may still come in: nothing is issued yet"
    clock.now = CLOSED
    assert run.run() == {str(MARCH): 1}
    # the price doubles before anyone opens March's invoice: it was issued at the old price
    assert _drawn_total(_repriced(config), db, CLOSED + DAY) == "32.65"


def test_each_month_is_issued_once_and_a_restart_catches_up_the_missed_ones() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    april = MARCH.next()
    UsageLedger(db).record(event("app", "april", april.start + DAY))
    clock = FakeClock(april.end + LATE_USAGE + 5 * DAY)  # the operator was off at both closes
    run = _run(config, db, clock)
    assert run.due(clock()) == [MARCH, april]
    assert run.run() == {str(MARCH): 1, str(april): 1}
    assert run.due(clock()) == []
    assert _run(config, db, clock).run() == {}, "a restart issues nothing twice"


def test_fees_alone_start_the_runs_and_organisations_get_theirs() -> None:
    """An application with a plan but no call yet is billed its fee: its creation, not a first
    event, is where the runs begin; with the portal's owners, organisations' invoices too."""
    config, db = priced_operator(), Database()
    PlanSubscriptions(config, db, clock=FakeClock(MARCH.start)).subscribe(
        "app", "sim-swap", "growth")
    run = _run(config, db, FakeClock(CLOSED))
    assert run.run() == {}, "without the portal's terms no application is known to bill"
    run.terms = lambda: ApplicationTerms(since={"app": MARCH.start})
    run.owners = lambda: {"app": "org-1"}
    assert run.run() == {str(MARCH): 2}
    rows = db.all("SELECT customer_kind, customer FROM billing_issued_invoices ORDER BY 1")
    assert [(r["customer_kind"], r["customer"]) for r in rows] == [
        ("application", "app"), ("organisation", "org-1")]
