"""Sign-up, sign-in, sign-out, invitations and the home page of ``/portal``.

Every POST is CSRF-checked by :meth:`PortalGuard.form`; sign-in is throttled per email and per
client address (429 with ``Retry-After``); a wrong password and an unknown email get the same
answer. Forms that fail re-render with the message naming the field and what was typed (never
the password).
"""

from __future__ import annotations

import functools
import math

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from ..web.pages import SECURITY_HEADERS
from .accounts import AccountError, CorporateSignInOnlyError
from .developer_portal import DeveloperPortal
from .email_confirmation import PATH as CONFIRM_PATH
from .login_throttle import Attempt, LoginThrottle
from .notices import notice_of, with_notice
from .password_links import PATH as PASSWORD_PATH
from .password_links import PasswordLinks
from .password_reset import ASKS_PER_ADDRESS, PasswordResets
from .password_work import PasswordsBusyError

PREFIX = "/portal"
FORGOT_PATH = "/password/forgot"


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def build_account_router(portal: DeveloperPortal) -> APIRouter:
    """The routes a developer signs up, in and out with, and the home page."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    guard, accounts, host = portal.guard, portal.accounts, portal.host
    confirmations = portal.confirmations
    links = PasswordLinks(host.db, accounts, host.clock)
    resets = PasswordResets(links, accounts, portal.outbox, origin=host.origin,
                            sender=host.config.display_name)
    # per client address, whoever the addresses asked about are: the per-member interval
    # alone lets one client who knows many members' addresses fill the outbox
    reset_asks = LoginThrottle(host.db, clock=host.clock, limit=ASKS_PER_ADDRESS,
                               scope="password-reset:")
    off_loop = portal.passwords.run

    @router.get("", name="portal_home")
    def home(request: Request) -> Response:
        developer = guard.require(request)
        organisation = accounts.organisation(developer.org_id)
        members = accounts.members(developer.org_id)
        return guard.page(request, "portal_home.html", {
            "heading": "Applications",
            "applications": accounts.applications(developer.org_id),
            "creators": {m.developer_id: m.name for m in members},
            "members": members,
            "organisation": organisation,
            "token_endpoint": host.identity.token_endpoint,
            "api_root": host.api_root,
            "notice": notice_of(request.query_params),
        })

    @router.get("/")
    def home_slash() -> Response:
        return see_other(PREFIX)

    # -- sign-up ---------------------------------------------------------------------------

    @router.get("/sign-up")
    def sign_up_form(request: Request) -> Response:
        if guard.developer(request) is not None:
            return see_other(PREFIX)
        return guard.page(request, "portal_sign_up.html",
                          {"heading": "Create a developer account", "values": {}})

    @router.post("/sign-up")
    async def sign_up(request: Request) -> Response:
        form = await guard.form(request)
        try:
            developer = await off_loop(accounts.sign_up, form.get("organisation", ""),
                                       form.get("email", ""), form.get("name", ""),
                                       form.get("password", ""))
        except AccountError as refused:
            values = {k: v for k, v in form.items() if k in ("organisation", "name", "email")}
            return with_retry_after(guard.page(request, "portal_sign_up.html", {
                "heading": "Create a developer account", "values": values,
                "error": refused.message, "error_field": refused.field,
            }, status_code=refused.status), refused)
        confirmations.send(developer)
        response = see_other(PREFIX)
        guard.sign_in(response, developer)
        return response

    # -- sign-in and sign-out ------------------------------------------------------------------

    @router.get("/sign-in")
    def sign_in_form(request: Request) -> Response:
        if guard.developer(request) is not None:
            return see_other(PREFIX)
        return guard.page(request, "portal_sign_in.html", {"heading": "Sign in"})

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await guard.form(request)
        email = form.get("email", "").strip()[:254]
        address = request.client.host if request.client else None
        try:
            portal.passwords.check_room()  # before the throttle counts the attempt
        except PasswordsBusyError as busy:
            return with_retry_after(guard.page(request, "portal_sign_in.html", {
                "heading": "Sign in", "email": email, "error": busy.message,
            }, status_code=busy.status), busy)
        attempt = guard.throttle.attempt(email, address)  # counted as failed until it is not
        if not isinstance(attempt, Attempt):
            seconds = math.ceil(attempt)
            throttled = guard.page(request, "portal_sign_in.html", {
                "heading": "Sign in", "email": email,
                "error": f"Too many failed sign-ins. Try again in {_minutes(seconds)}.",
            }, status_code=429)
            throttled.headers["Retry-After"] = str(seconds)
            return throttled
        try:
            developer = await off_loop(accounts.authenticate, email, form.get("password", ""))
        except CorporateSignInOnlyError as refused:  # the right password: no guess to count
            guard.throttle.succeeded(email, attempt)
            return guard.page(request, "portal_sign_in.html", {
                "heading": "Sign in", "email": email, "error": refused.message,
            }, status_code=refused.status)
        if developer is None:
            return guard.page(request, "portal_sign_in.html", {
                "heading": "Sign in", "email": email,
                "error": "Wrong email or password (or the account is no longer active).",
            }, status_code=401)
        guard.throttle.succeeded(email, attempt)
        response = see_other(PREFIX)
        guard.sign_in(response, developer)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await guard.form(request)
        response = see_other(f"{PREFIX}/sign-in")
        guard.sign_out(request, response)
        return response

    # -- invitations ---------------------------------------------------------------------------

    @router.post("/invitations")
    async def invite(request: Request) -> Response:
        developer = guard.require(request)
        await guard.form(request)
        code = accounts.invite(developer.org_id, by=developer.developer_id)
        link = f"{host.origin}{PREFIX}/join?org={developer.org_id}&code={code}"
        return guard.page(request, "portal_invite.html",
                          {"heading": "Invite a colleague", "link": link})

    @router.get("/join")
    def join_form(request: Request) -> Response:
        org_id = request.query_params.get("org", "")[:64]
        organisation = accounts.organisation(org_id)
        if organisation is None:
            raise AccountError(404, "invitation", "This invitation is not for any organisation.")
        return guard.page(request, "portal_join.html", {
            "heading": f"Join {organisation.name}", "org_id": org_id,
            "org_name": organisation.name, "code": request.query_params.get("code", "")[:64],
            "values": {},
        })

    @router.post("/join")
    async def join(request: Request) -> Response:
        form = await guard.form(request)
        org_id = form.get("org", "")
        organisation = accounts.organisation(org_id)
        if organisation is None:
            raise AccountError(404, "invitation", "This invitation is not for any organisation.")
        try:
            developer = await off_loop(
                functools.partial(accounts.join, invitation=form.get("code", "")), org_id,
                form.get("email", ""), form.get("name", ""), form.get("password", ""))
        except AccountError as refused:
            return with_retry_after(guard.page(request, "portal_join.html", {
                "heading": f"Join {organisation.name}", "org_id": org_id,
                "org_name": organisation.name, "code": form.get("code", ""),
                "values": {k: v for k, v in form.items() if k in ("name", "email")},
                "error": refused.message,
            }, status_code=refused.status), refused)
        confirmations.send(developer)
        response = see_other(PREFIX)
        guard.sign_in(response, developer)
        return response

    # -- address confirmation ------------------------------------------------------------------

    @router.get(CONFIRM_PATH.removeprefix(PREFIX))
    def confirm_email_form(request: Request) -> Response:
        code = request.query_params.get("code", "")[:64]
        try:
            holder = confirmations.holder(code)
        except AccountError as refused:
            return guard.page(request, "portal_confirm_email.html", {
                "heading": "Confirm your address", "error": refused.message,
            }, status_code=refused.status)
        return guard.page(request, "portal_confirm_email.html", {
            "heading": "Confirm your address", "holder": holder, "code": code,
        })

    @router.post(CONFIRM_PATH.removeprefix(PREFIX))
    async def confirm_email(request: Request) -> Response:
        form = await guard.form(request)
        try:
            confirmed = confirmations.confirm(form.get("code", "")[:64])
        except AccountError as refused:
            return guard.page(request, "portal_confirm_email.html", {
                "heading": "Confirm your address", "error": refused.message,
            }, status_code=refused.status)
        return guard.page(request, "portal_confirm_email.html", {
            "heading": "Address confirmed", "confirmed": confirmed,
        })

    @router.post("/email/confirmation")
    async def send_confirmation(request: Request) -> Response:
        developer = guard.require(request)
        await guard.form(request)
        confirmations.send(developer)
        return see_other(with_notice(PREFIX, "confirmation-sent"))

    # -- set-a-password links (given when corporate sign-in stops) ---------------------------

    def password_page(request: Request, code: str, *, status: int = 200,
                      error: str | None = None) -> Response:
        try:
            holder = links.holder(code)
        except AccountError as refused:
            return guard.page(request, "portal_set_password.html", {
                "heading": "Set a password", "error": refused.message, "holder": None,
            }, status_code=refused.status)
        # not "developer": that is who is signed in, for portal_base.html's navigation
        return guard.page(request, "portal_set_password.html", {
            "heading": "Set a password", "holder": holder, "code": code, "error": error,
            "reset": links.mailed(code),
        }, status_code=status)

    @router.get(FORGOT_PATH)
    def forgot_password_form(request: Request) -> Response:
        return guard.page(request, "portal_forgot_password.html",
                          {"heading": "Forgot your password?"})

    @router.post(FORGOT_PATH)
    async def forgot_password(request: Request) -> Response:
        form = await guard.form(request)
        email = form.get("email", "").strip()[:254]
        address = request.client.host if request.client else None
        counted = reset_asks.attempt(None, address)
        if not isinstance(counted, Attempt):
            seconds = math.ceil(counted)
            busy = guard.page(request, "portal_forgot_password.html", {
                "heading": "Forgot your password?", "email": email,
                "error": f"Too many reset requests from your address. "
                         f"Try again in {_minutes(seconds)}.",
            }, status_code=429)
            busy.headers["Retry-After"] = str(seconds)
            return busy
        # the same answer whoever the address belongs to, if anyone, and as soon: the mail
        # (a lookup, and for a member a link and a message written) goes after the answer
        answer = guard.page(request, "portal_forgot_password.html", {
            "heading": "Forgot your password?", "asked": email,
        })
        answer.background = BackgroundTask(resets.ask, email)
        return answer

    @router.get(PASSWORD_PATH.removeprefix(PREFIX))
    def set_password_form(request: Request) -> Response:
        return password_page(request, request.query_params.get("code", "")[:64])

    @router.post(PASSWORD_PATH.removeprefix(PREFIX))
    async def set_password(request: Request) -> Response:
        form = await guard.form(request)
        code = form.get("code", "")[:64]
        try:
            developer = await off_loop(links.redeem, code, form.get("password", ""))
        except AccountError as refused:
            if refused.field == "code":  # the link's own page says what is wrong with it
                return password_page(request, code)
            return with_retry_after(
                password_page(request, code, status=refused.status, error=refused.message),
                refused)
        guard.end_sessions(developer.developer_id)  # a new password ends the old sessions
        response = see_other(PREFIX)
        guard.sign_in(response, developer)
        return response

    return router


def with_retry_after(response: Response, refused: AccountError) -> Response:
    """``response``, with ``Retry-After`` when it answers busy password threads."""
    if isinstance(refused, PasswordsBusyError):
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
