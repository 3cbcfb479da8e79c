"""Billing: usage events rated against the plan in force at each call, into monthly invoices.

:mod:`~operators.billing.pricing` prices a number of calls under one plan (per call, tiers in
graduated or volume mode); :mod:`~operators.billing.rating` turns a month of usage events and
plan history into line items, each listing the events it covers; :mod:`~operators.billing.
invoices` groups lines per application or organisation into invoices with deterministic JSON
and CSV; :mod:`~operators.billing.issued` keeps a closed month's invoices as first issued;
:mod:`~operators.billing.admin_api` serves them at ``/admin/invoices``. Money is
:class:`~decimal.Decimal`, rounded once per line (:mod:`~operators.billing.money`). The
simulation prices its billable calls with :func:`rate_counted`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.faces import lazy_face

if TYPE_CHECKING:
    from operators.billing.admin_api import build_invoice_admin_router
    from operators.billing.invoice_run import InvoiceRun
    from operators.billing.invoices import (
        CSV_COLUMNS,
        ApplicationCharges,
        CustomerKind,
        Invoice,
        InvoiceStatus,
        application_invoices,
        invoice_number,
        invoices_csv,
        invoices_json,
        organisation_invoice,
        organisation_invoices,
    )
    from operators.billing.issued import LATE_USAGE, IssuedInvoices
    from operators.billing.money import amount_text, minor_units, round_line
    from operators.billing.months import Month, MonthError
    from operators.billing.pricing import TierCharge, price_calls
    from operators.billing.rating import (
        ApplicationTerms,
        ChargeKind,
        EventId,
        LineItem,
        rate_counted,
        rate_month,
        rate_subscription,
    )

__all__ = [
    "CSV_COLUMNS",
    "LATE_USAGE",
    "ApplicationCharges",
    "ApplicationTerms",
    "ChargeKind",
    "CustomerKind",
    "EventId",
    "Invoice",
    "InvoiceRun",
    "InvoiceStatus",
    "IssuedInvoices",
    "LineItem",
    "Month",
    "MonthError",
    "TierCharge",
    "amount_text",
    "application_invoices",
    "build_invoice_admin_router",
    "invoice_number",
    "invoices_csv",
    "invoices_json",
    "minor_units",
    "organisation_invoice",
    "organisation_invoices",
    "price_calls",
    "rate_counted",
    "rate_month",
    "rate_subscription",
    "round_line",
]

_HOMES = {
    "build_invoice_admin_router": "operators.billing.admin_api",
    "InvoiceRun": "operators.billing.invoice_run",
    **dict.fromkeys(
        (
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
        ),
        "operators.billing.invoices",
    ),
    **dict.fromkeys(("LATE_USAGE", "IssuedInvoices"), "operators.billing.issued"),
    **dict.fromkeys(("amount_text", "minor_units", "round_line"), "operators.billing.money"),
    **dict.fromkeys(("Month", "MonthError"), "operators.billing.months"),
    **dict.fromkeys(("TierCharge", "price_calls"), "operators.billing.pricing"),
    **dict.fromkeys(
        ("ApplicationTerms", "ChargeKind", "EventId", "LineItem", "rate_counted", "rate_month",
         "rate_subscription"),
        "operators.billing.rating",
    ),
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
