"""SCIM 2.0 for the portal's developers: how a company's directory deprovisions them at once.

The organisation's identity provider holds a SCIM bearer token the portal issued (shown once
on the trust page, stored as a hash) and calls ``/scim/v2/Users/{id}``, where ``id`` is the
developer's subject at that provider. ``PATCH`` with ``active: false`` (RFC 7644 §3.5.2, the
``replace`` operation with ``path: active`` or with a value ``{"active": false}``) pulls the
kill switch: the developer is deactivated, every application they own suspended, every token
revoked. ``GET`` shows the user as SCIM sees it. The token names the organisation, so a
directory reaches only its own developers; anything else is a 404, as if absent.

Every refusal is a SCIM error (RFC 7644 §3.12): ``urn:ietf:params:scim:api:messages:2.0:Error``
with ``status`` as a string, ``detail`` and, for a bad request, ``scimType``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..request_body import BodyRefusedError, ThreatLimits, media_type, parse_json, read_body
from ..storage import Database
from ..types import Clock
from .accounts import DeveloperAccounts
from .developers import Developer

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_scim_tokens (
    org_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
"""

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_MEDIA = "application/scim+json"
TOKEN_PREFIX = "scim_"
LIMITS = ThreatLimits(max_body_bytes=16 * 1024, max_depth=6, max_keys=128,
                      allowed_content_types=(SCIM_MEDIA, "application/json"))
MAX_OPERATIONS = 20

Deprovision = Callable[[str], list[str]]
"""The kill switch for one developer id: the client ids it suspended."""


class ScimError(Exception):
    """A SCIM error response (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status),
                                "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        headers = ({"WWW-Authenticate": 'Bearer realm="scim"'} if self.status == 401 else None)
        return JSONResponse(body, status_code=self.status, media_type=SCIM_MEDIA,
                            headers=headers)


class ScimTokens:
    """One SCIM bearer token per organisation; only its SHA-256 is kept (it is 256 random
    bits, so a plain hash is as good as a slow one and lets a request find its organisation)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def issue(self, org_id: str) -> str:
        """A new token for ``org_id``, replacing its previous one; shown to the admin once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO portal_scim_tokens (org_id, token_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (org_id) DO UPDATE SET token_hash = excluded.token_hash,"
            " created_at = excluded.created_at",
            (org_id, _digest(token), self.clock()))
        return token

    def issued_at(self, org_id: str) -> float | None:
        row = self.db.one("SELECT created_at FROM portal_scim_tokens WHERE org_id = ?",
                          (org_id,))
        return None if row is None else float(row["created_at"])

    def revoke(self, org_id: str) -> None:
        self.db.execute("DELETE FROM portal_scim_tokens WHERE org_id = ?", (org_id,))

    def organisation(self, authorization: str | None) -> str | None:
        """The organisation whose token an ``Authorization: Bearer`` header carries."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = _digest(token)
        row = self.db.one("SELECT org_id, token_hash FROM portal_scim_tokens"
                          " WHERE token_hash = ?", (digest,))
        if row is None or not hmac.compare_digest(str(row["token_hash"]), digest):
            return None
        return str(row["org_id"])


def scim_user(developer: Developer, location: str) -> dict[str, Any]:
    """The developer as a SCIM core User resource."""
    return {
        "schemas": [USER_SCHEMA],
        "id": developer.external_subject,
        "externalId": developer.developer_id,
        "userName": developer.email,
        "displayName": developer.name,
        "name": {"formatted": developer.name},
        "emails": [{"value": developer.email, "primary": True}],
        "active": developer.active,
        "meta": {"resourceType": "User", "location": location},
    }


def requested_active(document: Any) -> bool | None:
    """What a PatchOp asks ``active`` to become (None: it does not touch ``active``).

    Accepts ``{"op": "replace", "path": "active", "value": false}`` and the path-less
    ``{"op": "replace", "value": {"active": false}}`` (both RFC 7644 §3.5.2.3); booleans sent
    as the strings ``"False"``/``"True"`` (as some directories do) are read as booleans.
    Operations on attributes the portal does not keep are refused, not silently dropped.
    """
    if not isinstance(document, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    schemas = document.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas:
        raise ScimError(400, f"schemas must list {PATCH_OP_SCHEMA}.", "invalidSyntax")
    operations = document.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list.", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise ScimError(400, f"At most {MAX_OPERATIONS} operations.", "tooMany")
    active: bool | None = None
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object.", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("replace", "add"):
            raise ScimError(400, f"Operation {operation.get('op')!r} is not supported here; "
                                 "use replace.", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        if path is None:
            if not isinstance(value, dict) or set(value) != {"active"}:
                raise ScimError(400, "Only the attribute 'active' can be changed.", "invalidPath")
            value = value["active"]
        elif not isinstance(path, str) or path.lower() != "active":
            raise ScimError(400, f"Only the attribute 'active' can be changed, not {path!r}.",
                            "invalidPath")
        active = _boolean(value)
    return active


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, "active must be a boolean.", "invalidValue")


def build_scim_router(accounts: DeveloperAccounts, tokens: ScimTokens,
                      deprovision: Deprovision, *, origin: str) -> APIRouter:
    """``/scim/v2/Users/{id}``: GET and PATCH, for the organisation the bearer token names."""
    router = APIRouter(prefix="/scim/v2", tags=["scim"])
    base = f"{origin.rstrip('/')}/scim/v2"

    def developer_for(request: Request, user_id: str) -> Developer:
        org_id = tokens.organisation(request.headers.get("authorization"))
        if org_id is None:
            raise ScimError(401, "A valid SCIM bearer token of the organisation is required.")
        developer = accounts.by_external_subject(org_id, user_id) if len(user_id) <= 255 else None
        if developer is None:
            raise ScimError(404, f"Resource {user_id[:255]} not found.")
        return developer

    @router.get("/Users/{user_id}")
    def read(request: Request, user_id: str) -> Response:
        try:
            developer = developer_for(request, user_id)
        except ScimError as error:
            return error.response()
        return JSONResponse(scim_user(developer, f"{base}/Users/{user_id}"),
                            media_type=SCIM_MEDIA)

    @router.patch("/Users/{user_id}")
    async def patch(request: Request, user_id: str) -> Response:
        try:
            developer = developer_for(request, user_id)
            active = requested_active(await _document(request))
            if active is False:  # again on a repeat: the kill switch is idempotent
                deprovision(developer.developer_id)
            elif active is True and not developer.active:
                accounts.reactivate(developer.developer_id)
        except ScimError as error:
            return error.response()
        current = accounts.developer(developer.developer_id)
        assert current is not None
        return JSONResponse(scim_user(current, f"{base}/Users/{user_id}"),
                            media_type=SCIM_MEDIA)

    return router


async def _document(request: Request) -> Any:
    """The bounded, strictly parsed JSON body (SCIM's or plain JSON media type)."""
    try:
        body = await read_body(request, LIMITS)
        if media_type(request.headers.get("content-type")) not in LIMITS.allowed_content_types:
            raise ScimError(415, f"Send the body as {SCIM_MEDIA}.")
        if not body:
            raise ScimError(400, "The request has no body.", "invalidSyntax")
        return parse_json(body, LIMITS)
    except BodyRefusedError as refusal:
        raise ScimError(refusal.status, refusal.message,
                        "invalidSyntax" if refusal.status == 400 else None) from refusal


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
