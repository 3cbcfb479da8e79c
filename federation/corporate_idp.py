"""A minimal corporate identity provider: the company's side of the developer portal's trust.

The seed's "lock 2": an organisation's developers sign in to an operator's portal with their
company account, and when the company disables an account, the operator hears of it at once
and cuts off everything that developer holds. ogsim needs such a company for demos and tests,
so this is one: an OpenID Provider (discovery, JWKS, the authorization code flow with PKCE
S256, ID tokens signed with its own key) with a handful of users and a password form, and a
transmitter of deprovisioning events. When an admin disables a user it tells every receiver
it was given, each in the protocol that receiver speaks:

* SCIM 2.0 (RFC 7644 §3.5.2): ``PATCH {base}/Users/{id}`` replacing ``active`` with false,
  sent with the organisation's SCIM bearer token;
* RISC (OpenID RISC profile over RFC 8417 Security Event Tokens, pushed per RFC 8935): an
  ``account-disabled`` SET signed with the provider's key, subject ``iss_sub``.

It is not a product: users live in memory, and a user's ``sub`` is also their SCIM id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from operators import OAuthError, is_admin, scheme_problem
from operators.gateway import BodyRefusedError, ThreatLimits, read_body, read_model
from operators.web import add_template_dir, page, static_files

from .types import Clock

__all__ = [
    "ACCOUNT_DISABLED",
    "CorporateIdp",
    "CorporateUser",
    "Delivery",
    "RelyingParty",
    "create_corporate_idp_app",
    "example_corporate_idp",
]

add_template_dir(Path(__file__).parent / "templates")

ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
"""The RISC event type a disabled user is announced with."""
SCIM_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SIGNING_ALG = "ES256"
FORM_LIMITS = ThreatLimits(max_body_bytes=8 * 1024)
ADMIN_LIMITS = ThreatLimits(max_body_bytes=8 * 1024, max_depth=3)


@dataclass(frozen=True)
class CorporateUser:
    """An employee: ``user_id`` is the ``sub`` of their ID tokens and their SCIM id.

    ``email_verified`` is what their ID tokens claim of the address: the company hands out its
    employees' addresses, so true unless a test plays a provider that lets users type theirs."""

    user_id: str
    email: str
    name: str
    password: str
    active: bool = True
    email_verified: bool = True


@dataclass(frozen=True)
class RelyingParty:
    """An application the company lets its employees sign in to (the operator's portal)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class ScimReceiver:
    base_url: str
    """The service provider's SCIM base, e.g. ``http://operator/scim/v2``."""
    token: str


@dataclass(frozen=True)
class SetReceiver:
    endpoint: str
    """Where SETs are pushed (RFC 8935), e.g. ``http://operator/portal/risc/events``."""
    audience: str
    """The receiver's identity at this provider: its ``client_id``."""


@dataclass(frozen=True)
class Delivery:
    """One deprovisioning message and how its receiver answered (0: it could not be reached)."""

    kind: str
    url: str
    status: int
    body: str = ""


