"""The interactive API console: Swagger UI on the party's CAMARA APIs, "Try it" in the sandbox.

The console shows the serving app's own OpenAPI (``/openapi.json``) cut down to the CAMARA
operations the party serves, with a bearer scheme declared for them; Swagger UI is served from
the installed package (:mod:`operators.web.api_docs`), so the console works with no network.

A developer gets a token in the page: they pick one of their organisation's applications and
the page's script POSTs the choice, with the session's CSRF token, to
``/portal/console/token``. The portal never holds an application's private key, so it cannot
sign a client assertion; it asks the identity server's client-credentials path directly, on
the developer's behalf, with the application's own API scopes and one two-legged purpose. The
token is an ordinary access token of that application: the gateway treats a console call like
any other call of it (sandbox numbers only, its plan, its usage). Suspended, disabled and
production applications, and applications of another organisation, get none.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..camara import ALL_SCOPES, OPERATIONS, Operation
from ..config import OperatorConfig
from ..errors import OAuthError
from ..identity import Client
from ..test_numbers import TestNumber
from .accounts import AccountError
from .developers import Application, ApplicationStatus, Developer, Environment
from .guard import FormRefused, SignInRequired
from .host import PortalHost

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .guard import PortalGuard

__all__ = [
    "BEARER_SCHEME",
    "ConsoleRefusal",
    "build_console_pages",
    "console_document",
    "console_purposes",
    "mint_console_token",
]

BEARER_SCHEME = "sandboxToken"
"""The security scheme the console's document declares and its script preauthorizes."""

_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    """A pydantic model's JSON schema with its definitions moved into ``components``."""
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    return schema


