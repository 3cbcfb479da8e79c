"""The developer's invoices: ``/portal/invoices`` (a list of months, the current one a draft)
and ``/portal/invoices/{month}`` (the organisation's invoice as a page, with the same invoice
as JSON and CSV at ``{month}.json`` and ``{month}.csv``).

The invoice is always the signed-in developer's organisation's: no path or parameter names an
organisation, so another organisation's invoice cannot be asked for. It is drawn up by
:mod:`operators.billing` from the party's usage ledger and plan history, with the
organisation's applications as owners and their creation as the start of their fees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..billing import (
    ApplicationTerms,
    Invoice,
    Month,
    MonthError,
    amount_text,
    invoices_csv,
    invoices_json,
    organisation_invoice,
)
from ..web import add_template_dir
from ..web.pages import SECURITY_HEADERS
from .accounts import DeveloperAccounts
from .developers import Developer
from .guard import FormRefused, PortalGuard
from .host import PortalHost

__all__ = ["MONTHS_LISTED", "build_invoice_pages"]

MONTHS_LISTED = 24
"""How many months the list goes back at most (from the organisation's creation)."""

add_template_dir(Path(__file__).parent / "templates")


def build_invoice_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard
) -> APIRouter:
    """The invoice pages of ``/portal`` (a :data:`~operators.portal.router.PageRouterFactory`)."""
    router = APIRouter(prefix="/portal", include_in_schema=False)

    def invoice_of(developer: Developer, month: Month,
                   terms: ApplicationTerms | None = None) -> Invoice:
        if host.usage is None:
            raise FormRefused(
                404,
                f"{host.config.display_name} meters no calls of its own: the operators that "
                "serve your calls invoice them.",
            )
        applications = accounts.applications(developer.org_id)
        events = [e for app in applications
                  for e in host.usage.events(app.client_id, since=month.start, until=month.end)]
        return organisation_invoice(
            host.config,
            host.plans,
            events,
            month,
            developer.org_id,
            {app.client_id: app.org_id for app in applications},
            now=host.clock(),
            terms=terms if terms is not None else accounts.terms(),
            issued=host.issued,
        )

    def month_asked(text: str) -> Month:
        try:
            month = Month.parse(text)
        except MonthError as error:
            raise FormRefused(404, f"No invoice here: {error}.") from error
        if month.start > host.clock():
            raise FormRefused(404, f"No invoice for {month} yet: the month has not begun.")
        return month

    def download(request: Request, month_text: str, suffix: str) -> tuple[Invoice, dict[str, str]]:
        developer = guard.require(request)
        invoice = invoice_of(developer, month_asked(month_text))
        disposition = f'attachment; filename="{invoice.number}.{suffix}"'
        return invoice, {**SECURITY_HEADERS, "content-disposition": disposition}

    @router.get("/invoices")
    def invoice_list(request: Request) -> HTMLResponse:
        developer = guard.require(request)
        organisation = accounts.organisation(developer.org_id)
        now = host.clock()
        first = Month.of(organisation.created_at if organisation is not None else now)
        months: list[Month] = [Month.of(now)]
        while len(months) < MONTHS_LISTED and months[-1] > first:
            months.append(months[-1].previous())
        rows: list[dict[str, Any]] = []
        if host.usage is not None:
            terms = accounts.terms()  # read once for the months listed
            for month in months:
                invoice = invoice_of(developer, month, terms)
                rows.append(
                    {
                        "month": str(month),
                        "status": invoice.status.value,
                        "number": invoice.number,
                        "total": amount_text(invoice.total, invoice.currency),
                        "currency": invoice.currency,
                    }
                )
        return guard.page(
            request,
            "invoice_list.html",
            {"heading": "Invoices", "rows": rows, "metered": host.usage is not None},
        )

    @router.get("/invoices/{month}.json")
    def invoice_json(request: Request, month: str) -> Response:
        invoice, headers = download(request, month, "json")
        return Response(
            invoices_json(invoice.document()), media_type="application/json", headers=headers
        )

    @router.get("/invoices/{month}.csv")
    def invoice_csv(request: Request, month: str) -> Response:
        invoice, headers = download(request, month, "csv")
        return Response(invoices_csv([invoice.document()]), media_type="text/csv", headers=headers)

    @router.get("/invoices/{month}")
    def invoice_page(request: Request, month: str) -> HTMLResponse:
        developer = guard.require(request)
        invoice = invoice_of(developer, month_asked(month))
        names = {app.client_id: app.name for app in accounts.applications(developer.org_id)}
        return guard.page(
            request,
            "invoice.html",
            {
                "heading": f"Invoice {invoice.month}",
                "invoice": invoice.document(),
                "names": names,
            },
        )

    return router