@dataclass(frozen=True)
class _Authorization:
    """A validated authorization request, waiting for the user's password."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    code_challenge: str
    created_at: float


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    user_id: str
    nonce: str | None
    code_challenge: str
    expires_at: float


@dataclass
class CorporateIdp:
    """The company's OpenID Provider and deprovisioning transmitter (state in memory)."""

    issuer: str
    admin_secret: str
    users: dict[str, CorporateUser] = field(default_factory=dict)
    clock: Clock = time.time
    http: httpx.AsyncClient | None = None
    """How receivers are reached (an ASGI network in process, real HTTP otherwise)."""
    code_lifetime: float = 60.0
    id_token_lifetime: float = 300.0
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", auto_kid=True))
    clients: dict[str, RelyingParty] = field(default_factory=dict)
    scim_receivers: list[ScimReceiver] = field(default_factory=list)
    set_receivers: list[SetReceiver] = field(default_factory=list)
    _pending: dict[str, _Authorization] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")

    # -- set-up ------------------------------------------------------------------------------

    def add_user(self, user: CorporateUser) -> None:
        self.users[user.user_id] = user

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str]
    ) -> RelyingParty:
        client = RelyingParty(client_id, client_secret, tuple(redirect_uris))
        self.clients[client_id] = client
        return client

    def push_scim_to(self, base_url: str, token: str) -> None:
        """Tell this SCIM service provider when a user is disabled."""
        self.scim_receivers.append(ScimReceiver(base_url.rstrip("/"), token))

    def push_events_to(self, endpoint: str, audience: str) -> None:
        """Push RISC security event tokens to ``endpoint`` for ``audience``."""
        self.set_receivers.append(SetReceiver(endpoint, audience))

    # -- metadata ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "jwks_uri": self.url("/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email",
                                 "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": SIGNING_ALG}]}

    # -- the authorization code flow ---------------------------------------------------------

    def begin(self, params: Mapping[str, str]) -> tuple[str, RelyingParty]:
        """Check an authorization request; its id for the sign-in form (OAuthError: show it).

        Every problem is shown to the user, none is redirected: this provider keeps to the
        strict reading (a redirect only once client and redirect URI are known good and the
        request is complete).
        """
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not registered for the client")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code")
        if "openid" not in params.get("scope", "").split():
            raise OAuthError("invalid_scope", "scope must include openid")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        request_id = secrets.token_urlsafe(18)
        self._forget_stale()
        self._pending[request_id] = _Authorization(
            client.client_id, redirect_uri, params.get("state"), params.get("nonce"),
            challenge, self.clock())
        return request_id, client

    def pending(self, request_id: str) -> _Authorization | None:
        return self._pending.get(request_id)

    def authenticate(self, request_id: str, username: str, password: str) -> str:
        """The redirect back to the client with a code, once the password is right."""
        request = self._pending.get(request_id)
        if request is None:
            raise OAuthError("invalid_request", "this sign-in request expired; start again")
        user = self._user_by_login(username)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            raise OAuthError("access_denied", "wrong user name or password", 401)
        if not user.active:
            raise OAuthError("access_denied", "this account is disabled", 403)
        del self._pending[request_id]
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(request.client_id, request.redirect_uri, user.user_id,
                                  request.nonce, request.code_challenge,
                                  self.clock() + self.code_lifetime)
        values = {"code": code, "iss": self.issuer}
        if request.state is not None:
            values["state"] = request.state
        separator = "&" if urlsplit(request.redirect_uri).query else "?"
        return f"{request.redirect_uri}{separator}{urlencode(values)}"

    def exchange(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """The token endpoint: client authentication, then the code with its PKCE verifier."""
        client = self._client_from(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        code = self._codes.pop(form.get("code", ""), None)  # single use, whatever follows
        if code is None or code.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's")
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(
            create_s256_code_challenge(verifier), code.code_challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        user = self.users.get(code.user_id)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "the account is disabled")
        return {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": int(self.id_token_lifetime),
            "id_token": self.id_token(user, client.client_id, code.nonce),
        }

    def id_token(self, user: CorporateUser, audience: str, nonce: str | None,
                 **overrides: Any) -> str:
        """An ID token for ``user``; ``overrides`` replace claims (tests forge bad ones)."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": user.user_id, "aud": audience,
            "iat": now, "exp": now + int(self.id_token_lifetime), "auth_time": now,
            "email": user.email, "email_verified": user.email_verified, "name": user.name,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(overrides)
        return self.sign(claims, typ="JWT")

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        header = {"alg": SIGNING_ALG, "kid": self.key.kid, "typ": typ}
        return jwt.encode(header, dict(claims), self.key)

    # -- deprovisioning ----------------------------------------------------------------------

    async def disable(self, user_id: str) -> list[Delivery]:
        """Disable ``user_id`` here and tell every receiver; how each answered."""
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(user_id)
        self.users[user_id] = replace(user, active=False)
        deliveries: list[Delivery] = []
        for scim in self.scim_receivers:
            deliveries.append(await self._deliver(
                "scim", "PATCH", f"{scim.base_url}/Users/{user_id}",
                json=scim_deactivation(),
                headers={"Authorization": f"Bearer {scim.token}",
                         "Content-Type": "application/scim+json"}))
        for receiver in self.set_receivers:
            deliveries.append(await self._deliver(
                "risc", "POST", receiver.endpoint,
                content=self.account_disabled(user_id, receiver.audience).encode(),
                headers={"Content-Type": "application/secevent+jwt",
                         "Accept": "application/json"}))
        return deliveries

    def enable(self, user_id: str) -> None:
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(user_id)
        self.users[user_id] = replace(user, active=True)

    def account_disabled(self, user_id: str, audience: str, **overrides: Any) -> str:
        """The RISC ``account-disabled`` SET for ``user_id`` (RFC 8417, typ secevent+jwt)."""
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(self.clock()),
            "jti": secrets.token_urlsafe(16),
            "events": {ACCOUNT_DISABLED: {
                "subject": {"format": "iss_sub", "iss": self.issuer, "sub": user_id},
                "reason": "bulk-account",
            }},
        }
        claims.update(overrides)
        return self.sign(claims, typ="secevent+jwt")

    async def _deliver(self, kind: str, method: str, url: str, **request: Any) -> Delivery:
        http = self.http
        if http is None:
            http = self.http = httpx.AsyncClient(timeout=10.0)
        try:
            response = await http.request(method, url, **request)
        except httpx.HTTPError as error:
            return Delivery(kind, url, 0, str(error))
        return Delivery(kind, url, response.status_code, response.text[:500])

    # -- workings ----------------------------------------------------------------------------

    def _user_by_login(self, login: str) -> CorporateUser | None:
        login = login.strip().lower()
        for user in self.users.values():
            if login in (user.user_id.lower(), user.email.lower()):
                return user
        return None

    def _client_from(self, form: Mapping[str, str], authorization: str | None) -> RelyingParty:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as error:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from error
            user, _, password = decoded.partition(":")
            client_id, secret = unquote(user), unquote(password)
        client = self.clients.get(client_id)
        if client is None or not secret or not hmac.compare_digest(
            client.client_secret.encode(), secret.encode()
        ):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def _forget_stale(self) -> None:
        """Sign-in requests nobody finished within ten minutes are dropped."""
        cutoff = self.clock() - 600
        for request_id in [k for k, v in self._pending.items() if v.created_at < cutoff]:
            del self._pending[request_id]


def example_corporate_idp(issuer: str, *, admin_secret: str, clock: Clock = time.time,
                          http: httpx.AsyncClient | None = None) -> CorporateIdp:
    """The demo's company: two employees (``ada``, ``bob``; password ``<id>-password``)."""
    idp = CorporateIdp(issuer, admin_secret, clock=clock, http=http)
    idp.add_user(CorporateUser("ada", "ada@corp.example", "Ada Lovelace", "ada-password"))
    idp.add_user(CorporateUser("bob", "bob@corp.example", "Bob Builder", "bob-password"))
    return idp


def scim_deactivation() -> dict[str, Any]:
    """The SCIM PatchOp that deactivates a user (RFC 7644 §3.5.2.3)."""
    return {"schemas": [SCIM_PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}]}


# -- the app ----------------------------------------------------------------------------------


class NewUser(BaseModel):
    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@-]+$")
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=200)
    email_verified: bool = True


