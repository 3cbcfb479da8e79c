"""The developer portal's routes under ``/portal``, and how a serving party mounts them.

``install_developer_portal(app, host, extra)`` builds one :class:`DeveloperPortal` (accounts,
guard) for the party, includes this package's pages and the routers ``extra`` builds (each a
:data:`PageRouterFactory` called with ``(host, accounts, guard)``), and installs the handlers
that turn :class:`SignInRequired`, :class:`FormRefused`, :class:`AdminRequired` and
:class:`AccountError` into pages. :data:`PAGES` lists the page modules every party serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..web import add_template_dir, page
from ..web.pages import SECURITY_HEADERS
from .account_pages import build_account_router
from .accounts import AccountError, DeveloperAccounts
from .admin_pages import build_admin_router
from .analytics_pages import build_analytics_pages
from .applications import build_application_router
from .catalogue import build_catalogue_pages
from .console import build_console_pages
from .developer_portal import DeveloperPortal
from .first_call import build_first_call_pages
from .guard import AdminRequired, FormRefused, PortalGuard, SignInRequired
from .host import PortalHost
from .invoices_page import build_invoice_pages
from .password_work import PasswordsBusyError
from .trust import build_trust_pages
from .usage import build_usage_pages

PREFIX = "/portal"
SIGN_IN = f"{PREFIX}/sign-in"

PageRouterFactory = Callable[[PortalHost, DeveloperAccounts, PortalGuard], APIRouter]
"""Builds one page module's router; its paths start with ``/portal`` (give the router
``prefix="/portal"`` or full paths) and it uses the guard for sessions, CSRF and pages."""

PAGES: tuple[PageRouterFactory, ...] = (
    build_catalogue_pages,
    build_console_pages,
    build_first_call_pages,
    build_usage_pages,
    build_invoice_pages,
    build_trust_pages,
    build_analytics_pages,
)
"""The page modules every operator and the aggregator serve beside this package's own (the
catalogue, console, usage, invoices...): listed here once, so both parties serve the same."""

add_template_dir(Path(__file__).parent / "templates")


def build_developer_portal_router(
    host: PortalHost, extra: Sequence[PageRouterFactory] = (), *,
    portal: DeveloperPortal | None = None,
) -> APIRouter:
    """Every page under ``/portal``: this package's, then :data:`PAGES`, then ``extra``."""
    portal = portal if portal is not None else DeveloperPortal.of(host)
    router = APIRouter(include_in_schema=False)
    router.include_router(build_account_router(portal))
    router.include_router(build_application_router(portal))
    router.include_router(build_admin_router(portal))
    for factory in (*PAGES, *extra):
        router.include_router(factory(portal.host, portal.accounts, portal.guard))
    return router


def install_developer_portal(
    app: FastAPI, host: PortalHost, extra: Sequence[PageRouterFactory] = ()
) -> DeveloperPortal:
    """Mount ``/portal`` on ``app`` with its error pages; returns the party's portal (kept on
    ``app.state.developer_portal`` too)."""
    portal = DeveloperPortal.of(host)
    app.include_router(build_developer_portal_router(host, extra, portal=portal))
    app.state.developer_portal = portal
    install_portal_handlers(app)
    _close_at_shutdown(app, portal)
    return portal


def close_developer_portal(app: object) -> None:
    """Stop the password threads of the portal mounted on ``app``, if any: for a server that
    answers the app's lifespan itself instead of running it (``ogsim up``'s parties)."""
    portal = getattr(getattr(app, "state", None), "developer_portal", None)
    if isinstance(portal, DeveloperPortal):
        portal.close()


def _close_at_shutdown(app: FastAPI, portal: DeveloperPortal) -> None:
    """Wrap ``app``'s lifespan so the portal's password threads stop after the app's own
    shutdown (the operator's and the aggregator's apps alike, whatever their lifespan)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(lifespan_app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(lifespan_app) as state:
                yield state
        finally:
            portal.close()

    app.router.lifespan_context = lifespan


def _guard_of(request: Request) -> PortalGuard | None:
    portal = getattr(request.app.state, "developer_portal", None)
    return portal.guard if isinstance(portal, DeveloperPortal) else None


def problem_page(request: Request, status: int, message: str,
                 headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page naming the problem, with the portal's navigation when it can be had."""
    guard = _guard_of(request)
    context = {"status": status, "message": message}
    if guard is not None:
        response = guard.page(request, "portal_problem.html", context, status_code=status)
    else:
        response = page(request, "portal_problem.html", context, status_code=status)
    response.headers.update(headers or {})
    return response


def install_portal_handlers(app: FastAPI) -> None:
    """Turn the portal's exceptions into pages (they are raised only under ``/portal``)."""

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        return RedirectResponse(SIGN_IN, status_code=303, headers=SECURITY_HEADERS)

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormRefused)
        return problem_page(request, exc.status, exc.message)

    async def on_account(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AccountError)
        busy = exc if isinstance(exc, PasswordsBusyError) else None
        return problem_page(request, exc.status, exc.message,
                            None if busy is None else {"Retry-After": str(busy.retry_after)})

    async def on_admin(request: Request, exc: Exception) -> Response:
        return problem_page(request, 401, "This page needs the operator admin credential.",
                            {"WWW-Authenticate": 'Basic realm="ogsim-admin"'})

    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(FormRefused, on_refused)
    app.add_exception_handler(AccountError, on_account)
    app.add_exception_handler(AdminRequired, on_admin)
