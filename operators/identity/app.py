"""HTTP face of one operator's identity server (FastAPI), built by factories, no module app.

``create_identity_app(server)`` serves the endpoints under the path of ``config.issuer_url``
so the issuer URL is the app's base; ``build_identity_router`` and
``install_oauth_error_handlers`` let a bigger app (the operator's gateway) compose them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..admin_auth import is_admin
from ..errors import OAuthError
from ..request_body import BodyRefusedError, ThreatLimits, read_body, read_json_object
from .consent import MAX_LIFETIME, Consent
from .server import IdentityServer, RateLimitedError

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 64
LIMITS = ThreatLimits(max_body_bytes=MAX_FORM_BYTES)
"""What every body-reading identity endpoint accepts: 64 KiB read within 10 s; JSON bodies
(client registration, consents) at most 12 levels deep, 512 keys, strings of 4096 characters."""
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        scheme = "Bearer" if error.error == "invalid_token" else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} realm="ogsim", error="{error.error}"'
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after)
    if error.status in (408, 413):  # the rest of the body is not read: the connection ends
        headers["Connection"] = "close"
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def install_oauth_error_handlers(app: FastAPI) -> None:
    """Render every error as an OAuth JSON body; malformed input is 400, never a 500."""

    async def on_oauth(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        return oauth_error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        return oauth_error_response(OAuthError("invalid_request", "malformed request"))

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code,
                                                                 "invalid_request")
        return JSONResponse({"error": code, "error_description": str(exc.detail)},
                            status_code=exc.status_code)

    app.add_exception_handler(OAuthError, on_oauth)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


async def read_form(request: Request) -> tuple[dict[str, str], bool]:
    """Parse an ``application/x-www-form-urlencoded`` body; returns params and "repeated"."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
    try:
        body = await read_body(request, LIMITS)
    except BodyRefusedError as refusal:
        raise refusal.oauth() from refusal
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthError("invalid_request", "malformed form body") from error
    return _params(pairs)


def _params(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], bool]:
    """RFC 6749 §3.1: empty values count as absent; a repeated parameter is an error."""
    seen: dict[str, str] = {}
    repeated = False
    for name, value in pairs:
        if not value:
            continue
        if name in seen:
            repeated = True
        seen[name] = value
    return seen, repeated


async def _strict_form(request: Request) -> dict[str, str]:
    form, repeated = await read_form(request)
    if repeated:
        raise OAuthError("invalid_request", "a parameter is repeated")
    return form


def _is_admin(request: Request, server: IdentityServer) -> bool:
    """The one admin check of the operator (``operators.admin_auth``), for the identity API."""
    return is_admin(request.headers.get("authorization"), server.config.admin_secret)


def _require_admin(request: Request, server: IdentityServer) -> None:
    if not _is_admin(request, server):
        raise OAuthError("unauthorized", "operator administrator credentials required", 401)


