"""Monthly invoices, per application or per organisation, from rated line items.

An invoice is a pure function of (party, customer, month, usage events, plan history, and
for a draft the moment it is drawn up): nothing wall-clock or random enters it, so rating
the same events and history again gives the same bytes (:func:`invoice_json`). Its number is
derived from the party, the customer and the month, so a month's invoice keeps its number
from the first draft to the final one.

The current month's invoice is a **draft** covering the month to date (fees prorated to
``now``); a past month's is **final**. Organisations are whatever the caller says owns each
application (``owners``: client id -> organisation id), so this module needs nothing from
the portal's accounts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from operators.config import OperatorConfig
from operators.gateway.metering import UsageEvent
from operators.gateway.subscriptions import PlanStore

from .money import amount_text, price_text
from .months import Month
from .rating import ApplicationTerms, ChargeKind, LineItem, rate_month

if TYPE_CHECKING:
    from .issued import IssuedInvoices

__all__ = [
    "CSV_COLUMNS",
    "ApplicationCharges",
    "CustomerKind",
    "Invoice",
    "InvoiceStatus",
    "application_invoices",
    "invoice_number",
    "invoices_csv",
    "invoices_json",
    "organisation_invoice",
    "organisation_invoices",
]

ROUNDING = "each line rounded half to even to the currency's minor unit; totals add lines"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    """The current month to date: it changes with every call until the month ends."""
    FINAL = "final"


class CustomerKind(StrEnum):
    APPLICATION = "application"
    ORGANISATION = "organisation"


@dataclass(frozen=True)
class ApplicationCharges:
    """One application's lines on an invoice (per API and plan period, fee then tiers)."""

    client_id: str
    lines: tuple[LineItem, ...]

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    def apis(self) -> list[tuple[str, list[LineItem]]]:
        """Lines grouped by API, in order."""
        grouped: dict[str, list[LineItem]] = {}
        for line in self.lines:
            grouped.setdefault(line.api, []).append(line)
        return sorted(grouped.items())


@dataclass(frozen=True)
class Invoice:
    number: str
    party: str
    customer: str
    customer_kind: CustomerKind
    month: Month
    status: InvoiceStatus
    as_of: float
    """The end of what it covers: the month's end when final, the moment drawn up if draft."""
    currency: str
    applications: tuple[ApplicationCharges, ...]

    @property
    def total(self) -> Decimal:
        return sum((a.subtotal for a in self.applications), Decimal(0))

    @property
    def lines(self) -> list[LineItem]:
        return [line for application in self.applications for line in application.lines]

    def document(self) -> dict[str, Any]:
        """The invoice as JSON-ready data: money as strings with the currency's digits,
        times as UTC ISO 8601 to the millisecond; what the admin API and the CLI give."""
        currency = self.currency
        return {
            "invoice_number": self.number,
            "party": self.party,
            "customer": {"kind": self.customer_kind.value, "id": self.customer},
            "month": str(self.month),
            "period": {"start": _iso(self.month.start), "end": _iso(self.month.end)},
            "status": self.status.value,
            "as_of": _iso(self.as_of),
            "currency": currency,
            "rounding": ROUNDING,
            "applications": [
                {
                    "client_id": application.client_id,
                    "subtotal": amount_text(application.subtotal, currency),
                    "apis": [
                        {
                            "api": api,
                            "subtotal": amount_text(
                                sum((line.amount for line in lines), Decimal(0)), currency
                            ),
                            "lines": [_line_document(line) for line in lines],
                        }
                        for api, lines in application.apis()
                    ],
                }
                for application in self.applications
            ],
            "total": amount_text(self.total, currency),
        }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line_document(line: LineItem) -> dict[str, Any]:
    return {
        "description": line.description,
        "kind": line.kind.value,
        "plan": line.plan,
        "period": {"start": _iso(line.period_start), "end": _iso(line.period_end)},
        "tier": line.tier,
        "tier_first": line.tier_first,
        "tier_last": line.tier_last,
        "tier_mode": line.tier_mode,
        "quantity": line.quantity,
        "unit": "second" if line.kind is ChargeKind.MONTHLY_FEE else "call",
        "unit_price": price_text(line.unit_price),
        "flat_fee": price_text(line.flat_fee),
        "amount": amount_text(line.amount, line.currency),
        "events": [list(event) for event in line.events],
    }


