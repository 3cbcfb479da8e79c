"""RISC security events pushed to the portal: a company's "this account is disabled", verified.

A corporate identity provider that speaks the OpenID RISC profile pushes Security Event
Tokens (RFC 8417) to ``/portal/risc/events`` (RFC 8935 push delivery, content type
``application/secevent+jwt``). A SET is believed only when it is signed by a key of the
issuer an organisation configured (its JWKS, found through its discovery document and
cached), names that organisation's ``client_id`` as audience, is fresh, and its ``jti`` was
never received before. An ``account-disabled`` (or ``account-purged``) event for a subject of
that organisation pulls the kill switch. The answer is 202 Accepted once the SET is believed,
whatever the subject (a receiver does not tell a transmitter who its users are), and 400 with
``{"err", "description"}`` otherwise (RFC 8935 §2.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..identity._jwt import JwtRejectedError, audiences, number, read_header, unverified_claims
from ..request_body import BodyRefusedError, ThreatLimits, media_type, read_body
from ..storage import Database
from ..types import Clock
from .accounts import DeveloperAccounts
from .corporate_sign_in import IdpDirectory, IdpSettings, OrganisationIdps

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_risc_received (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
);
"""

EVENTS_PATH = "/portal/risc/events"
SET_MEDIA = "application/secevent+jwt"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_PURGED = RISC + "account-purged"
DEPROVISIONING_EVENTS = (ACCOUNT_DISABLED, ACCOUNT_PURGED)
MAX_AGE = 24 * 3600.0
"""A SET issued longer ago than this is refused; received ``jti`` values are kept as long."""
FUTURE_IAT = 60.0
LIMITS = ThreatLimits(max_body_bytes=16 * 1024, allowed_content_types=(SET_MEDIA,))

Deprovision = Callable[[str], list[str]]


class SetRefusedError(Exception):
    """An RFC 8935 §2.3 error: ``err`` is its code, ``description`` says why."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err
        self.description = description

    def response(self) -> JSONResponse:
        return JSONResponse({"err": self.err, "description": self.description},
                            status_code=400)


class ReceivedEvents:
    """The ``jti`` of every SET believed in the last :data:`MAX_AGE`, per issuer."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)

    def seen(self, issuer: str, jti: str) -> bool:
        return self.db.one("SELECT 1 FROM portal_risc_received WHERE issuer = ? AND jti = ?",
                           (issuer, jti)) is not None

    def record(self, issuer: str, jti: str) -> bool:
        """Note ``jti`` as received; False when it already was (a replay)."""
        self.db.execute("DELETE FROM portal_risc_received WHERE received_at < ?",
                        (self.clock() - MAX_AGE,))
        return self.db.execute(
            "INSERT OR IGNORE INTO portal_risc_received (issuer, jti, received_at)"
            " VALUES (?, ?, ?)", (issuer, jti, self.clock())) == 1


