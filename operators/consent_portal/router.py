"""Routes of the consent portal (``/my``): plain HTML forms, server-rendered, no script.

Every page reads the session from its signed cookie; every POST checks the session's CSRF
token first. A subscriber reaches only their own records: a consent, receipt or application
of someone else is "not found", exactly like one that does not exist. Bad input is a page
with the reason and a 400, never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..identity import sign_in_to_capture
from ..web.pages import SECURITY_HEADERS, add_template_dir
from . import access_log
from .forms import CODE, FormError, normalise_number, read_form
from .one_time_codes import Check
from .portal import Portal
from .receipts import RECEIPT_EVENTS
from .sessions import Session
from .vocabulary import purpose_words

if TYPE_CHECKING:
    from operators.operator import Operator

add_template_dir(Path(__file__).parent / "templates")

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
            session = portal.session_of(request)
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
            session = portal.session_of(request)
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
        session = portal.session_of(request)
        return portal.see_other(request, session,
                                "/my/consents" if session.signed_in else "/my/sign-in")

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        session = portal.session_of(request)
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
        if session.signed_in:
            portal.sessions.end(session)
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
        if not portal.revoke(consent):
            return await consents_page(request, session, "That consent was already withdrawn.")
        return await consents_page(request, session,
                                   f"Consent withdrawn: {purpose_words(consent.purpose)}.")

    async def revoke_application(request: Request, session: Session, form: dict[str, str]
                                 ) -> Response:
        assert session.msisdn is not None
        client_id = request.path_params["client_id"]
        now = operator.clock()
        consents = operator.identity.consents
        if not any(c.client_id == client_id for c in consents.for_subscriber(session.msisdn)):
            return portal.message(request, session, 404, "Not found",
                                  "You gave no consent to such an application.", "/my/consents")
        # its pending CIBA requests first, whatever their purpose: collected between the list
        # and the revocations, an approved one would grant a consent nobody revokes
        operator.identity.ciba.withdraw(session.msisdn, client_id)
        for consent in consents.for_subscriber(session.msisdn):
            if consent.client_id == client_id and consent.active(now):
                portal.revoke(consent)
        return await consents_page(request, session, "Every consent to that application is "
                                                     "withdrawn.")

    async def grant_again(request: Request, session: Session, form: dict[str, str]
                          ) -> Response:
        """A withdrawn or expired consent, asked again on the operator's capture page (the
        same page an application's Consent Info request leads to), already signed in."""
        assert session.msisdn is not None
        consent = portal.own_consent(session.msisdn, request.path_params["consent_id"])
        if consent is None:
            return portal.message(request, session, 404, "Not found",
                                  "You have no such consent.", "/my/consents")
        if consent.active(operator.clock()):
            return await consents_page(request, session, "That consent is still active.")
        identity = operator.identity
        capture = identity.captures.offer(consent.client_id, session.msisdn, consent.purpose,
                                          consent.scopes, None)
        response = RedirectResponse(identity.consent_info.url_of(capture), status_code=303)
        sign_in_to_capture(identity, capture.id, response, secure=request.url.scheme == "https")
        return response

    router.add_api_route("/consents", signed_in_page(consents_page), methods=["GET"])
    router.add_api_route("/consents/{consent_id}/grant-again", form_action(grant_again),
                         methods=["POST"])
    router.add_api_route("/consents/{consent_id}/revoke", form_action(revoke_one),
                         methods=["POST"])
    # ``{client_id:path}``: an application an aggregator acts for is ``hub/app``
    router.add_api_route("/applications/{client_id:path}/revoke", form_action(revoke_application),
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
        session = portal.session_of(request)
        return portal.render(request, session, "my_privacy.html", "Privacy policy",
                             issuer=operator.issuer)

    @router.get("/{anything:path}")
    async def not_found(request: Request, anything: str) -> Response:
        session = portal.session_of(request)
        return portal.message(request, session, 404, "Not found", "There is no such page.")

    return router