def invoice_number(party: str, kind: CustomerKind, customer: str, month: Month) -> str:
    """``TELCO-ES-202503-O-1A2B3C4D5E``: the party, the month, the customer's kind and a
    digest of all three with the customer's id (ids may hold any character)."""
    digest = hashlib.sha256(f"{party}\x1f{kind.value}\x1f{customer}\x1f{month}".encode())
    return (
        f"{party.upper()}-{month.year:04d}{month.month:02d}-{kind.value[0].upper()}-"
        f"{digest.hexdigest()[:10].upper()}"
    )


def _window(month: Month, now: float) -> tuple[InvoiceStatus, float]:
    if now < month.start:
        raise ValueError(f"month {month} has not begun: no invoice yet")
    if now >= month.end:
        return InvoiceStatus.FINAL, month.end
    return InvoiceStatus.DRAFT, now


def _rated(
    plans: PlanStore,
    events: Iterable[UsageEvent],
    month: Month,
    now: float,
    terms: ApplicationTerms | None,
    only: set[str] | None = None,
) -> tuple[InvoiceStatus, float, dict[str, list[LineItem]]]:
    status, as_of = _window(month, now)
    if only is not None:
        events = [e for e in events if e.client_id in only]
    subscribed = [pair for pair in plans.held() if only is None or pair[0] in only]
    lines = rate_month(
        events,
        plans.history,
        month,
        subscribed=subscribed,
        since=None if terms is None else terms.since,
        until=None if status is InvoiceStatus.FINAL else as_of,
        ended=None if terms is None else terms.ended,
        apis=None if terms is None else {
            client_id: apis for client_id, apis in terms.apis.items()
            if only is None or client_id in only
        },
    )
    per_application: dict[str, list[LineItem]] = {}
    for line in lines:
        per_application.setdefault(line.client_id, []).append(line)
    return status, as_of, per_application


def _invoice(
    config: OperatorConfig,
    kind: CustomerKind,
    customer: str,
    month: Month,
    status: InvoiceStatus,
    as_of: float,
    charges: Sequence[tuple[str, list[LineItem]]],
) -> Invoice:
    return Invoice(
        invoice_number(config.id, kind, customer, month),
        config.id,
        customer,
        kind,
        month,
        status,
        as_of,
        config.plans[0].currency,
        tuple(ApplicationCharges(client_id, tuple(lines)) for client_id, lines in charges),
    )


def application_invoices(
    config: OperatorConfig,
    plans: PlanStore,
    events: Iterable[UsageEvent],
    month: Month,
    *,
    now: float,
    terms: ApplicationTerms | None = None,
    issued: IssuedInvoices | None = None,
) -> list[Invoice]:
    """One invoice per application with calls or a plan in ``month`` (draft if ``now`` is
    in it), by client id; ``terms`` says when applications began and ended (their fees run
    between), a whole month for one it does not name. With ``issued``, a closed month's
    invoices are the ones first issued."""
    status, as_of, rated = _rated(plans, events, month, now, terms)
    drawn = [
        _invoice(
            config, CustomerKind.APPLICATION, client_id, month, status, as_of, [(client_id, lines)]
        )
        for client_id, lines in sorted(rated.items())
    ]
    if issued is None:
        return drawn
    return issued.keep(drawn, month, CustomerKind.APPLICATION, now)


