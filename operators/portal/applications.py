"""Application pages: create, look at, rotate keys, choose plans, ask for production, disable.

Each page looks the application up through the developer's organisation
(:meth:`DeveloperAccounts.owned_application`), so another organisation's application is a 404
exactly like a missing one. A generated private key is rendered once, in the answer to the
POST that made it, and never stored.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..camara import OPERATIONS
from ..identity import Client
from .account_pages import see_other
from .accounts import AccountError, scopes_for
from .developer_portal import DeveloperPortal
from .developers import Application, ApplicationStatus, Developer
from .notices import notice_of, with_notice

PREFIX = "/portal/applications"
MAX_JWK = 16 * 1024


def read_jwk(form: dict[str, str]) -> dict[str, Any] | None:
    """None to generate a key pair; else the pasted JWK (or JWK Set) as a dict."""
    choice = form.get("key", "generate")
    if choice == "generate":
        return None
    if choice != "upload":
        raise AccountError(400, "key", "key: choose 'generate' or 'upload'.")
    text = form.get("jwk", "").strip()
    if not text:
        raise AccountError(400, "jwk", "jwk: paste your public key as a JWK, or let the portal "
                                       "generate a key pair.")
    if len(text) > MAX_JWK:
        raise AccountError(400, "jwk", "jwk: too long for a public key.")
    try:
        value = json.loads(text)
    except RecursionError as error:
        raise AccountError(400, "jwk", "jwk: not JSON (nested too deeply).") from error
    except ValueError as error:
        raise AccountError(400, "jwk", f"jwk: not JSON ({error.args[0]}).") from error
    if not isinstance(value, dict):
        raise AccountError(400, "jwk", "jwk: a JWK is a JSON object, e.g. {\"kty\": \"EC\", ...}.")
    return value


def apis_of(client: Client | None, served: tuple[str, ...]) -> list[str]:
    """The APIs among ``served`` whose scopes the client holds."""
    if client is None:
        return []
    return [api for api in served if set(scopes_for([api])) & client.scopes]


def build_application_router(portal: DeveloperPortal) -> APIRouter:
    """The routes under ``/portal/applications``."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    guard, accounts, host = portal.guard, portal.accounts, portal.host
    served = tuple(api for api in dict.fromkeys(op.api for op in OPERATIONS) if api in host.apis)

    def owned(developer: Developer, client_id: str) -> Application:
        application = accounts.owned_application(developer.org_id, client_id[:128])
        if application is None:
            raise AccountError(404, "application", "No such application.")
        return application

    def new_form(request: Request, values: dict[str, str], error: str | None = None,
                 status: int = 200) -> Response:
        return guard.page(request, "portal_app_new.html", {
            "heading": "Create an application", "apis": served,
            "purposes": host.config.purposes, "values": values, "error": error,
        }, status_code=status)

    def key_page(request: Request, client_id: str, private: dict[str, Any]) -> Response:
        text = json.dumps(private, indent=2)
        return guard.page(request, "portal_key.html", {
            "heading": "Your private key", "client_id": client_id, "kid": private.get("kid"),
            "private_json": text,
            "private_b64": base64.b64encode(text.encode()).decode(),
        })

    @router.get("/new")
    def create_form(request: Request) -> Response:
        guard.require(request)
        return new_form(request, {})

    @router.post("")
    async def create(request: Request) -> Response:
        developer = guard.require(request)
        form = await guard.form(request)
        apis = [name[4:] for name in form if name.startswith("api:")]
        purposes = [name[8:] for name in form if name.startswith("purpose:")]
        if any(api not in served for api in apis):
            return new_form(request, form, "apis: choose among the APIs listed.", 400)
        try:
            application, private = accounts.create_application(
                developer, form.get("name", ""), apis, purposes, read_jwk(form))
        except AccountError as refused:
            return new_form(request, form, refused.message, refused.status)
        if private is not None:
            return key_page(request, application.client_id, private)
        return see_other(f"{PREFIX}/{application.client_id}")

    @router.get("/{client_id}")
    def show(request: Request, client_id: str) -> Response:
        developer = guard.require(request)
        application = owned(developer, client_id)
        client = host.identity.clients.get(application.client_id)
        apis = apis_of(client, served)
        return guard.page(request, "portal_app.html", {
            "heading": application.name, "app": application,
            "usable": application.status in (ApplicationStatus.ACTIVE,
                                              ApplicationStatus.PENDING_PRODUCTION),
            "keys": client.jwks.get("keys", []) if client is not None else [],
            "scopes": sorted(s for s in (client.scopes if client else ()) if s != "openid"),
            "purposes": sorted(client.purposes) if client is not None else [],
            "plan_rows": [{"api": api,
                           "current": host.plans.plan_for(application.client_id, api).name}
                          for api in apis],
            "plans": host.config.plans,
            "token_endpoint": host.identity.token_endpoint,
            "api_root": host.api_root,
            "notice": notice_of(request.query_params),
        })

    @router.post("/{client_id}/rotate")
    async def rotate(request: Request, client_id: str) -> Response:
        developer = guard.require(request)
        application = owned(developer, client_id)
        form = await guard.form(request)
        private = accounts.rotate_key(developer.org_id, application.client_id, read_jwk(form),
                                      by=developer.developer_id)
        if private is not None:
            return key_page(request, application.client_id, private)
        return see_other(with_notice(f"{PREFIX}/{application.client_id}", "key-replaced"))

    @router.post("/{client_id}/plans")
    async def subscribe(request: Request, client_id: str) -> Response:
        developer = guard.require(request)
        application = owned(developer, client_id)
        form = await guard.form(request)
        api, plan = form.get("api", ""), form.get("plan", "")
        if api not in apis_of(host.identity.clients.get(application.client_id), served):
            raise AccountError(400, "api", "api: this application does not use that API.")
        if host.config.plan(plan) is None:
            raise AccountError(400, "plan", f"plan: {plan[:40]!r} is not a plan offered here.")
        if application.status not in (ApplicationStatus.ACTIVE,
                                      ApplicationStatus.PENDING_PRODUCTION):
            raise AccountError(409, "application", f"This application is {application.status}.")
        host.plans.subscribe(application.client_id, api, plan)
        accounts.plan_changed(application, api, plan)
        return see_other(with_notice(f"{PREFIX}/{application.client_id}", "plan-changed"))

    @router.post("/{client_id}/production")
    async def request_production(request: Request, client_id: str) -> Response:
        developer = guard.require(request)
        application = owned(developer, client_id)
        await guard.form(request)
        accounts.request_production(developer.org_id, application.client_id,
                                    by=developer.developer_id)
        return see_other(with_notice(f"{PREFIX}/{application.client_id}", "production-requested"))

    @router.post("/{client_id}/disable")
    async def disable(request: Request, client_id: str) -> Response:
        developer = guard.require(request)
        application = owned(developer, client_id)
        await guard.form(request)
        accounts.disable_application(developer.org_id, application.client_id)
        return see_other(with_notice(f"{PREFIX}/{application.client_id}", "application-disabled"))

    return router
