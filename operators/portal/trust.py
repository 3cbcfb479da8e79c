"""Developer trust (the seed's "lock 2"): the organisation's trust page, corporate sign-in,
deprovisioning by SCIM and RISC, and the operator's orphan report, as one router.

:func:`build_trust_pages` is a page-router factory like every other of ``/portal`` (called with
the party's host, accounts and guard); its routes carry full paths, since the SCIM endpoint
lives at ``/scim/v2`` where directories expect it, outside ``/portal``:

* ``/portal/organisation/trust`` — the organisation admin (its first member, who created it)
  names the corporate identity provider and gets a SCIM token, shown once;
* ``/portal/sign-in/corporate?org=...`` and its callback — OIDC sign-in (corporate_sign_in);
* ``/scim/v2/Users/{id}`` (scim) and ``/portal/risc/events`` (risc) — deprovisioning, each
  pulling the kill switch: :meth:`DeveloperAccounts.deactivate` and sign-out everywhere;
* ``/portal/admin/orphans?days=N`` — the operator admin's report of applications whose
  owner is deactivated, gone or not seen for ``N`` days (HTML, or JSON on ``format=json`` or
  ``Accept: application/json``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ..outbound_hosts import host_problem, scheme_problem
from ..web.pages import SECURITY_HEADERS
from .accounts import AccountError, DeveloperAccounts, Orphan
from .corporate_sign_in import (
    CALLBACK_PATH,
    STATE_COOKIE,
    CorporateSignIn,
    IdpDirectory,
    OrganisationIdps,
    SignInRefusedError,
)
from .developers import Developer
from .guard import FormRefused, PortalGuard
from .host import PortalHost
from .password_links import PATH as PASSWORD_PATH
from .password_links import PasswordLink, PasswordLinks
from .risc import EVENTS_PATH, ReceivedEvents, RiscReceiver, build_risc_router
from .scim import ScimTokens, build_scim_router
from .sessions import IssuerNotTrustedError

TRUST_PATH = "/portal/organisation/trust"
ORPHANS_PATH = "/portal/admin/orphans"
DEFAULT_ORPHAN_DAYS = 90


def build_trust_pages(host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard, *,
                      http: httpx.AsyncClient | None = None) -> APIRouter:
    """The trust page, corporate sign-in, SCIM, RISC and the orphan report for one party.

    ``http`` reaches the organisations' identity providers (discovery, keys, token
    endpoint); without it, the client the party's identity server fetches keys with (a
    federation member's own, ASGI in one process) is used, else a real-HTTP client.
    """
    idps = OrganisationIdps(host.db, host.clock)
    directory = IdpDirectory(http, host.clock,
                             fallback=lambda: host.identity.jwks_cache.http,
                             allowed_hosts=host.config.corporate_idp_hosts)
    corporate = CorporateSignIn(accounts, idps, directory, origin=host.origin, clock=host.clock)
    tokens = ScimTokens(host.db, host.clock)
    password_links = PasswordLinks(host.db, accounts, host.clock)

    def deprovision(developer_id: str) -> list[str]:
        suspended = accounts.deactivate(developer_id)
        guard.end_sessions(developer_id)
        return suspended

    receiver = RiscReceiver(accounts, idps, directory, ReceivedEvents(host.db, host.clock),
                            deprovision, host.clock)
    router = APIRouter(include_in_schema=False)
    router.include_router(build_scim_router(accounts, tokens, deprovision, origin=host.origin))
    router.include_router(build_risc_router(receiver))
    origin = host.origin.rstrip("/")

    def organisation_admin(developer: Developer) -> Developer:
        # The first active member: when the company's identity provider deprovisions the
        # founding member, the next one takes over instead of nobody holding the settings.
        members = [member for member in accounts.members(developer.org_id) if member.active]
        return members[0] if members else developer

    def trust_page(request: Request, developer: Developer, *, status: int = 200,
                   error: str | None = None, form: dict[str, str] | None = None,
                   scim_token: str | None = None, notice: str | None = None,
                   links: list[PasswordLink] | None = None) -> Response:
        settings = idps.get(developer.org_id)
        admin = organisation_admin(developer)
        return guard.page(request, "trust.html", {
            "heading": "Developer trust",
            "settings": settings,
            "is_org_admin": admin.developer_id == developer.developer_id,
            "org_admin": admin,
            "redirect_uri": corporate.redirect_uri,
            "sign_in_url": corporate.sign_in_url(developer.org_id),
            "scim_base": f"{origin}/scim/v2",
            "scim_issued_at": tokens.issued_at(developer.org_id),
            "scim_token": scim_token,
            "risc_endpoint": f"{origin}{EVENTS_PATH}",
            "error": error,
            "notice": notice,
            "form": form or {},
            "password_links": [(link.developer, f"{origin}{PASSWORD_PATH}?code={link.code}")
                               for link in links or ()],
        }, status_code=status)

    def require_org_admin(request: Request) -> Developer:
        developer = guard.require(request)
        admin = organisation_admin(developer)
        if admin.developer_id != developer.developer_id:
            raise FormRefused(403, f"Only your organisation's admin ({admin.name}) can change "
                                   "how its developers sign in.")
        return developer

    @router.get(TRUST_PATH)
    def show_trust(request: Request) -> Response:
        return trust_page(request, guard.require(request))

    @router.post(TRUST_PATH)
    async def save_trust(request: Request) -> Response:
        form = await guard.form(request)
        developer = require_org_admin(request)
        issuer = form.get("issuer", "").strip().rstrip("/")
        client_id = form.get("client_id", "").strip()
        secret = form.get("client_secret", "")
        current = idps.get(developer.org_id)
        if (not secret and current is not None and current.client_id == client_id
                and current.issuer == issuer):
            # left blank: keep the one on file, but never hand it to another issuer
            secret = current.client_secret
        problem = _settings_problem(issuer, client_id, secret, host.config.corporate_idp_hosts)
        if problem is None:
            try:
                await directory.metadata(issuer)
            except SignInRefusedError as refused:
                problem = f"issuer: {refused.message}"
        if problem is not None:
            return trust_page(request, developer, status=400, error=problem,
                              form={"issuer": issuer, "client_id": client_id})
        idps.save(developer.org_id, issuer, client_id, secret)
        accounts.set_idp(developer.org_id, issuer)
        ended = guard.end_provider_sessions(request, developer.org_id, issuer)
        return trust_page(request, developer, notice=f"Developers now sign in with {issuer}."
                          + _signed_out(ended))

    @router.post(f"{TRUST_PATH}/remove")
    async def remove_trust(request: Request) -> Response:
        await guard.form(request)
        developer = require_org_admin(request)
        idps.remove(developer.org_id)
        links = password_links.stop_federating(developer.org_id)
        ended = guard.end_provider_sessions(request, developer.org_id, None)
        return trust_page(request, developer, links=links,
                          notice="Corporate sign-in is off." + _signed_out(ended))

    @router.post(f"{TRUST_PATH}/scim-token")
    async def new_scim_token(request: Request) -> Response:
        await guard.form(request)
        developer = require_org_admin(request)
        token = tokens.issue(developer.org_id)
        return trust_page(request, developer, scim_token=token,
                          notice="A new SCIM token replaces the previous one.")

    @router.get("/portal/sign-in/corporate")
    async def corporate_start(request: Request, org: str = "") -> Response:
        try:
            location, state = await corporate.start(org[:100])
        except SignInRefusedError as refused:
            return _refused(request, guard, refused)
        response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(STATE_COOKIE, state, max_age=600, path=CALLBACK_PATH,
                            httponly=True, samesite="lax", secure=guard.secure)
        return response

    @router.get(CALLBACK_PATH)
    async def corporate_callback(request: Request) -> Response:
        params = {k: v[:2000] for k, v in request.query_params.items()}
        try:
            developer = await corporate.finish(params, request.cookies.get(STATE_COOKIE))
        except SignInRefusedError as refused:
            response = _refused(request, guard, refused)
        else:
            response = RedirectResponse("/portal", status_code=303, headers=SECURITY_HEADERS)
            try:
                guard.sign_in(response, developer, issuer=developer.external_issuer)
            except IssuerNotTrustedError:
                response = _refused(request, guard, SignInRefusedError(
                    403, "Your organisation stopped signing in with this identity provider."))
            except AccountError as gone:  # deactivated while the provider was answering
                response = _refused(request, guard, SignInRefusedError(gone.status, gone.message))
        response.delete_cookie(STATE_COOKIE, path=CALLBACK_PATH, httponly=True,
                               samesite="lax", secure=guard.secure)
        return response

    @router.get(ORPHANS_PATH)
    def orphans(request: Request, days: str = str(DEFAULT_ORPHAN_DAYS),
                fmt: str = Query("", alias="format")) -> Response:
        guard.require_admin(request)
        try:
            window = float(days)
            if not 0 <= window <= 36500:
                raise ValueError(days)
        except ValueError:
            raise FormRefused(400, "days: give a number of days between 0 and 36500.") from None
        rows = [_orphan_row(orphan, host.clock()) for orphan in accounts.orphans(window)]
        if fmt == "json" or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"days": window, "applications": rows},
                                headers=SECURITY_HEADERS)
        return guard.page(request, "trust_orphans.html",
                          {"heading": "Orphan access", "days": window, "rows": rows})

    return router


def _settings_problem(issuer: str, client_id: str, secret: str,
                      allowed_hosts: tuple[str, ...] | None) -> str | None:
    bad_issuer = "issuer: give the provider's issuer URL, e.g. https://idp.example.com."
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 (a port that is not a number raises only when read)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return bad_issuer
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.query
            or parts.fragment or len(issuer) > 500
            or any(char.isspace() or not char.isprintable() for char in issuer)):
        return bad_issuer
    refused = host_problem(parts, allowed_hosts) or scheme_problem(parts)
    if refused is not None:
        return f"issuer: {refused}"
    if not 1 <= len(client_id) <= 200:
        return "client_id: give the client id the provider registered the portal with."
    if not 1 <= len(secret) <= 500:
        return "client_secret: give the client secret the provider issued."
    return None


def _signed_out(sessions: int) -> str:
    """What the notice adds about the sessions a provider the organisation left had started."""
    if not sessions:
        return ""
    plural = "session" if sessions == 1 else "sessions"
    return f" Ended {sessions} portal {plural} started by a provider no longer trusted."


def _refused(request: Request, guard: PortalGuard, refused: SignInRefusedError) -> Response:
    return guard.page(request, "trust_message.html",
                      {"heading": "Corporate sign-in did not work", "status": refused.status,
                       "message": refused.message},
                      status_code=refused.status)


def _orphan_row(orphan: Orphan, now: float) -> dict[str, Any]:
    application, owner = orphan.application, orphan.owner
    return {
        "client_id": application.client_id,
        "name": application.name,
        "org_id": application.org_id,
        "environment": str(application.environment),
        "status": str(application.status),
        "developer_id": application.developer_id,
        "owner_email": owner.email if owner is not None else None,
        "owner_active": owner.active if owner is not None else None,
        "last_seen_days": (round((now - owner.last_seen_at) / 86400, 1)
                           if owner is not None else None),
        "deactivated_at": owner.deactivated_at if owner is not None else None,
        "reason": orphan.reason,
    }