def organisation_invoices(
    config: OperatorConfig,
    plans: PlanStore,
    events: Iterable[UsageEvent],
    month: Month,
    owners: Mapping[str, str],
    *,
    now: float,
    terms: ApplicationTerms | None = None,
    issued: IssuedInvoices | None = None,
) -> list[Invoice]:
    """One invoice per organisation owning an application with charges in ``month``; an
    application no organisation owns is on no organisation's invoice. With ``issued``, a
    closed month's invoices (of the organisations in ``owners``) are the ones first issued."""
    status, as_of, rated = _rated(plans, events, month, now, terms, set(owners))
    per_org: dict[str, list[tuple[str, list[LineItem]]]] = {}
    for client_id, lines in sorted(rated.items()):
        per_org.setdefault(owners[client_id], []).append((client_id, lines))
    drawn = [
        _invoice(config, CustomerKind.ORGANISATION, org_id, month, status, as_of, charges)
        for org_id, charges in sorted(per_org.items())
    ]
    if issued is None:
        return drawn
    return issued.keep(drawn, month, CustomerKind.ORGANISATION, now, set(owners.values()))


def organisation_invoice(
    config: OperatorConfig,
    plans: PlanStore,
    events: Iterable[UsageEvent],
    month: Month,
    org_id: str,
    owners: Mapping[str, str],
    *,
    now: float,
    terms: ApplicationTerms | None = None,
    issued: IssuedInvoices | None = None,
) -> Invoice:
    """``org_id``'s invoice for ``month`` (with no application line if nothing was owed);
    with ``issued``, a closed month's as first issued, the one with nothing owed too."""
    mine = {client_id: org for client_id, org in owners.items() if org == org_id}
    found = organisation_invoices(config, plans, events, month, mine, now=now, terms=terms)
    if not found:
        status, as_of = _window(month, now)
        found = [_invoice(config, CustomerKind.ORGANISATION, org_id, month, status, as_of, [])]
    if issued is not None:
        found = issued.keep(found, month, CustomerKind.ORGANISATION, now, {org_id})
    return found[0]


def invoices_json(documents: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, two-space indent, ASCII, money already as text."""
    return (json.dumps(documents, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


CSV_COLUMNS = (
    "invoice_number",
    "month",
    "status",
    "customer_kind",
    "customer",
    "client_id",
    "api",
    "kind",
    "description",
    "plan",
    "period_start",
    "period_end",
    "tier",
    "quantity",
    "unit",
    "unit_price",
    "flat_fee",
    "amount",
    "currency",
    "events",
)
"""One row per line item, then a ``subtotal`` row per application and a ``total`` row per
invoice (``kind`` tells them apart); ``events`` is the number of usage events a line covers
(their ids are in the JSON)."""


def invoices_csv(documents: Iterable[Mapping[str, Any]]) -> str:
    """The line items of invoice documents (:meth:`Invoice.document`) as CSV with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for doc in documents:
        head = {
            "invoice_number": doc["invoice_number"],
            "month": doc["month"],
            "status": doc["status"],
            "customer_kind": doc["customer"]["kind"],
            "customer": doc["customer"]["id"],
            "currency": doc["currency"],
        }
        for application in doc["applications"]:
            client_id = application["client_id"]
            for api in application["apis"]:
                for line in api["lines"]:
                    writer.writerow(
                        {
                            **head,
                            "client_id": client_id,
                            "api": api["api"],
                            "kind": line["kind"],
                            "description": line["description"],
                            "plan": line["plan"],
                            "period_start": line["period"]["start"],
                            "period_end": line["period"]["end"],
                            "tier": "" if line["tier"] is None else line["tier"],
                            "quantity": line["quantity"],
                            "unit": line["unit"],
                            "unit_price": line["unit_price"],
                            "flat_fee": line["flat_fee"],
                            "amount": line["amount"],
                            "events": len(line["events"]),
                        }
                    )
            writer.writerow(
                {**head, "client_id": client_id, "kind": "subtotal",
                 "amount": application["subtotal"]}
            )  # fmt: skip
        writer.writerow({**head, "kind": "total", "amount": doc["total"]})
    return out.getvalue()
