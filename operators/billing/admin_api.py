"""``GET /admin/invoices?month=YYYY-MM``: a month's invoices as JSON, for the admin credential.

What ``ogsim invoices --url`` reads from a running operator. Without ``month`` it is the
current month's draft. ``by=organisation`` groups applications by the organisation owning
them when the serving party hands an ``owners`` source (the portal's accounts); the default
is one invoice per application. Bad input is a CAMARA error body naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Depends, Request, Response

from operators.admin_auth import admin_guard
from operators.config import OperatorConfig
from operators.errors import CamaraError
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanStore
from operators.types import Clock

from .invoices import application_invoices, invoices_json, organisation_invoices
from .issued import IssuedInvoices
from .months import Month, MonthError
from .rating import ApplicationTerms

__all__ = ["build_invoice_admin_router"]


def build_invoice_admin_router(
    config: OperatorConfig,
    plans: PlanStore,
    usage: UsageLedger,
    clock: Clock,
    *,
    owners: Callable[[], Mapping[str, str]] | None = None,
    terms: Callable[[], ApplicationTerms] | None = None,
    issued: IssuedInvoices | None = None,
) -> APIRouter:
    """The admin router; ``clock`` is the epoch clock (what month is current, draft cut-off),
    ``owners`` (client id -> organisation id) enables ``by=organisation``, ``terms`` (the
    portal's accounts) says when applications began and ended, as the portal's invoices do,
    and ``issued`` keeps closed months' invoices as first issued, as the portal's are."""
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(config.admin_secret))]
    )

    @router.get("/invoices")
    def invoices(request: Request) -> Response:
        now = clock()
        text = request.query_params.get("month")
        try:
            month = Month.of(now) if text is None else Month.parse(text)
        except MonthError as error:
            raise CamaraError(400, "INVALID_ARGUMENT", f"month: {error}") from error
        if month.start > now:
            raise CamaraError(400, "INVALID_ARGUMENT", f"month: {month} has not begun")
        by = request.query_params.get("by", "application")
        events = usage.events(since=month.start, until=month.end)
        known = None if terms is None else terms()
        if by == "application":
            found = application_invoices(
                config, plans, events, month, now=now, terms=known, issued=issued
            )
        elif by == "organisation" and owners is not None:
            found = organisation_invoices(
                config, plans, events, month, owners(), now=now, terms=known, issued=issued
            )
        elif by == "organisation":
            raise CamaraError(
                400, "INVALID_ARGUMENT", "by: this party keeps no organisations (no portal)"
            )
        else:
            raise CamaraError(
                400, "INVALID_ARGUMENT", f"by: {by!r} is neither application nor organisation"
            )
        payload = {
            "party": config.id,
            "month": str(month),
            "status": "final" if now >= month.end else "draft",
            "invoices": [invoice.document() for invoice in found],
        }
        return Response(invoices_json(payload), media_type="application/json")

    return router
