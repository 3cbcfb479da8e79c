"""Issued invoices: a closed month's invoice is kept as first drawn up, and never re-rated.

Rating is a pure function of the usage events and the plans *as the config has them now*, so
a price changed or a plan removed after a month closed would change that month's final
invoice under the same number. An operator does not do that: an issued invoice is a record
the customer may already have paid, and a correction is a new document, not an edit. So the
first time a closed month's invoice is drawn up (by the portal, ``/admin/invoices`` or
``ogsim invoices``) it is stored here, whole, and every later draw returns the stored one.

A month closes :data:`LATE_USAGE` after its end, not at it: a call admitted just before
midnight commits its usage event (stamped at admission) after it, and an invoice issued in
between would leave that call unbilled. Until then a past month's invoice is final in status
but still rated from the events.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

from operators.storage import Database
from operators.types import Seconds

from .invoices import ApplicationCharges, CustomerKind, Invoice, InvoiceStatus
from .months import Month
from .rating import ChargeKind, LineItem

__all__ = ["LATE_USAGE", "IssuedInvoices"]

LATE_USAGE: Seconds = 3600.0
"""How long after a month's end its calls' usage events may still commit: far longer than any
call lives (the gateway's deadlines are seconds), short enough that invoices go out the same
morning."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS billing_issued_invoices (
    number TEXT PRIMARY KEY,
    month TEXT NOT NULL,
    customer_kind TEXT NOT NULL,
    customer TEXT NOT NULL,
    record TEXT NOT NULL,
    issued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_issued_invoices_month
    ON billing_issued_invoices (month, customer_kind, customer);
"""


class IssuedInvoices:
    """The invoices of closed months, in the party's database (so every replica and a
    restart see the same ones)."""

    def __init__(self, db: Database, late_usage: Seconds = LATE_USAGE) -> None:
        self.db = db
        self.late_usage = late_usage
        db.ensure_schema(SCHEMA)

    def closed(self, month: Month, now: float) -> bool:
        """Whether ``month``'s invoices are issued when next drawn (its late usage is in)."""
        return now >= month.end + self.late_usage

    def keep(
        self,
        drawn: Sequence[Invoice],
        month: Month,
        kind: CustomerKind,
        now: float,
        customers: Collection[str] | None = None,
    ) -> list[Invoice]:
        """``drawn`` (the invoices of ``kind`` just rated for ``month``) as issued: before the
        month closes, themselves; after, each one issued before in place of its re-rating and
        the rest issued now. Invoices issued before and not drawn this time (their customer's
        events rated to nothing now) are still there, for the ``customers`` asked (all when
        None); ordered by customer, as drawn."""
        if not self.closed(month, now):
            return list(drawn)
        with self.db.transaction():
            for invoice in drawn:
                self.db.execute(
                    "INSERT OR IGNORE INTO billing_issued_invoices"
                    " (number, month, customer_kind, customer, record, issued_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        invoice.number,
                        str(month),
                        kind.value,
                        invoice.customer,
                        json.dumps(_record(invoice), sort_keys=True),
                        now,
                    ),
                )
        return self.issued(month, kind, customers)

    def issued(
        self, month: Month, kind: CustomerKind, customers: Collection[str] | None = None
    ) -> list[Invoice]:
        """``month``'s invoices of ``kind`` issued so far (of the ``customers`` asked, all when
        None), ordered by customer; only read: nothing is issued by asking."""
        rows = self.db.all(
            "SELECT customer, record FROM billing_issued_invoices"
            " WHERE month = ? AND customer_kind = ? ORDER BY customer",
            (str(month), kind.value),
        )
        return [
            _invoice(json.loads(row["record"]))
            for row in rows
            if customers is None or row["customer"] in customers
        ]


def _record(invoice: Invoice) -> dict[str, Any]:
    """The invoice whole, exactly: money as decimal text, times as JSON floats (which read
    back to the same float)."""
    return {
        "number": invoice.number,
        "party": invoice.party,
        "customer": invoice.customer,
        "customer_kind": invoice.customer_kind.value,
        "month": str(invoice.month),
        "as_of": invoice.as_of,
        "currency": invoice.currency,
        "applications": [
            {
                "client_id": charges.client_id,
                "lines": [_line_record(line) for line in charges.lines],
            }
            for charges in invoice.applications
        ],
    }


def _line_record(line: LineItem) -> dict[str, Any]:
    return {
        "client_id": line.client_id,
        "api": line.api,
        "plan": line.plan,
        "currency": line.currency,
        "kind": line.kind.value,
        "period_start": line.period_start,
        "period_end": line.period_end,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price),
        "flat_fee": str(line.flat_fee),
        "amount": str(line.amount),
        "tier": line.tier,
        "tier_first": line.tier_first,
        "tier_last": line.tier_last,
        "tier_mode": line.tier_mode,
        "month_seconds": line.month_seconds,
        "events": [list(event) for event in line.events],
    }


def _invoice(record: dict[str, Any]) -> Invoice:
    return Invoice(
        record["number"],
        record["party"],
        record["customer"],
        CustomerKind(record["customer_kind"]),
        Month.parse(record["month"]),
        InvoiceStatus.FINAL,
        float(record["as_of"]),
        record["currency"],
        tuple(
            ApplicationCharges(
                charges["client_id"], tuple(_line(line) for line in charges["lines"])
            )
            for charges in record["applications"]
        ),
    )


def _line(record: dict[str, Any]) -> LineItem:
    return LineItem(
        record["client_id"],
        record["api"],
        record["plan"],
        record["currency"],
        ChargeKind(record["kind"]),
        float(record["period_start"]),
        float(record["period_end"]),
        int(record["quantity"]),
        Decimal(record["unit_price"]),
        Decimal(record["flat_fee"]),
        Decimal(record["amount"]),
        tier=record["tier"],
        tier_first=record["tier_first"],
        tier_last=record["tier_last"],
        tier_mode=record["tier_mode"],
        month_seconds=record["month_seconds"],
        events=tuple((client_id, correlator) for client_id, correlator in record["events"]),
    )
