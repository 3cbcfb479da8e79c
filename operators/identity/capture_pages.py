"""The consent capture page: where Consent Info's ``captureUrl`` takes the subscriber.

Three steps, each a plain HTML form: prove who you are (network-based when the browser comes
from the subscriber's own device address, else a one-time code sent to their phone), read
what the application asks (its name, the purpose in words, the scopes), approve or refuse.
The outcome is recorded once; an approval grants consent through the same store every other
grant uses, so the very next API call sees it; then the browser goes back to the
application's callback with ``capture_result`` (and ``state``, unchanged, when the application
opened the page with one), and nothing else: no number, no token, no identifier.

Forms carry a double-submitted secret (a cookie scoped to this capture and a hidden field);
the cookie that proves who the subscriber is never leaves this capture's path.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..web.pages import add_template_dir, page
from .consent_capture import CAPTURE_LIFETIME, CaptureOutcome, CaptureRequest
from .purposes import describe_purpose

if TYPE_CHECKING:
    from .clients import ClientRegistry
    from .server import IdentityServer

__all__ = ["application_name", "build_capture_router", "sign_in_to_capture"]

add_template_dir(Path(__file__).parent / "templates")

SESSION_COOKIE = "ogsim_capture"
FORM_COOKIE = "ogsim_capture_form"
MAX_FORM_BYTES = 4096
NO_CODES_LEFT = ("This request has sent all the codes it may: ask the application to send you a"
                 " new one.")

SendCode = Callable[[str, str], None]
"""Sends a one-time code to a subscriber's phone: (msisdn, code)."""


def with_result(callback: str, outcome: CaptureOutcome, state: str | None) -> str:
    """The callback URL with ``capture_result`` (and ``state``) added to its own query."""
    parts = urlsplit(callback)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.append(("capture_result", outcome.value))
    if state is not None:
        query.append(("state", state))
    return urlunsplit(parts._replace(query=urlencode(query)))


def sign_in_to_capture(server: IdentityServer, capture_id: str, response: Response, *,
                       secure: bool) -> None:
    """Let the browser that gets ``response`` decide on the capture without proving itself
    again: the operator's own consent portal, where the subscriber is already signed in,
    hands them over to the capture page this way."""
    secret = server.captures.open_session(capture_id)
    path = f"{urlsplit(server.issuer).path.rstrip('/')}/consent/capture/{capture_id}"
    _set_cookie(response, path, SESSION_COOKIE, secret, secure=secure)


def _set_cookie(response: Response, path: str, name: str, value: str, *, secure: bool) -> None:
    response.set_cookie(name, value, path=path, httponly=True, samesite="strict", secure=secure,
                        max_age=int(CAPTURE_LIFETIME))


def application_name(clients: ClientRegistry, party: str) -> str:
    """What the subscriber reads for a consent party: the client's registered name, or for an
    application an aggregator acts for (``hub/app``), the application through the aggregator."""
    client = clients.get(party)
    if client is not None:
        return client.name
    hub_id, _, application = party.partition("/")
    hub = clients.get(hub_id)
    return f"{application} (through {hub.name if hub else hub_id})" if application else party