class ConsentGrant(BaseModel):
    """Body of ``POST /consents``; ``phoneNumber`` only for the administrator."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    client_id: str = Field(alias="clientId", min_length=1)
    purpose: str
    scopes: list[str] = Field(default_factory=list)
    phone_number: str | None = Field(default=None, alias="phoneNumber")
    expires_in: int | None = Field(default=None, alias="expiresIn", gt=0, le=MAX_LIFETIME)


def build_identity_router(server: IdentityServer) -> APIRouter:
    """Every identity endpoint, with paths relative to the issuer URL."""
    router = APIRouter()

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return server.metadata()

    @router.get("/.well-known/oauth-authorization-server")
    async def as_metadata() -> dict[str, Any]:
        return server.metadata()

    @router.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return server.jwks()

    @router.post("/token")
    async def token(request: Request) -> Response:
        form = await _strict_form(request)
        await server.prepare(form)
        body = server.token(form, request.headers.get("authorization"))
        return JSONResponse(body, headers=NO_STORE)

    @router.post("/bc-authorize")
    async def bc_authorize(request: Request) -> Response:
        form = await _strict_form(request)
        await server.prepare(form)
        body = server.backchannel_authorize(form, request.headers.get("authorization"))
        return JSONResponse(body, headers=NO_STORE)

    @router.get("/authorize")
    async def authorize(request: Request) -> Response:
        params, repeated = _params(parse_qsl(request.url.query, keep_blank_values=True))
        host = request.client.host if request.client else None
        await server.prepare(params)
        redirect = server.authorize(params, host, repeated=repeated)
        return RedirectResponse(redirect.location, status_code=302, headers=NO_STORE)

    @router.post("/introspect")
    async def introspect(request: Request) -> Response:
        form = await _strict_form(request)
        await server.prepare(form)
        body = server.introspect(form, request.headers.get("authorization"))
        return JSONResponse(body, headers=NO_STORE)

    @router.post("/revoke")
    async def revoke(request: Request) -> Response:
        form = await _strict_form(request)
        await server.prepare(form)
        server.revoke(form, request.headers.get("authorization"))
        return Response(status_code=200, headers=NO_STORE)

    # -- administration ---------------------------------------------------------------------

    @router.post("/admin/clients")
    async def register_client(request: Request) -> Response:
        _require_admin(request, server)
        payload = await _json_object(request)
        client, secret = server.register_client(payload)
        body = client.public_view()
        if secret:
            body["client_secret"] = secret
        return JSONResponse(body, status_code=201)

    @router.get("/admin/clients")
    async def list_clients(request: Request) -> list[dict[str, Any]]:
        _require_admin(request, server)
        return [c.public_view() for c in server.clients.all()]

    @router.get("/admin/clients/{client_id}")
    async def read_client(client_id: str, request: Request) -> dict[str, Any]:
        _require_admin(request, server)
        client = server.clients.get(client_id)
        if client is None:
            raise OAuthError("not_found", "no such client", 404)
        return client.public_view()

    @router.post("/admin/clients/{client_id}/disable")
    async def disable_client(client_id: str, request: Request) -> dict[str, Any]:
        _require_admin(request, server)
        client = server.clients.disable(client_id)
        if client is None:
            raise OAuthError("not_found", "no such client", 404)
        return client.public_view()

    @router.post("/admin/keys/rotate")
    async def rotate_keys(request: Request) -> dict[str, Any]:
        _require_admin(request, server)
        key = server.rotate_keys()
        return {"kid": key.kid, "alg": key.alg, "jwks": server.jwks()}

    @router.post("/admin/operator-tokens")
    async def operator_token(request: Request) -> Response:
        """A TS.43 temporary token for a subscriber (``operatortoken:<token>`` as CIBA's
        ``login_hint`` or a JWT-bearer ``sub``, what Number Verification accepts besides the
        authorization code flow). Live, the device's SIM obtains it from the operator's
        entitlement server; here the operator admin names the subscriber, or the device asks
        for its own from the address the operator gave it."""
        actor, msisdn = consent_actor(request)
        if actor == "admin":
            body = await _json_object(request)
            number = body.get("phoneNumber")
            if not isinstance(number, str) or server.subscribers.get(number) is None:
                raise OAuthError("invalid_request", "phoneNumber: no subscriber of this operator")
            msisdn = number
        else:
            assert msisdn is not None
            server.admit_device_token(msisdn)
        assert msisdn is not None
        lifetime = 600.0
        token = server.subjects.issue_operator_token(msisdn, lifetime)
        return JSONResponse({"operatorToken": token, "expiresIn": int(lifetime)},
                            status_code=201, headers={"Cache-Control": "no-store"})

    # -- consents ---------------------------------------------------------------------------

    def consent_actor(request: Request) -> tuple[str, str | None]:
        """("admin", phoneNumber filter or None) or ("subscriber:<number>", their number)."""
        if _is_admin(request, server):
            return "admin", request.query_params.get("phoneNumber")
        if request.headers.get("authorization"):
            raise OAuthError("unauthorized", "operator administrator credentials required", 401)
        subscriber = server.subscriber_at(request.client.host if request.client else None)
        if subscriber is None:
            raise OAuthError("login_required",
                             "network-based authentication failed: not an operator device", 401)
        return f"subscriber:{subscriber.msisdn}", subscriber.msisdn

    def owned(consent_id: str, actor: str, msisdn: str | None) -> Consent:
        consent = server.consents.get(consent_id)
        if consent is None or (actor != "admin" and consent.msisdn != msisdn):
            raise OAuthError("not_found", "no such consent", 404)
        return consent

    @router.get("/consents")
    async def list_consents(request: Request) -> list[dict[str, Any]]:
        _, msisdn = consent_actor(request)
        now = server.clock()
        return [c.view(now) for c in server.consents.for_subscriber(msisdn)]

    @router.post("/consents")
    async def grant_consent(request: Request) -> Response:
        actor, msisdn = consent_actor(request)
        try:
            grant = ConsentGrant.model_validate(await _json_object(request))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "body"
            raise OAuthError("invalid_request",
                             f"malformed consent: {field}: {first['msg']}") from error
        if actor == "admin":
            msisdn = grant.phone_number
            if not msisdn or server.subscribers.get(msisdn) is None:
                raise OAuthError("invalid_request", "phoneNumber of a subscriber is required")
        elif grant.phone_number and grant.phone_number != msisdn:
            raise OAuthError("invalid_request", "a subscriber grants consent for themselves")
        assert msisdn is not None
        client = server.clients.get(grant.client_id)
        policy = server.config.purpose(grant.purpose)
        if client is None or client.disabled:
            raise OAuthError("invalid_request", "unknown client")
        if policy is None or policy.purpose not in client.purposes:
            raise OAuthError("invalid_scope", "purpose not offered to this client")
        if not set(grant.scopes) <= set(client.scopes):
            raise OAuthError("invalid_scope", "scopes not registered for this client")
        consent = server.consents.grant(msisdn, client.client_id, policy.purpose,
                                        tuple(grant.scopes), actor=actor,
                                        lifetime=grant.expires_in)
        return JSONResponse(consent.view(server.clock()), status_code=201)

    @router.get("/consents/audit")
    async def audit_listing(request: Request) -> list[dict[str, Any]]:
        _, msisdn = consent_actor(request)
        return [e.view() for e in server.consents.audit(msisdn=msisdn)]

    @router.get("/consents/{consent_id}")
    async def read_consent(consent_id: str, request: Request) -> dict[str, Any]:
        actor, msisdn = consent_actor(request)
        return owned(consent_id, actor, msisdn).view(server.clock())

    @router.delete("/consents/{consent_id}")
    async def revoke_consent(consent_id: str, request: Request) -> dict[str, Any]:
        actor, msisdn = consent_actor(request)
        owned(consent_id, actor, msisdn)
        return server.withdraw_consent(consent_id, actor=actor).view(server.clock())

    @router.get("/consents/{consent_id}/audit")
    async def consent_audit(consent_id: str, request: Request) -> list[dict[str, Any]]:
        actor, msisdn = consent_actor(request)
        owned(consent_id, actor, msisdn)
        return [e.view() for e in server.consents.audit(consent_id=consent_id)]

    return router


async def _json_object(request: Request) -> dict[str, Any]:
    """A JSON object body, read and parsed by the operator's one threat protection (bounded
    size and time, depth, keys, duplicate keys, UTF-8 only, no lone surrogate)."""
    try:
        return await read_json_object(request, LIMITS)
    except BodyRefusedError as refusal:
        raise refusal.oauth() from refusal


def create_identity_app(server: IdentityServer) -> FastAPI:
    """A FastAPI app serving ``server`` with ``config.issuer_url`` as its base URL."""
    app = FastAPI(title=f"{server.config.display_name} identity server",
                  openapi_url=None, docs_url=None, redoc_url=None)
    install_oauth_error_handlers(app)
    prefix = urlsplit(server.issuer).path.rstrip("/")
    app.include_router(build_identity_router(server), prefix=prefix)
    return app
