"""The answer to CAMARA Consent Info: may this application process this subscriber's data?

Called by the ``retrieveStatus`` operation after the gateway admitted the call and the
subscriber was identified. It refuses what the application may not even ask about (scopes it
was not onboarded for, a purpose it may not use), answers a status per API from
:func:`~operators.identity.consent_status.processing_status`, and, when asked and when the
subscriber can change the answer, offers one capture URL on the operator's own page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import OperatorConfig
from ..errors import CamaraError
from ..outbound_hosts import is_loopback
from ..subscriber_base import SubscriberBase
from ..types import Clock
from .clients import Client, ClientRegistry
from .consent import ConsentRecords
from .consent_capture import CaptureCap, CaptureRequest, ConsentCaptures
from .consent_status import (
    CAPTURABLE,
    ProcessingStatus,
    group_by_api,
    processing_status,
)

__all__ = ["ConsentInfo", "ConsentInfoAnswer", "callback_refusal"]

CAPTURE_WINDOW = 3600.0
"""The period over which ``consent_captures_per_hour`` counts an application's captures."""

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_NEVER = frozenset({"javascript", "data", "file", "vbscript", "blob", "about", "ftp", "ws"})
@dataclass(frozen=True, slots=True)
class ConsentInfoAnswer:
    statuses: list[ProcessingStatus]
    capture: CaptureRequest | None


def _forbidden(code: str, message: str) -> CamaraError:
    return CamaraError(403, f"CONSENT_INFO.{code}", message)


def callback_refusal(url: str, client: Client | None) -> str | None:
    """Why ``url`` may not receive the subscriber after a capture (None: it may).

    As the definition asks: ``https``, or ``http`` on a loopback address, or an application's
    own scheme (a native app's deep link); never a scheme that runs or reads something in the
    browser; no user info, no fragment. When the application registered redirect URIs, the
    callback must be on the origin (or the custom scheme) of one of them: an open redirector
    through the operator's page is what this check exists to prevent. ``client`` None: the
    registration is not known here (an aggregator checked it against its application's).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "not a URL"
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme) or scheme in _NEVER:
        return "the scheme is not allowed"
    if parts.username is not None or parts.password is not None:
        return "user information is not allowed"
    if parts.fragment:
        return "a fragment is not allowed"
    if scheme in ("http", "https"):
        if not host:
            return "the host is missing"
        if scheme == "http" and not is_loopback(host):
            return "http is allowed on loopback addresses only"
    elif "." not in scheme and len(scheme) < 3:
        return "the scheme is not allowed"
    registered = [urlsplit(u) for u in client.redirect_uris] if client is not None else []
    if registered and not any(
        r.scheme.lower() == scheme and (r.hostname, r.port) == (host, port) for r in registered
    ):
        return "not on an origin the application registered"
    return None


class ConsentInfo:
    """Consent Info for one operator: its clients, purposes, consents and capture pages."""

    def __init__(
        self,
        config: OperatorConfig,
        clients: ClientRegistry,
        consents: ConsentRecords,
        subscribers: SubscriberBase,
        captures: ConsentCaptures,
        *,
        capture_url: str,
        clock: Clock,
    ) -> None:
        self.config = config
        self.clients = clients
        self.consents = consents
        self.subscribers = subscribers
        self.captures = captures
        self.capture_url = capture_url.rstrip("/")
        """The capture page's URL; a capture's id is appended."""
        self.clock = clock

    def retrieve(
        self,
        client_id: str,
        msisdn: str,
        scopes: list[str],
        purpose: str,
        *,
        request_capture: bool,
        callback_url: str | None,
        party: str | None = None,
    ) -> ConsentInfoAnswer:
        """The status for ``client_id``'s call; consents and captures are those of ``party``
        (the application an aggregator client acts for; by default the client itself), while
        what may be asked is what ``client_id`` was onboarded for."""
        party = party or client_id
        client = self.clients.get(client_id)
        policy = self.config.purpose(purpose)
        if (
            client is None
            or policy is None
            or policy.purpose not in client.purposes
            or not set(scopes) <= client.scopes
        ):
            raise _forbidden(
                "NOT_ALLOWED_SCOPES_PURPOSE",
                "The requested scope(s) and Purpose combination is not allowed for this API "
                "Consumer.",
            )
        if callback_url is not None:
            # Through an aggregator the application's registration is the aggregator's to check.
            reason = callback_refusal(callback_url, client if party == client_id else None)
            if reason is not None:
                raise _forbidden("INVALID_CALLBACK_URL", f"The provided callback URL is invalid: "
                                                         f"{reason}.")
        subscriber = self.subscribers.get(msisdn)
        if subscriber is None:
            raise CamaraError(404, "IDENTIFIER_NOT_FOUND", "Phone number not found.")
        now = self.clock()
        mine = [c for c in self.consents.for_subscriber(msisdn)
                if c.client_id == party and c.purpose == policy.purpose]
        captures = [c.as_status_fact()
                    for c in self.captures.of(msisdn, party, policy.purpose)]
        statuses = [
            processing_status(policy, subscriber, group, mine, captures, now)
            for group in group_by_api(scopes)
        ]
        capture = None
        if request_capture:
            capture = self._capture(party, msisdn, policy.purpose, statuses, callback_url)
        return ConsentInfoAnswer(statuses, capture)

    def _capture(
        self,
        client_id: str,
        msisdn: str,
        purpose: str,
        statuses: list[ProcessingStatus],
        callback_url: str | None,
    ) -> CaptureRequest | None:
        """One capture for every status the subscriber can change, within the frequency cap."""
        open_items = [s for s in statuses if not s.valid and s.reason in CAPTURABLE]
        if not open_items:
            return None
        scopes = tuple(sorted({scope for s in open_items for scope in s.scopes}))
        cap = CaptureCap(self.clock() - CAPTURE_WINDOW, self.config.consent_captures_per_hour)
        capture = self.captures.offer_capped(client_id, msisdn, purpose, scopes, callback_url,
                                             cap=cap)
        if capture is None:
            raise _forbidden(
                "CAPTURE_FREQUENCY_EXCEEDED",
                "The frequency of consent capture requests has been exceeded. Please try again "
                "later.",
            )
        return capture

    def url_of(self, capture: CaptureRequest) -> str:
        return f"{self.capture_url}/{capture.id}"
