"""Routes of the consent portal (``/my``): plain HTML forms, server-rendered, no script.

Every page reads the session from its signed cookie; every POST checks the session's CSRF
token first. A subscriber reaches only their own records: a consent, receipt or application
of someone else is "not found", exactly like one that does not exist. Bad input is a page
with the reason and a 400, never a stack trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..identity import Consent
from ..request_body import BodyRefusedError, ThreatLimits, read_body
from ..web import page
from ..web.pages import SECURITY_HEADERS, add_template_dir
from . import access_log
from .objections import Objections
from .one_time_codes import Check, OneTimeCodes
from .receipts import RECEIPT_EVENTS, ReceiptIssuer
from .sessions import COOKIE, PortalSecret, Session, Sessions
from .vocabulary import purpose_words

if TYPE_CHECKING:
    from operators.operator import Operator

add_template_dir(Path(__file__).parent / "templates")

FORM_LIMITS = ThreatLimits(max_body_bytes=4096,
                           allowed_content_types=("application/x-www-form-urlencoded",))
NUMBER = re.compile(r"^\+[1-9]\d{6,14}$")
CODE = re.compile(r"^\d{6}$")
PORTAL_ACTOR = "subscriber:portal"


class FormError(Exception):
    """A form the portal cannot act on: shown as a page with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _when(at: float | None, never: str = "never") -> str:
    if at is None:
        return never
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def normalise_number(raw: str | None) -> str:
    """``+34 600-000 001`` → ``+34600000001``; anything else that is no E.164 number → 400."""
    number = re.sub(r"[\s\-().]", "", raw or "")
    if not NUMBER.match(number):
        raise FormError(400, "Enter your mobile number in international format, e.g. "
                             "+34600000001.")
    return number


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (4 KiB, 16 fields, a field given once); else :class:`FormError`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(400, "This page takes a form.")
    try:
        body = await read_body(request, FORM_LIMITS)
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except BodyRefusedError as refusal:
        raise FormError(400, "The form could not be read.") from refusal
    except (UnicodeDecodeError, ValueError) as error:
        raise FormError(400, "The form could not be read.") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise FormError(400, "A field of the form is repeated.")
        form[name] = value
    return form


