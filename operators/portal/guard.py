"""Who is at the developer portal: the signed-in developer, CSRF-checked forms, the admin.

Every page of ``/portal`` (this package's and the pages other modules add) asks the
:class:`PortalGuard`: :meth:`PortalGuard.require` for the signed-in developer (else
:class:`SignInRequired`, a 303 to the sign-in page), :meth:`PortalGuard.form` for a POSTed
form whose ``csrf`` field matches the session (else :class:`FormRefused`), and
:meth:`PortalGuard.page` to render a template extending ``portal_base.html`` with the
developer, their organisation and the CSRF token in its context, setting the session cookie
when the request started one. The exceptions are turned into pages by the handlers
:func:`operators.portal.router.install_portal_handlers` puts on the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from ..admin_auth import is_admin as _is_admin
from ..request_body import BodyRefusedError, ThreatLimits, read_body
from ..web import page
from .accounts import AccountError, DeveloperAccounts
from .developers import Developer
from .login_throttle import LoginThrottle
from .sessions import COOKIE, CookieSession, DeveloperSessions, MemberNotActiveError

if TYPE_CHECKING:
    from .host import PortalHost

FORM_LIMITS = ThreatLimits(max_body_bytes=32 * 1024,
                           allowed_content_types=("application/x-www-form-urlencoded",))
MAX_FIELDS = 64
TOUCH_EVERY = 60.0
"""``last_seen_at`` is written at most once a minute per developer, not on every page."""
_STATE = "ogsim_dev_session"
_NEW = "ogsim_dev_session_new"
_DEVELOPER = "ogsim_dev_developer"


class SignInRequired(Exception):  # noqa: N818 (a condition the router answers, not a fault)
    """The page needs a signed-in developer: answered with a 303 to ``/portal/sign-in``."""


class FormRefused(Exception):  # noqa: N818
    """A form the portal will not act on: answered with a page naming ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdminRequired(Exception):  # noqa: N818
    """The page needs the operator admin credential: a 401 asking for HTTP Basic."""


