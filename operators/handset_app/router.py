"""Routes of the handset page: one subscriber's simulated phone at ``/handset/{number}``.

The phone shows one-time codes and answers consent prompts, so it opens only for its holder,
the operator admin, or whoever was handed its link (:mod:`.pairing`); anyone else gets a 403
that says how to open it, the same for a number the operator does not serve. Once open, it
shows only that number's pending prompts on an *interactive* handset (a scripted one answers
by itself), a decision is recorded once (pressing again changes nothing), a press needs the
page's own CSRF token (:mod:`.csrf`), and bad input gets a 4xx page, never a 500.
``/handset/{number}/messages`` is the same phone as JSON, for tests and for the page's own
reload script (``/static/handset.js``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ..admin_auth import is_admin
from ..identity import Press, Verdict
from ..request_body import BodyRefusedError, ThreatLimits, read_body
from ..web import page
from . import csrf, pairing
from .view import handset_view

if TYPE_CHECKING:
    from operators.operator import Operator

PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{4,14}$")
PRESS_LIMITS = ThreatLimits(max_body_bytes=2048)
"""A button's form: two short fields."""
DECISIONS = {"approve": Verdict.APPROVED, "deny": Verdict.DENIED}
NO_STORE = {"cache-control": "no-store"}
CLOSED = ("This phone opens with its own link (the operator admin gets it from GET "
          "/admin/handsets/<number>), from the phone's own data connection, or with the "
          "operator admin's credential.")


def build_handset_router(operator: Operator) -> APIRouter:
    """The handset's pages under ``/handset``."""
    router = APIRouter(prefix="/handset", include_in_schema=False)
    key = csrf.signing_key(operator.config.admin_secret)

    def problem(request: Request, status: int, message: str, *, retry: bool = True) -> Response:
        """The phone's error page; ``retry`` says going back to the phone may help."""
        return page(request, "handset_error.html",
                    {"operator_name": operator.config.display_name, "message": message,
                     "retry": retry}, status_code=status)

    def closed(request: Request) -> Response:
        """A phone this request may not open: going back to it opens nothing."""
        return problem(request, 403, CLOSED, retry=False)

    secret = operator.config.admin_secret

    def served(number: str) -> bool:
        return bool(PHONE_NUMBER.match(number)) and operator.subscribers.get(number) is not None

    def opens(request: Request, number: str) -> bool:
        """Whether this request may open ``number``'s phone (asked before whether the number
        is served, so a stranger learns nothing about which numbers are)."""
        if (pairing.key_matches(secret, number, request.query_params.get("key"))
                or pairing.key_matches(secret, number,
                                       request.cookies.get(pairing.cookie_name(number)))
                or is_admin(request.headers.get("authorization"), secret)):
            return True
        holder = operator.identity.subscriber_at(request.client.host if request.client else None)
        return holder is not None and holder.msisdn == number

    @router.get("/{number}")
    def phone(number: str, request: Request) -> Response:
        if not opens(request, number):
            return closed(request)
        if not served(number):
            return problem(request, 404, "This operator has no phone with that number.")
        nonce = csrf.usable_nonce(request.cookies.get(csrf.COOKIE)) or csrf.new_nonce()
        view = handset_view(operator, number)
        context: dict[str, Any] = {
            "operator_name": view.operator_name,
            "phone": view,
            "csrf": csrf.form_token(key, nonce, number),
            "base": pairing.phone_path(number),
        }
        response = page(request, "handset.html", context)
        response.set_cookie(csrf.COOKIE, nonce, path="/handset", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        link_key = request.query_params.get("key")
        if pairing.key_matches(secret, number, link_key):  # reloads and buttons carry none
            response.set_cookie(pairing.cookie_name(number), link_key or "", path="/handset",
                                httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    @router.get("/{number}/messages")
    def messages(number: str, request: Request) -> Response:
        if not opens(request, number):
            return JSONResponse({"error": "forbidden", "message": CLOSED}, status_code=403,
                                headers=NO_STORE)
        if not served(number):
            return JSONResponse({"error": "not_found", "message": "no such phone"},
                                status_code=404, headers=NO_STORE)
        return JSONResponse(handset_view(operator, number).json(), headers=NO_STORE)

    @router.post("/{number}/prompts/{auth_req_id}")
    async def press(number: str, auth_req_id: str, request: Request) -> Response:
        if not opens(request, number):
            return closed(request)
        if not served(number):
            return problem(request, 404, "This operator has no phone with that number.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return problem(request, 415, "A button sends a form.")
        try:
            body = (await read_body(request, PRESS_LIMITS)).decode("utf-8")
            form = dict(parse_qsl(body, max_num_fields=8))
        except BodyRefusedError as refusal:
            return problem(request, refusal.status, "The form could not be read.")
        except (UnicodeDecodeError, ValueError):
            return problem(request, 400, "The form could not be read.")
        if not csrf.valid(key, request.cookies.get(csrf.COOKIE), number, form.get("csrf")):
            return problem(request, 403, "This button is stale: reload the handset page.")
        decision = DECISIONS.get(form.get("decision", ""))
        if decision is None:
            return problem(request, 400, "A button approves or denies.")
        outcome = operator.identity.ciba.press(number, auth_req_id, decision)
        if outcome is Press.GONE:
            return problem(request, 404, "This prompt is no longer waiting for an answer.")
        return RedirectResponse(pairing.phone_path(number), status_code=303)

    return router