@dataclass
class Portal:
    """What the portal's routes share: the operator and the portal's own records."""

    operator: Operator
    sessions: Sessions
    codes: OneTimeCodes
    receipts: ReceiptIssuer
    objections: Objections

    @classmethod
    def of(cls, operator: Operator) -> Portal:
        secret = PortalSecret(operator.db)
        clock = operator.clock
        return cls(
            operator,
            Sessions(secret, clock=clock),
            OneTimeCodes(operator.db, secret, clock=clock),
            ReceiptIssuer(operator.identity, secret, operator.config.display_name,
                          f"{operator.api_root}/my/privacy", clock),
            Objections(operator.config, operator.subscribers),
        )

    # -- responses -------------------------------------------------------------------------

    def session_of(self, request: Request) -> tuple[Session, bool]:
        """The browser's session, or a new anonymous one (True: the cookie must be set)."""
        session = self.sessions.decode(request.cookies.get(COOKIE))
        return (session, False) if session is not None else (self.sessions.anonymous(), True)

    def keep(self, request: Request, response: Response, session: Session) -> Response:
        """Set the session cookie on ``response``: HttpOnly, SameSite=Lax, under /my."""
        response.set_cookie(
            COOKIE, self.sessions.encode(session), max_age=max(1, int(session.expires_at
                                                                     - self.operator.clock())),
            path="/my", httponly=True, samesite="lax", secure=request.url.scheme == "https",
        )
        return response

    def render(self, request: Request, session: Session, name: str, heading: str,
               status: int = 200, **context: Any) -> Response:
        response = page(request, name, {
            "operator_name": self.operator.config.display_name,
            "heading": heading,
            "signed_in": session.signed_in,
            "msisdn": session.msisdn,
            "csrf": self.sessions.csrf_token(session),
            **context,
        }, status_code=status)
        return self.keep(request, response, session)

    def message(self, request: Request, session: Session, status: int, heading: str,
                error: str | None = None, back: str = "/my") -> Response:
        return self.render(request, session, "my_message.html", heading, status, error=error,
                           back=back)

    def see_other(self, request: Request, session: Session, location: str) -> Response:
        response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
        return self.keep(request, response, session)

    # -- the subscriber's records ----------------------------------------------------------

    def own_consent(self, msisdn: str, consent_id: str) -> Consent | None:
        """``consent_id`` if it is ``msisdn``'s; None for another's as for a missing one."""
        consent = self.operator.identity.consents.get(consent_id)
        return consent if consent is not None and consent.msisdn == msisdn else None

    def revoke(self, consent: Consent) -> None:
        """Withdraw through the consent store, as ``DELETE /consents/{id}`` does, and tell the
        subscriber's phone."""
        identity = self.operator.identity
        revoked = identity.consents.revoke(consent.id, actor=PORTAL_ACTOR)
        client = identity.clients.get(consent.client_id)
        name = client.name if client is not None else consent.client_id
        self.operator.handsets.send(
            consent.msisdn, "consent",
            f"You withdrew your consent to {name} for {purpose_words(consent.purpose).lower()}.",
            consent_id=revoked.id, client_id=consent.client_id, purpose=consent.purpose,
            action="revoked",
        )

    def applications(self, msisdn: str) -> list[dict[str, Any]]:
        """The subscriber's consents grouped by application, newest application first."""
        identity = self.operator.identity
        now = self.operator.clock()
        receipts: dict[str, list[dict[str, Any]]] = {}
        for entry in identity.consents.audit(msisdn=msisdn):
            if entry.action in RECEIPT_EVENTS:
                receipts.setdefault(entry.consent_id, []).append(
                    {"id": entry.id, "action": entry.action})
        apps: dict[str, dict[str, Any]] = {}
        for consent in reversed(identity.consents.for_subscriber(msisdn)):
            app = apps.get(consent.client_id)
            if app is None:
                client = identity.clients.get(consent.client_id)
                app = apps[consent.client_id] = {
                    "client_id": consent.client_id,
                    "name": client.name if client is not None else consent.client_id,
                    "organisation": getattr(client, "organisation", None),
                    "consents": [], "active": False,
                }
            view = consent.view(now)
            app["active"] = app["active"] or view["status"] == "active"
            app["consents"].append({
                "id": consent.id, "purpose": consent.purpose,
                "purpose_words": purpose_words(consent.purpose),
                "scopes": consent.scopes, "granted": _when(consent.granted_at),
                "expires": _when(consent.expires_at), "status": view["status"],
                "receipts": receipts.get(consent.id, []),
            })
        return list(apps.values())


Handler = Callable[[Request], Awaitable[Response]]