def _operation_doc(operation: Operation, found: dict[str, Any] | None,
                   components: dict[str, Any]) -> dict[str, Any]:
    """The app's description of ``operation``, with a request body from the table when the
    app's route does not declare one (the aggregator forwards raw bodies)."""
    doc: dict[str, Any] = copy.deepcopy(found) if found else {
        "operationId": operation.operation_id,
        "responses": {str(operation.status): {"description": "Success"}},
    }
    doc["tags"] = [operation.tag or operation.api]
    if operation.request is not None and "requestBody" not in doc:
        doc["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema_of(operation.request, components)}}}
    scopes = " or ".join(" + ".join(alternative) for alternative in operation.scopes)
    doc["description"] = ((doc.get("description") or "") + f"\n\nScopes: {scopes}.").strip()
    doc["security"] = [{BEARER_SCHEME: []}]
    return doc


def console_document(openapi: dict[str, Any], apis: tuple[str, ...], *, title: str,
                     api_root: str) -> dict[str, Any]:
    """The console's OpenAPI: the CAMARA operations of ``apis`` from ``openapi`` (the serving
    app's document), a bearer scheme they all require, and the API root as the server.

    Admin, identity and health routes are left out: the console is for CAMARA calls.
    """
    components: dict[str, Any] = copy.deepcopy(openapi.get("components", {}).get("schemas", {}))
    paths: dict[str, dict[str, Any]] = {}
    served = set(apis)
    for operation in OPERATIONS:
        if operation.api not in served:
            continue
        found = openapi.get("paths", {}).get(operation.template, {}).get(operation.method.lower())
        paths.setdefault(operation.template, {})[operation.method.lower()] = _operation_doc(
            operation, found, components)
    tags = list(dict.fromkeys(o.tag or o.api for o in OPERATIONS if o.api in served))
    server = urlsplit(api_root).path.rstrip("/") or "/"
    return {
        "openapi": openapi.get("openapi", "3.1.0"),
        "info": {
            "title": title,
            "version": str(openapi.get("info", {}).get("version", "1")),
            "description": "Calls go to the sandbox on this origin with the token the page "
                           "got for your application: documented test numbers only.",
        },
        "servers": [{"url": server, "description": "sandbox"}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {BEARER_SCHEME: {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token of one of your applications (the console "
                               "gets one for you: pick the application above).",
            }},
        },
        "security": [{BEARER_SCHEME: []}],
    }


def console_purposes(config: OperatorConfig, client: Client | None) -> list[str]:
    """The purposes a console token may carry: two-legged ones the application declared (all
    the party's two-legged purposes when ``client`` is None), in the config's order."""
    return [p.purpose for p in config.purposes
            if p.two_legged and (client is None or p.purpose in client.purposes)]


@dataclass
class ConsoleRefusal(Exception):  # noqa: N818 (an answer, not a fault)
    """Why the console gives no token: an OAuth error body with its status."""

    status: int
    error: str
    description: str

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers=_NO_STORE)


def _usable(application: Application | None, client: Client | None) -> Client:
    if application is None or client is None:
        raise ConsoleRefusal(404, "invalid_request",
                             "Your organisation has no such application.")
    if application.status in (ApplicationStatus.SUSPENDED, ApplicationStatus.DISABLED):
        raise ConsoleRefusal(403, "unauthorized_client",
                             f"This application is {application.status.value}: it gets no "
                             "token.")
    if client.disabled:
        raise ConsoleRefusal(403, "unauthorized_client",
                             "This application is disabled: it gets no token.")
    if application.environment is not Environment.SANDBOX:
        raise ConsoleRefusal(403, "unauthorized_client",
                             "The console tries the sandbox: choose a sandbox application "
                             "(a production application calls from your own code).")
    return client


def mint_console_token(host: PortalHost, accounts: DeveloperAccounts, developer: Developer,
                       client_id: str, purpose: str | None = None) -> dict[str, Any]:
    """An access token for ``client_id``, one of ``developer``'s organisation's sandbox
    applications: its API scopes and ``purpose`` (else its first two-legged purpose).

    Raises :class:`ConsoleRefusal` (404 for another organisation's application, as for none,
    so the answer tells nothing about it; 403 for a suspended, disabled or production one,
    or a developer cut off by the kill switch meanwhile; 400 when no purpose fits).
    """
    application = accounts.owned_application(developer.org_id, client_id)
    client = _usable(application, host.identity.clients.get(client_id)
                     if application is not None else None)
    allowed = console_purposes(host.config, client)
    if purpose and purpose not in allowed:
        raise ConsoleRefusal(400, "invalid_scope",
                             f"{purpose!r} is not a purpose this application may use without "
                             f"a subscriber; choose one of: {', '.join(allowed) or 'none'}.")
    chosen = purpose or (allowed[0] if allowed else None)
    if chosen is None:
        raise ConsoleRefusal(400, "invalid_scope",
                             "This application declares no purpose usable without a subscriber "
                             "(two-legged): add one to try its APIs here.")
    api_scopes = sorted(s for s in client.scopes if s in ALL_SCOPES)  # not openid: no subscriber
    scope = " ".join([*api_scopes, chosen])
    try:
        # The portal holds no private key, so it cannot authenticate as the client: it asks
        # the identity server's own client-credentials step, which checks grant and purpose.
        issued = host.identity._client_credentials(client, {"scope": scope})
    except OAuthError as refused:
        raise ConsoleRefusal(400, refused.error, refused.description) from refused
    accepted_until = accounts.clock() + issued.expires_in + host.config.lifetimes.clock_skew
    try:
        accounts.note_console_token(developer, issued.jti, accepted_until)
    except AccountError as cut_off:  # the kill switch reached the developer meanwhile
        raise ConsoleRefusal(403, "access_denied", cut_off.message) from cut_off
    return {**issued.response(), "client_id": client.client_id, "purpose": chosen}


def build_console_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard,
    *, test_numbers: Callable[[], list[tuple[TestNumber, str]]] | None = None,
) -> APIRouter:
    """``/portal/console`` (signed in), its document and its token endpoint.

    ``test_numbers`` lists the documented test numbers the page names; by default the party's
    own (an aggregator, which has no subscribers, passes an operator's).
    """
    numbers = test_numbers if test_numbers is not None else host.sandbox_numbers
    router = APIRouter(prefix="/portal/console", include_in_schema=False)
    title = f"{host.config.display_name} sandbox: CAMARA APIs"

    @router.get("")
    def console(request: Request) -> HTMLResponse:
        developer = guard.require(request)
        applications = accounts.applications(developer.org_id)
        choices = []
        for application in applications:
            client = host.identity.clients.get(application.client_id)
            try:
                _usable(application, client)
                why = None
            except ConsoleRefusal as refusal:
                why = refusal.description
            choices.append({"application": application, "unusable": why,
                            "purposes": console_purposes(host.config, client)})
        return guard.page(request, "console.html", {
            "choices": choices,
            "usable": [c for c in choices if c["unusable"] is None],
            "purposes": console_purposes(host.config, None),
            "test_numbers": numbers(),
            "bearer_scheme": BEARER_SCHEME,
            "heading": "API console",
            "spec_url": "/portal/console/openapi.json",
            "token_url": "/portal/console/token",
        })

    @router.get("/openapi.json")
    def document(request: Request) -> JSONResponse:
        openapi = request.app.openapi()
        return JSONResponse(console_document(openapi, host.apis, title=title,
                                             api_root=host.api_root))

    @router.post("/token")
    async def token(request: Request) -> Response:
        """JSON for the page's script; refusals are OAuth error bodies, never a page."""
        try:
            developer = guard.require(request)
            form = await guard.form(request)
        except SignInRequired:
            return ConsoleRefusal(401, "login_required", "Sign in to the portal first.").response()
        except FormRefused as refused:
            return ConsoleRefusal(refused.status, "invalid_request", refused.message).response()
        try:
            body = mint_console_token(host, accounts, developer,
                                      form.get("client_id", ""), form.get("purpose") or None)
        except ConsoleRefusal as refusal:
            return refusal.response()
        return JSONResponse(body, headers=_NO_STORE)

    return router
