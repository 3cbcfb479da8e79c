"""What the portal's routes share: the operator, the portal's records, and how a page answers.

Every answer carries the session cookie (HttpOnly, SameSite=Lax, path ``/my``, Secure over
HTTPS) and every page the session's CSRF token; a subscriber's records are looked up through
:meth:`Portal.own_consent`, which answers None for another subscriber's as for a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ..identity import Consent
from ..identity.capture_pages import application_name
from ..web import page
from ..web.pages import SECURITY_HEADERS
from .objections import Objections
from .one_time_codes import OneTimeCodes
from .receipts import RECEIPT_EVENTS, ReceiptIssuer
from .sessions import COOKIE, PortalSecret, Session, Sessions
from .vocabulary import purpose_words

if TYPE_CHECKING:
    from operators.operator import Operator

PORTAL_ACTOR = "subscriber:portal"
"""The actor of a withdrawal made on the portal, in the consent audit."""


def _when(at: float | None, never: str = "never") -> str:
    if at is None:
        return never
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


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

    def session_of(self, request: Request) -> Session:
        """The browser's session, or a new anonymous one: also when the number it signed in
        with is no longer served here (ported out, or no longer a subscriber), whose records
        are no longer this operator's to show to whoever holds the cookie."""
        session = self.sessions.decode(request.cookies.get(COOKIE))
        if session is None or (
            session.msisdn is not None and self.operator.subscribers.get(session.msisdn) is None
        ):
            return self.sessions.anonymous()
        return session

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

    def revoke(self, consent: Consent) -> bool:
        """Withdraw through the consent store, as ``DELETE /consents/{id}`` does, and tell the
        subscriber's phone; whether it was withdrawn now (a consent withdrawn before is left
        as it is, and the phone is not told again)."""
        if consent.revoked_at is not None:
            return False
        identity = self.operator.identity
        revoked = identity.withdraw_consent(consent.id, actor=PORTAL_ACTOR)
        name = application_name(identity.clients, consent.client_id)
        self.operator.handsets.send(
            consent.msisdn, "consent",
            f"You withdrew your consent to {name} for {purpose_words(consent.purpose).lower()}.",
            consent_id=revoked.id, client_id=consent.client_id, purpose=consent.purpose,
            action="revoked",
        )
        return True

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
                    "name": application_name(identity.clients, consent.client_id),
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