def build_capture_router(server: IdentityServer, send_code: SendCode) -> APIRouter:
    """The capture page's routes, under the identity server's path."""
    router = APIRouter(prefix="/consent/capture", include_in_schema=False)
    captures = server.captures

    def cookie_path(request: Request, capture_id: str) -> str:
        return f"{request.scope.get('root_path', '')}/consent/capture/{capture_id}"

    def set_cookie(response: Response, request: Request, capture_id: str, name: str,
                   value: str) -> None:
        _set_cookie(response, cookie_path(request, capture_id), name, value,
                    secure=request.url.scheme == "https")

    def view(request: Request, capture: CaptureRequest, template: str, status: int = 200,
             **extra: object) -> HTMLResponse:
        context = {
            "operator_name": server.config.display_name,
            "capture": capture,
            "application": application_name(server.clients, capture.client_id),
            "purpose_words": describe_purpose(capture.purpose),
            "ending": capture.msisdn[-2:],
            **extra,
        }
        return page(request, template, context, status_code=status)

    def code_page(request: Request, capture: CaptureRequest, csrf: str, status: int = 200,
                  error: str | None = None) -> HTMLResponse:
        """The one-time code form: tries left with this code, and whether a new one may come."""
        return view(request, capture, "capture_code.html", status, csrf=csrf, error=error,
                    left=captures.codes_left(capture.id),
                    unsent=captures.codes_unsent(capture.id))

    def message(request: Request, title: str, text: str, status: int) -> HTMLResponse:
        return page(request, "capture_message.html",
                    {"operator_name": server.config.display_name, "title": title,
                     "text": text}, status_code=status)

    def finish(request: Request, capture: CaptureRequest, outcome: CaptureOutcome) -> Response:
        if capture.callback_url:
            return RedirectResponse(
                with_result(capture.callback_url, outcome, capture.state), status_code=303
            )
        words = {
            CaptureOutcome.GRANTED: "Your consent was recorded. You can close this page.",
            CaptureOutcome.DENIED: "You refused. Nothing was shared. You can close this page.",
            CaptureOutcome.TIMEOUT: "This request has expired. You can close this page.",
            CaptureOutcome.ERROR: "Something went wrong. Nothing was shared.",
        }
        return message(request, "Done", words[outcome], 200)

    def live(capture_id: str) -> CaptureRequest | None:
        capture = captures.get(capture_id)
        if capture is not None and capture.expired(server.clock()):
            captures.decide(capture_id, CaptureOutcome.TIMEOUT)
            capture = captures.get(capture_id)
        return capture

    async def form_of(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return {}
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return {}

    def form_ok(request: Request, form: dict[str, str], cookie: str) -> bool:
        sent, held = form.get("csrf", ""), request.cookies.get(cookie, "")
        return bool(sent) and bool(held) and secrets.compare_digest(sent.encode(), held.encode())

    @router.get("/{capture_id}")
    async def open_capture(capture_id: str, request: Request) -> Response:
        capture = live(capture_id)
        if capture is None:
            return message(request, "Not found", "There is no such consent request.", 404)
        state = request.query_params.get("state")
        if state is not None and len(state) <= 512:
            captures.keep_state(capture_id, state)
            capture = captures.get(capture_id) or capture
        if capture.outcome is not None:
            return finish(request, capture, capture.outcome)
        session = request.cookies.get(SESSION_COOKIE)
        if captures.holds_session(capture_id, session):
            return view(request, capture, "capture_decide.html", csrf=session)
        device = server.subscriber_at(request.client.host if request.client else None)
        if device is not None and device.msisdn == capture.msisdn:
            secret = captures.open_session(capture_id)  # network-based: the device is the proof
            response = view(request, capture, "capture_decide.html", csrf=secret)
            set_cookie(response, request, capture_id, SESSION_COOKIE, secret)
            return response
        if not request.cookies.get(FORM_COOKIE):
            # a page load (a link preview, a second device) sends a code only when none can
            # still be entered, checked in the statement that makes it (two loads at once at
            # two replicas send one): the three codes a capture may send stay the subscriber's
            first = captures.first_code(capture_id)
            if first is not None:
                send_code(capture.msisdn, first)
        form_secret = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(16)
        response = code_page(request, capture, form_secret)
        set_cookie(response, request, capture_id, FORM_COOKIE, form_secret)
        return response

    @router.post("/{capture_id}/code")
    async def enter_code(capture_id: str, request: Request) -> Response:
        capture = live(capture_id)
        if capture is None or capture.outcome is not None:
            return message(request, "Not found", "There is no such open consent request.", 404)
        form = await form_of(request)
        if not form_ok(request, form, FORM_COOKIE):
            return message(request, "Refused", "The form was not sent from this page.", 403)
        if form.get("resend") == "1":
            fresh = captures.new_code(capture_id)
            if fresh is None:
                return code_page(request, capture, form["csrf"], 429, error=NO_CODES_LEFT)
            send_code(capture.msisdn, fresh)
            return RedirectResponse(str(request.url_for("open_capture", capture_id=capture_id)),
                                    status_code=303)
        code = form.get("code", "").strip()
        if not (code.isascii() and code.isdigit() and captures.check_code(capture_id, code)):
            if captures.codes_left(capture_id):
                error = "That code is not right."
            elif captures.codes_unsent(capture_id):
                error = "Too many wrong codes: ask for a new one."
            else:
                error = "Too many wrong codes. " + NO_CODES_LEFT
            return code_page(request, capture, form["csrf"], 400, error=error)
        secret = captures.open_session(capture_id)
        response = view(request, capture, "capture_decide.html", csrf=secret)
        set_cookie(response, request, capture_id, SESSION_COOKIE, secret)
        return response

    @router.post("/{capture_id}/decide")
    async def decide(capture_id: str, request: Request) -> Response:
        capture = live(capture_id)
        if capture is None:
            return message(request, "Not found", "There is no such consent request.", 404)
        form = await form_of(request)
        session = request.cookies.get(SESSION_COOKIE)
        if not (form_ok(request, form, SESSION_COOKIE)
                and captures.holds_session(capture_id, session)):
            return message(request, "Refused", "Sign in to this request first.", 403)
        if capture.outcome is not None:
            return finish(request, capture, capture.outcome)
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return message(request, "Refused", "Choose approve or refuse.", 400)
        outcome = CaptureOutcome.GRANTED if decision == "approve" else CaptureOutcome.DENIED
        if captures.decide(capture_id, outcome) and outcome is CaptureOutcome.GRANTED:
            server.consents.grant(capture.msisdn, capture.client_id, capture.purpose,
                                  capture.scopes, actor="subscriber:capture")
        decided = captures.get(capture_id) or capture
        return finish(request, decided, decided.outcome or outcome)

    return router