def build_consent_portal_router(operator: Operator) -> APIRouter:
    """The portal's pages under ``/my``."""
    router = APIRouter(prefix="/my", include_in_schema=False)
    portal = Portal.of(operator)

    def signed_in_page(
        handler: Callable[[Request, Session], Awaitable[Response]],
    ) -> Handler:
        """A page for a signed-in subscriber; others are sent to sign in."""

        async def page_for_subscriber(request: Request) -> Response:
            session, _ = portal.session_of(request)
            if not session.signed_in:
                return portal.see_other(request, session, "/my/sign-in")
            return await handler(request, session)

        return page_for_subscriber

    def form_action(
        handler: Callable[[Request, Session, dict[str, str]], Awaitable[Response]],
        *, signed_in: bool = True,
    ) -> Handler:
        """A POST: the form read within bounds, its CSRF token checked, then ``handler``."""

        async def checked(request: Request) -> Response:
            session, _ = portal.session_of(request)
            try:
                form = await read_form(request)
                if not portal.sessions.csrf_ok(session, form.get("csrf")):
                    raise FormError(403, "This form has expired or did not come from this "
                                         "site. Open the page again and retry.")
                if signed_in and not session.signed_in:
                    return portal.see_other(request, session, "/my/sign-in")
                return await handler(request, session, form)
            except FormError as refusal:
                return portal.message(request, session, refusal.status, "That did not work",
                                      refusal.message)

        return checked

    # -- sign-in ---------------------------------------------------------------------------

    @router.get("")
    @router.get("/")
    async def home(request: Request) -> Response:
        session, _ = portal.session_of(request)
        return portal.see_other(request, session,
                                "/my/consents" if session.signed_in else "/my/sign-in")

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        session, _ = portal.session_of(request)
        return portal.render(request, session, "my_sign_in.html", "Your data and consents")

    async def sign_in(request: Request, session: Session, form: dict[str, str]) -> Response:
        number = normalise_number(form.get("number"))
        host = request.client.host if request.client else None
        on_device = operator.identity.subscriber_at(host)
        if on_device is not None and on_device.msisdn == number:
            return portal.see_other(request, portal.sessions.signed_in(number), "/my/consents")
        issued = portal.codes.issue(number)
        if issued.code is None:
            minutes = max(1, round(issued.retry_after / 60))
            return portal.render(
                request, session, "my_code.html", "Enter your code", 429, number=number,
                error=f"Too many codes were asked for this number. Try again in about "
                      f"{minutes} minute{'s' if minutes != 1 else ''}, or use the last code.")
        if operator.subscribers.get(number) is not None:
            operator.handsets.send(
                number, "code",
                f"Your {operator.config.display_name} code is {issued.code}. It expires in "
                "5 minutes. Nobody from us will ever ask you for it.",
                code=issued.code, purpose="portal sign-in")
        return portal.render(request, session, "my_code.html", "Enter your code", number=number)

    async def verify_code(request: Request, session: Session, form: dict[str, str]) -> Response:
        number = normalise_number(form.get("number"))
        code = (form.get("code") or "").strip()
        if not CODE.match(code):
            return portal.render(request, session, "my_code.html", "Enter your code", 400,
                                 number=number, error="A code is six digits.")
        outcome = portal.codes.check(number, code)
        if outcome is Check.ACCEPTED:
            return portal.see_other(request, portal.sessions.signed_in(number), "/my/consents")
        error = ("That code is not right. Check the last message on your phone."
                 if outcome is Check.WRONG else
                 "That code can no longer be used (expired, used, or too many tries). "
                 "Send a new code.")
        return portal.render(request, session, "my_code.html", "Enter your code", 400,
                             number=number, error=error)

    async def sign_out(request: Request, session: Session, form: dict[str, str]) -> Response:
        return portal.render(request, portal.sessions.anonymous(), "my_sign_in.html",
                             "Your data and consents", notice="You are signed out.")

    router.add_api_route("/sign-in", form_action(sign_in, signed_in=False), methods=["POST"])
    router.add_api_route("/sign-in/code", form_action(verify_code, signed_in=False),
                         methods=["POST"])
    router.add_api_route("/sign-out", form_action(sign_out, signed_in=False), methods=["POST"])

    # -- consents --------------------------------------------------------------------------

    async def consents_page(request: Request, session: Session, notice: str | None = None,
                            ) -> Response:
        assert session.msisdn is not None
        return portal.render(request, session, "my_consents.html", "Your consents",
                             notice=notice, applications=portal.applications(session.msisdn),
                             jwks_uri=operator.identity.url("/jwks"))

    async def revoke_one(request: Request, session: Session, form: dict[str, str]) -> Response:
        assert session.msisdn is not None
        consent = portal.own_consent(session.msisdn, request.path_params["consent_id"])
        if consent is None:
            return portal.message(request, session, 404, "Not found",
                                  "You have no such consent.", "/my/consents")
        portal.revoke(consent)
        return await consents_page(request, session,
                                   f"Consent withdrawn: {purpose_words(consent.purpose)}.")

    async def revoke_application(request: Request, session: Session, form: dict[str, str]
                                 ) -> Response:
        assert session.msisdn is not None
        client_id = request.path_params["client_id"]
        now = operator.clock()
        mine = [c for c in operator.identity.consents.for_subscriber(session.msisdn)
                if c.client_id == client_id]
        if not mine:
            return portal.message(request, session, 404, "Not found",
                                  "You gave no consent to such an application.", "/my/consents")
        for consent in mine:
            if consent.active(now):
                portal.revoke(consent)
        return await consents_page(request, session, "Every consent to that application is "
                                                     "withdrawn.")

    router.add_api_route("/consents", signed_in_page(consents_page), methods=["GET"])
    router.add_api_route("/consents/{consent_id}/revoke", form_action(revoke_one),
                         methods=["POST"])
    router.add_api_route("/applications/{client_id}/revoke", form_action(revoke_application),
                         methods=["POST"])

    async def receipt(request: Request, session: Session) -> Response:
        assert session.msisdn is not None
        raw = request.path_params["entry_id"]
        entry = next((e for e in operator.identity.consents.audit(msisdn=session.msisdn)
                      if str(e.id) == raw and e.action in RECEIPT_EVENTS), None)
        consent = portal.own_consent(session.msisdn, entry.consent_id) if entry else None
        if entry is None or consent is None:
            return portal.message(request, session, 404, "Not found", "You have no such receipt.",
                                  "/my/consents")
        token = portal.receipts.sign(consent, entry)
        filename = f"consent-receipt-{consent.id}-{entry.action}.jwt"
        return Response(token, media_type="application/jwt", headers={
            **SECURITY_HEADERS, "content-disposition": f'attachment; filename="{filename}"'})

    router.add_api_route("/receipts/{entry_id}", signed_in_page(receipt), methods=["GET"])

    # -- access log ------------------------------------------------------------------------

    def log_of(session: Session) -> list[access_log.AccessEntry]:
        assert session.msisdn is not None
        return access_log.entries(operator.gateway.ledger, operator.identity.clients,
                                  session.msisdn)

    async def access_page(request: Request, session: Session) -> Response:
        return portal.render(request, session, "my_access_log.html", "Who used your data",
                             entries=log_of(session))

    def download(body: str, media_type: str, filename: str) -> Response:
        return Response(body, media_type=media_type, headers={
            **SECURITY_HEADERS, "content-disposition": f'attachment; filename="{filename}"'})

    async def access_csv(request: Request, session: Session) -> Response:
        return download(access_log.as_csv(log_of(session)), "text/csv; charset=utf-8",
                        "access-log.csv")

    async def access_json(request: Request, session: Session) -> Response:
        return download(json.dumps(access_log.as_json(log_of(session)), indent=1),
                        "application/json", "access-log.json")

    router.add_api_route("/access-log", signed_in_page(access_page), methods=["GET"])
    router.add_api_route("/access-log.csv", signed_in_page(access_csv), methods=["GET"])
    router.add_api_route("/access-log.json", signed_in_page(access_json), methods=["GET"])

    # -- objections ------------------------------------------------------------------------

    async def purposes_page(request: Request, session: Session, notice: str | None = None,
                            ) -> Response:
        assert session.msisdn is not None
        return portal.render(request, session, "my_purposes.html", "Your objections",
                             notice=notice,
                             purposes=portal.objections.standing(session.msisdn))

    def objection(objected: bool) -> Callable[[Request, Session, dict[str, str]],
                                              Awaitable[Response]]:
        async def record(request: Request, session: Session, form: dict[str, str]) -> Response:
            assert session.msisdn is not None
            policy = portal.objections.policy(form.get("purpose", ""))
            if policy is None:
                raise FormError(400, "You can object only to the purposes listed on the page.")
            portal.objections.set(session.msisdn, policy, objected)
            words = purpose_words(policy.purpose)
            return await purposes_page(request, session, (
                f"You object to {words.lower()}." if objected
                else f"You no longer object to {words.lower()}."))

        return record

    router.add_api_route("/purposes", signed_in_page(purposes_page), methods=["GET"])
    router.add_api_route("/purposes/opt-out", form_action(objection(True)), methods=["POST"])
    router.add_api_route("/purposes/opt-in", form_action(objection(False)), methods=["POST"])

    @router.get("/privacy")
    async def privacy(request: Request) -> Response:
        session, _ = portal.session_of(request)
        return portal.render(request, session, "my_privacy.html", "Privacy policy",
                             issuer=operator.issuer)

    @router.get("/{anything:path}")
    async def not_found(request: Request, anything: str) -> Response:
        session, _ = portal.session_of(request)
        return portal.message(request, session, 404, "Not found", "There is no such page.")

    return router
