"""The operator admin's pages of the developer portal: production approvals and orphan access.

They need the operator admin credential (HTTP Basic ``admin:<admin_secret>``; a browser without
it gets a 401 asking for it); their forms are CSRF-checked like every other, because a browser
sends Basic credentials along with a forged cross-site POST too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .account_pages import see_other
from .accounts import AccountError, normalise_email
from .developer_portal import DeveloperPortal
from .notices import notice_of, with_notice

PREFIX = "/portal/admin"
DEFAULT_ORPHAN_DAYS = 90.0
OUTBOX_SHOWN = 100


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _days(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_ORPHAN_DAYS
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or not 0 <= days <= 36500:
        raise AccountError(400, "days", "days: give a number of days between 0 and 36500.")
    return days


def build_admin_router(portal: DeveloperPortal) -> APIRouter:
    """The routes under ``/portal/admin``."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    guard, accounts = portal.guard, portal.accounts

    @router.get("")
    def admin_home(request: Request) -> Response:
        guard.require_admin(request)
        days = _days(request.query_params.get("days"))
        pending = []
        for app in accounts.pending_production():
            organisation = accounts.organisation(app.org_id)
            developer = accounts.developer(app.developer_id)
            pending.append({
                "app": app, "organisation": organisation.name if organisation else app.org_id,
                "developer": developer.email if developer else app.developer_id,
            })
        orphans = [{
            "app": app,
            "owner": owner.email if owner is not None else "gone",
            "reason": reason,
            "last_seen": _when(owner.last_seen_at) if owner is not None else "never",
            "active": owner is not None and owner.active,
        } for app, owner, reason in accounts.orphans(days)]
        return guard.page(request, "portal_admin.html", {
            "heading": "Developer portal administration", "pending": pending,
            "orphans": orphans, "days": f"{days:g}",
            "notice": notice_of(request.query_params),
        })

    @router.get("/outbox")
    def outbox(request: Request) -> Response:
        guard.require_admin(request)
        recipient = normalise_email(request.query_params.get("to", "")[:254]) or None
        messages = [{**message._asdict(), "sent": _when(message.sent_at)}
                    for message in portal.outbox.messages(recipient, limit=OUTBOX_SHOWN)]
        return guard.page(request, "portal_outbox.html", {
            "heading": "Outbox", "messages": messages, "shown": OUTBOX_SHOWN,
            "recipient": recipient or "",
        })

    @router.post("/production/{client_id}/approve")
    async def approve(request: Request, client_id: str) -> Response:
        guard.require_admin(request)
        await guard.form(request)
        accounts.approve_production(client_id[:128])
        return see_other(with_notice(PREFIX, "production-approved"))

    @router.post("/production/{client_id}/refuse")
    async def refuse(request: Request, client_id: str) -> Response:
        guard.require_admin(request)
        await guard.form(request)
        accounts.refuse_production(client_id[:128])
        return see_other(with_notice(PREFIX, "production-refused"))

    @router.post("/developers/{developer_id}/deactivate")
    async def deactivate(request: Request, developer_id: str) -> Response:
        guard.require_admin(request)
        await guard.form(request)
        if accounts.developer(developer_id[:64]) is None:
            raise AccountError(404, "developer", "No such developer.")
        suspended = portal.deactivate(developer_id)
        return see_other(with_notice(PREFIX, "developer-deactivated", len(suspended)))

    return router