class RiscReceiver:
    """Verifies pushed SETs and deprovisions the developers they name."""

    def __init__(self, accounts: DeveloperAccounts, idps: OrganisationIdps,
                 directory: IdpDirectory, received: ReceivedEvents,
                 deprovision: Deprovision, clock: Clock) -> None:
        self.accounts = accounts
        self.idps = idps
        self.directory = directory
        self.received = received
        self.deprovision = deprovision
        self.clock = clock

    async def receive(self, token: str) -> list[str]:
        """Believe ``token`` or raise SetRefusedError; the developer ids it deprovisioned."""
        try:
            read_header(token)
            issuer = unverified_claims(token).get("iss")
        except JwtRejectedError as error:
            raise SetRefusedError("invalid_request", f"not a SET: {error}") from error
        if not isinstance(issuer, str) or not issuer:
            raise SetRefusedError("invalid_issuer", "the SET names no issuer")
        candidates = self.idps.for_issuer(issuer)
        if not candidates:
            raise SetRefusedError("invalid_issuer",
                                  "no organisation here federates with this issuer")
        issuer = candidates[0].issuer
        try:
            claims = await self.directory.verify(token, issuer, typ="secevent+jwt")
        except JwtRejectedError as error:
            raise SetRefusedError("invalid_key", f"the SET's signature was refused: {error}"
                                  ) from error
        organisations = self._audience(claims, candidates)
        jti = self._check(claims)
        events = claims.get("events")
        if not isinstance(events, dict) or not events:
            raise SetRefusedError("invalid_request", "the SET carries no events")
        with self.accounts.db.transaction():
            if not self.received.record(issuer, jti):
                raise SetRefusedError("invalid_request", f"the SET {jti!r} was already received")
            deprovisioned: list[str] = []
            for event_type in DEPROVISIONING_EVENTS:
                if event_type in events:
                    for org in organisations:
                        developer_id = self._subject(events[event_type], claims, issuer, org)
                        if developer_id is not None and developer_id not in deprovisioned:
                            self.deprovision(developer_id)
                            deprovisioned.append(developer_id)
        return deprovisioned

    def _audience(self, claims: dict[str, Any], candidates: list[IdpSettings]
                  ) -> list[IdpSettings]:
        try:
            named = set(audiences(claims))
        except JwtRejectedError as error:
            raise SetRefusedError("invalid_audience", str(error)) from error
        chosen = [settings for settings in candidates if settings.client_id in named]
        if not chosen:
            raise SetRefusedError("invalid_audience",
                                  "the SET is meant for another receiver (aud)")
        return chosen

    def _check(self, claims: dict[str, Any]) -> str:
        """Freshness and identity of the SET; its ``jti``."""
        now = self.clock()
        try:
            iat = number(claims, "iat")
            exp = number(claims, "exp", required=False)
        except JwtRejectedError as error:
            raise SetRefusedError("invalid_request", str(error)) from error
        assert iat is not None
        if iat > now + FUTURE_IAT:
            raise SetRefusedError("invalid_request", "the SET is issued in the future")
        if iat < now - MAX_AGE:
            raise SetRefusedError("invalid_request", "the SET is too old")
        if exp is not None and exp <= now:
            raise SetRefusedError("invalid_request", "the SET has expired")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
            raise SetRefusedError("invalid_request", "the SET has no usable jti")
        return jti

    def _subject(self, event: Any, claims: dict[str, Any], issuer: str,
                 settings: IdpSettings) -> str | None:
        """The developer of ``settings``' organisation an event names (None: nobody here)."""
        subject = event.get("subject") if isinstance(event, dict) else None
        if subject is None:
            subject = claims.get("sub_id")  # RFC 9493 puts it beside the events
        if not isinstance(subject, dict):
            raise SetRefusedError("invalid_request", "the event names no subject")
        kind = subject.get("format")
        if kind == "iss_sub":
            if str(subject.get("iss", "")).rstrip("/") != issuer:
                raise SetRefusedError("invalid_request",
                                      "the subject belongs to another issuer than the SET's")
            sub = subject.get("sub")
            if not isinstance(sub, str) or not 1 <= len(sub) <= 255:
                raise SetRefusedError("invalid_request", "the subject has no usable sub")
            developer = self.accounts.by_external_subject(settings.org_id, sub)
        elif kind == "email":
            email = subject.get("email")
            if not isinstance(email, str) or len(email) > 254:
                raise SetRefusedError("invalid_request", "the subject has no usable email")
            developer = self.accounts.by_email(email)
            if developer is not None and developer.org_id != settings.org_id:
                developer = None  # a company speaks only for its own organisation
        else:
            raise SetRefusedError("invalid_request",
                                  f"subject format {kind!r} is not supported (iss_sub, email)")
        return None if developer is None else developer.developer_id


def build_risc_router(receiver: RiscReceiver) -> APIRouter:
    """``POST /portal/risc/events``: RFC 8935 push delivery."""
    router = APIRouter(tags=["risc"])

    @router.post(EVENTS_PATH)
    async def events(request: Request) -> Response:
        try:
            if media_type(request.headers.get("content-type")) != SET_MEDIA:
                raise SetRefusedError("invalid_request", f"send the SET as {SET_MEDIA}")
            try:
                body = await read_body(request, LIMITS)
            except BodyRefusedError as refusal:
                raise SetRefusedError("invalid_request", refusal.message) from refusal
            try:
                token = body.decode("ascii").strip()
            except UnicodeDecodeError as error:
                raise SetRefusedError("invalid_request", "a SET is ASCII text") from error
            await receiver.receive(token)
        except SetRefusedError as refused:
            return refused.response()
        return Response(status_code=202)

    return router