class PortalGuard:
    """Sessions, CSRF and sign-in of the developer portal, for every router under ``/portal``."""

    def __init__(self, host: PortalHost, accounts: DeveloperAccounts, *,
                 throttle: LoginThrottle | None = None) -> None:
        self.host = host
        self.accounts = accounts
        self.sessions = DeveloperSessions(host.db, clock=host.clock)
        # in the party's database, not this process: replicas share the count of failures
        self.throttle = (throttle if throttle is not None
                         else LoginThrottle(host.db, clock=host.clock))
        self.secure = urlsplit(host.origin).scheme == "https"

    # -- the session ---------------------------------------------------------------------------

    def _session(self, request: Request) -> CookieSession | None:
        """The verified session of this request (read once per request)."""
        if not hasattr(request.state, _STATE):
            setattr(request.state, _STATE, self.sessions.decode(request.cookies.get(COOKIE)))
        session: CookieSession | None = getattr(request.state, _STATE)
        return session

    def _session_or_new(self, request: Request) -> CookieSession:
        session = self._session(request)
        if session is None:
            session = self.sessions.anonymous()
            setattr(request.state, _STATE, session)
            setattr(request.state, _NEW, True)
        return session

    def developer(self, request: Request) -> Developer | None:
        """The signed-in, active developer, or None."""
        if hasattr(request.state, _DEVELOPER):
            cached: Developer | None = getattr(request.state, _DEVELOPER)
            return cached
        session = self._session(request)
        developer = None
        if session is not None and session.developer_id is not None:
            developer = self.accounts.developer(session.developer_id)
            if developer is not None and not developer.active:
                developer = None
            if developer is not None and self.host.clock() - developer.last_seen_at > TOUCH_EVERY:
                self.accounts.touch(developer.developer_id)
        setattr(request.state, _DEVELOPER, developer)
        return developer

    def require(self, request: Request) -> Developer:
        """The signed-in developer; else :class:`SignInRequired`."""
        developer = self.developer(request)
        if developer is None:
            raise SignInRequired()
        return developer

    def csrf_token(self, request: Request) -> str:
        """The token every form of this session carries in its ``csrf`` field."""
        return self.sessions.csrf_token(self._session_or_new(request))

    async def form(self, request: Request) -> dict[str, str]:
        """A bounded urlencoded form whose ``csrf`` matches the session; else FormRefused.

        Each field may appear once (give checkboxes distinct names, e.g. ``api:sim-swap``).
        """
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise FormRefused(400, "This page takes a form.")
        try:
            body = await read_body(request, FORM_LIMITS)
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=MAX_FIELDS)
        except BodyRefusedError as refusal:
            raise FormRefused(refusal.status, "The form could not be read: "
                                              f"{refusal.message}") from refusal
        except (UnicodeDecodeError, ValueError) as error:
            raise FormRefused(400, "The form could not be read.") from error
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form:
                raise FormRefused(400, f"The field {name!r} is repeated.")
            form[name] = value
        session = self._session(request)
        if session is None or not self.sessions.csrf_ok(session, form.get("csrf")):
            raise FormRefused(403, "This form has expired or did not come from this portal. "
                                   "Go back, reload the page and try again.")
        signed_in: Developer | None = getattr(request.state, _DEVELOPER, None)
        if signed_in is not None:
            # The body may arrive seconds after the handler found its developer: one cut off
            # meanwhile (the kill switch) gets nothing from the form.
            now = self.accounts.developer(signed_in.developer_id)
            if now is None or not now.active:
                setattr(request.state, _DEVELOPER, None)
                raise SignInRequired()
        return form

    def sign_in(self, response: Response, developer: Developer, *,
                issuer: str | None = None) -> None:
        """Start a new session (new ``sid``) for ``developer`` and set its cookie; ``issuer``
        is the identity provider that vouched for them (:class:`IssuerNotTrustedError` when
        their organisation no longer names it). A member deactivated while their sign-in ran
        gets no session: :class:`AccountError` (403), which the portal shows as a page."""
        try:
            session = self.sessions.start(developer.developer_id, issuer)
        except MemberNotActiveError:
            raise AccountError(403, "account", "This account is no longer active.") from None
        self.accounts.touch(developer.developer_id)
        self._set_cookie(response, session)

    def sign_out(self, request: Request, response: Response) -> None:
        """End the session's row (the cookie is worthless from now on) and drop the cookie."""
        session = self._session(request)
        if session is not None and session.developer_id is not None:
            self.sessions.end(session)
        setattr(request.state, _STATE, None)
        setattr(request.state, _DEVELOPER, None)
        response.delete_cookie(COOKIE, path="/portal", httponly=True, samesite="lax",
                               secure=self.secure)

    def end_sessions(self, developer_id: str) -> int:
        """Sign a developer out everywhere (the kill switch calls it)."""
        return self.sessions.end_all(developer_id)

    def end_provider_sessions(self, request: Request, org_id: str, trusted: str | None) -> int:
        """Sign out the organisation's members whom a provider other than ``trusted`` signed
        in (any provider, for None), except the admin making the change in ``request``."""
        return self.sessions.end_vouched_elsewhere(org_id, trusted, keep=self._session(request))

    def _set_cookie(self, response: Response, session: CookieSession) -> None:
        max_age = max(1, int(session.expires_at - self.host.clock()))
        response.set_cookie(COOKIE, self.sessions.encode(session), max_age=max_age,
                            path="/portal", httponly=True, samesite="lax", secure=self.secure)

    def keep(self, request: Request, response: Response) -> Response:
        """Set the cookie of a session this request started (an anonymous visitor's first
        form); other responses leave the browser's cookie as it is."""
        if getattr(request.state, _NEW, False):
            session = self._session(request)
            if session is not None:
                self._set_cookie(response, session)
        return response

    # -- the admin -------------------------------------------------------------------------

    def is_admin(self, request: Request) -> bool:
        """Whether the request carries the operator admin credential (HTTP Basic)."""
        return _is_admin(request.headers.get("authorization"), self.host.config.admin_secret)

    def require_admin(self, request: Request) -> None:
        if not self.is_admin(request):
            raise AdminRequired()

    # -- pages ---------------------------------------------------------------------------------

    def context(self, request: Request) -> dict[str, Any]:
        """What ``portal_base.html`` reads: the party, the developer, their organisation, CSRF."""
        developer = self.developer(request)
        organisation = (self.accounts.organisation(developer.org_id)
                        if developer is not None else None)
        return {
            "operator_name": f"{self.host.config.display_name} developer portal",
            "party_kind": self.host.kind,
            "developer": developer,
            "organisation": organisation,
            "csrf": self.csrf_token(request),
            "nav_path": request.url.path,
        }

    page_context = context

    def page(self, request: Request, name: str, context: dict[str, Any] | None = None,
             status_code: int = 200) -> HTMLResponse:
        """Render ``name`` (a template extending ``portal_base.html``) for this request."""
        response = page(request, name, {**self.context(request), **(context or {})},
                        status_code=status_code)
        self.keep(request, response)
        return response