class NewClient(BaseModel):
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=16, max_length=200)
    redirect_uris: list[str] = Field(min_length=1, max_length=10)


class NewReceiver(BaseModel):
    kind: str = Field(pattern="^(scim|risc)$")
    url: str = Field(min_length=8, max_length=2000, pattern="^https?://")
    token: str | None = Field(default=None, max_length=500)
    audience: str | None = Field(default=None, max_length=500)


def create_corporate_idp_app(idp: CorporateIdp) -> FastAPI:
    """The provider's web app: OIDC endpoints, its sign-in page and an admin API."""
    app = FastAPI(title=f"Corporate IdP {idp.issuer}")
    app.mount("/static", static_files(), name="static")

    async def on_oauth(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def on_body(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyRefusedError)
        return JSONResponse(exc.oauth().body(), status_code=exc.status)

    async def on_validation(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "invalid_request", "error_description": "malformed"},
                            status_code=400)

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse({"error": "invalid_request", "error_description": str(exc.detail)},
                            status_code=exc.status_code)

    app.add_exception_handler(OAuthError, on_oauth)
    app.add_exception_handler(BodyRefusedError, on_body)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)

    def sign_in_page(request: Request, request_id: str, client: str, error: str | None,
                     status: int = 200) -> Response:
        return page(request, "corporate_idp_sign_in.html", {
            "operator_name": f"Corporate sign-in · {urlsplit(idp.issuer).netloc}",
            "request_id": request_id, "client": client, "error": error,
        }, status_code=status)

    def problem_page(request: Request, error: OAuthError) -> Response:
        return page(request, "corporate_idp_sign_in.html", {
            "operator_name": f"Corporate sign-in · {urlsplit(idp.issuer).netloc}",
            "problem": error.description or error.error,
        }, status_code=error.status)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return idp.discovery()

    @app.get("/jwks")
    def jwks() -> dict[str, Any]:
        return idp.jwks()

    @app.get("/authorize")
    def authorize(request: Request) -> Response:
        try:
            request_id, client = idp.begin(dict(request.query_params))
        except OAuthError as error:
            return problem_page(request, error)
        return sign_in_page(request, request_id, client.client_id, None)

    @app.post("/authorize")
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        request_id = form.get("request", "")
        pending = idp.pending(request_id)
        try:
            location = idp.authenticate(
                request_id, form.get("username", ""), form.get("password", ""))
        except OAuthError as error:
            if pending is None:
                return problem_page(request, error)
            return sign_in_page(request, request_id, pending.client_id,
                                error.description, error.status)
        return RedirectResponse(location, status_code=303)

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = await _form(request)
        body = idp.exchange(form, request.headers.get("authorization"))
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def admin(request: Request) -> None:
        if not is_admin(request.headers.get("authorization"), idp.admin_secret):
            raise OAuthError("invalid_client", "the IdP admin credential is missing or wrong",
                             401)

    @app.post("/admin/users", status_code=201)
    async def add_user(request: Request) -> dict[str, Any]:
        admin(request)
        new = await read_model(request, NewUser, ADMIN_LIMITS)
        idp.add_user(CorporateUser(new.user_id, new.email, new.name, new.password,
                                   email_verified=new.email_verified))
        return {"user_id": new.user_id, "active": True}

    @app.post("/admin/users/{user_id}/disable")
    async def disable(request: Request, user_id: str) -> dict[str, Any]:
        admin(request)
        try:
            deliveries = await idp.disable(user_id)
        except KeyError:
            raise OAuthError("not_found", f"no user {user_id!r}", 404) from None
        return {"user_id": user_id, "active": False,
                "deliveries": [{"kind": d.kind, "url": d.url, "status": d.status}
                               for d in deliveries]}

    @app.post("/admin/users/{user_id}/enable")
    async def enable(request: Request, user_id: str) -> dict[str, Any]:
        admin(request)
        try:
            idp.enable(user_id)
        except KeyError:
            raise OAuthError("not_found", f"no user {user_id!r}", 404) from None
        return {"user_id": user_id, "active": True}

    @app.post("/admin/clients", status_code=201)
    async def add_client(request: Request) -> dict[str, Any]:
        admin(request)
        new = await read_model(request, NewClient, ADMIN_LIMITS)
        idp.register_client(new.client_id, new.client_secret, new.redirect_uris)
        return {"client_id": new.client_id, "redirect_uris": new.redirect_uris}

    @app.post("/admin/receivers", status_code=201)
    async def add_receiver(request: Request) -> dict[str, Any]:
        admin(request)
        new = await read_model(request, NewReceiver, ADMIN_LIMITS)
        refused = scheme_problem(new.url)  # it is sent the SCIM token and users' addresses
        if refused is not None:
            raise OAuthError("invalid_request", f"url: {refused}")
        if new.kind == "scim":
            if not new.token:
                raise OAuthError("invalid_request", "a SCIM receiver needs its token")
            idp.push_scim_to(new.url, new.token)
        else:
            if not new.audience:
                raise OAuthError("invalid_request", "a RISC receiver needs its audience")
            idp.push_events_to(new.url, new.audience)
        return {"kind": new.kind, "url": new.url}

    return app


async def _form(request: Request) -> dict[str, str]:
    """A bounded url-encoded form; a repeated field is refused (which one would count?)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
    try:
        body = await read_body(request, FORM_LIMITS)
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except BodyRefusedError as refusal:
        raise refusal.oauth() from refusal
    except UnicodeDecodeError as error:
        raise OAuthError("invalid_request", "the form is not UTF-8") from error
    form = dict(pairs)
    if len(form) != len(pairs):
        raise OAuthError("invalid_request", "a form field is repeated")
    return form
