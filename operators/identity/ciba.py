"""CIBA in poll mode (OpenID CIBA Core 1.0, CAMARA profile): ``/bc-authorize`` then polling.

The subscriber's handset is simulated: its behaviour (approve, deny, never, after ``delay``
seconds) is read when the prompt is sent and its answer appears on the injected clock, so a
test or a SimPy run advances time instead of sleeping. An *interactive* handset answers with
the button a person pressed on the handset page (:meth:`CibaService.press`), kept on the
request's row so every data centre sharing the database sees it. A prompt is only sent when
the purpose's legal basis is consent and no active consent already covers the request.

``/bc-authorize`` tells a client nothing about the number (CAMARA
IdentityAndConsentManagement #258): an unknown number, a subscriber who objected to the
purpose and one who will approve all get an ``auth_req_id``, after the same reads and the same
write; the refused ones end at poll time as a handset denial does (``access_denied``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..config import OperatorConfig
from ..errors import OAuthError
from ..storage import Database
from ..subscriber import HandsetAnswer, HandsetBehaviour, HandsetMode, Subscriber
from ..types import Clock
from .clients import Client
from .consent import ConsentStore
from .handset import Verdict, verdict
from .purposes import objects_to, parse_scope
from .subjects import OPERATOR_TOKEN, SubjectResolver, UnknownSubjectError
from .tokens import IssuedToken, TokenService
from .types import GrantType

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_ciba_requests (
    auth_req_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    consent_party TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    scope TEXT NOT NULL,
    binding_message TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    interval REAL NOT NULL,
    last_poll_at REAL NOT NULL,
    prompt INTEGER NOT NULL,
    handset TEXT NOT NULL,
    status TEXT NOT NULL,
    pressed TEXT
);
CREATE INDEX IF NOT EXISTS identity_ciba_requests_by_number
    ON identity_ciba_requests (msisdn, status);
"""

REFUSED = HandsetBehaviour(answer=HandsetAnswer.DENY, delay=0.0).model_dump_json()
"""The scripted handset behind a request that can never be approved (unknown number, an
objection): it denies on the first poll, as a subscriber's own denial is answered."""

SLOW_DOWN_STEP = 5
MAX_REQUESTED_EXPIRY = 3600
"""The largest ``requested_expiry`` accepted (seconds); the answer never exceeds the
operator's own ``ciba_request`` lifetime."""
_BENEFICIARY = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9._:-]{1,64}$")
"""An application an aggregator acts for: a letter or digit at least, so that no ``.`` or
``..`` becomes a path segment of the consent portal's links (a browser drops those)."""
MAX_BINDING_MESSAGE = 64
"""Characters of a ``binding_message`` shown on the handset (CIBA Core §7.1: short, plain)."""
_SECONDS = re.compile(r"^[1-9][0-9]{0,3}$")


def requested_expiry(value: str | None, lifetime: int) -> int:
    """CIBA Core §7.1 ``requested_expiry``: a positive integer of seconds, at most
    :data:`MAX_REQUESTED_EXPIRY`; the request lives the shorter of it and ``lifetime``."""
    if value is None:
        return lifetime
    if not _SECONDS.match(value) or int(value) > MAX_REQUESTED_EXPIRY:
        raise OAuthError("invalid_request", "requested_expiry must be a positive integer of"
                         f" seconds, at most {MAX_REQUESTED_EXPIRY}")
    return min(int(value), lifetime)


def binding_message(value: str | None) -> str | None:
    """CIBA Core §7.1 ``binding_message``, shown on the subscriber's handset: at most
    :data:`MAX_BINDING_MESSAGE` printable characters. Line breaks, control and bidi
    formatting characters (which can reverse what the subscriber reads) are refused with
    ``invalid_binding_message`` (§13), as is a message too long to be a code to compare."""
    if value is None or value == "":
        return None
    if len(value) > MAX_BINDING_MESSAGE or not value.isprintable():
        raise OAuthError("invalid_binding_message", f"binding_message must be at most"
                         f" {MAX_BINDING_MESSAGE} printable characters on one line")
    return value


def consent_party(client_id: str, on_behalf_of: str | None) -> str:
    """Whom a subscriber's consent is given to: the client, or an application it acts for.

    An aggregator is one client for many applications; ``on_behalf_of`` names the application,
    so a consent given to one application through the aggregator never serves another.
    """
    if on_behalf_of is None or on_behalf_of == "":
        return client_id
    if not _BENEFICIARY.match(on_behalf_of):
        raise OAuthError("invalid_request", "on_behalf_of must be an application identifier")
    return f"{client_id}/{on_behalf_of}"


class Press(StrEnum):
    """What became of a button pressed on the handset page."""

    RECORDED = "recorded"
    ALREADY_ANSWERED = "already-answered"
    """Pressed before (the first press stands) or already redeemed: nothing changes."""
    GONE = "gone"
    """No such pending prompt on this number's interactive handset (or it expired)."""


@dataclass(frozen=True)
class Prompt:
    """A consent prompt waiting on an interactive handset, as the handset page shows it."""

    auth_req_id: str
    client_id: str
    consent_party: str
    scope: tuple[str, ...]
    binding_message: str | None
    created_at: float
    expires_at: float
    pressed: Verdict | None


@dataclass(frozen=True)
class BackchannelResponse:
    auth_req_id: str
    expires_in: int
    interval: int

    def response(self) -> dict[str, Any]:
        return {"auth_req_id": self.auth_req_id, "expires_in": self.expires_in,
                "interval": self.interval}


class CibaService:
    """Backchannel authentication requests of one operator, persisted in its database."""

    def __init__(
        self,
        config: OperatorConfig,
        db: Database,
        *,
        subjects: SubjectResolver,
        consents: ConsentStore,
        tokens: TokenService,
        clock: Clock,
    ) -> None:
        self.config = config
        self.db = db
        self.subjects = subjects
        self.consents = consents
        self.tokens = tokens
        self.clock = clock
        self.told_who_is_served: Callable[[str], bool] = lambda client_id: False
        """Which clients are told ``unknown_user_id`` for a number not served here: none by
        default; a federation member tells its partners, whose Telco Finder already says who
        serves what, so an aggregator's stale routing falls back to a deeper search (the
        decision :mod:`federation.discovery_fallback` makes, live and simulated)."""
        db.ensure_schema(SCHEMA)
        # a database from before interactive handsets lacks ``pressed``
        db.ensure_column("identity_ciba_requests", "pressed", "TEXT")
        db.ensure_column("identity_ciba_requests", "by_network", "INTEGER NOT NULL DEFAULT 0")

    def start(self, client: Client, form: Mapping[str, str]) -> BackchannelResponse:
        """Handle an authenticated ``/bc-authorize`` request."""
        if GrantType.CIBA not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use CIBA")
        if form.get("id_token_hint") or form.get("login_hint_token"):
            raise OAuthError("invalid_request", "login_hint is the only hint allowed (CAMARA)")
        hint = form.get("login_hint")
        if not hint:
            raise OAuthError("invalid_request", "login_hint is required")
        lifetimes = self.config.lifetimes
        expires_in = requested_expiry(form.get("requested_expiry"), lifetimes.ciba_request)
        request = parse_scope(self.config, client, form.get("scope"), purpose_required=True)
        assert request.purpose is not None
        party = consent_party(client.client_id, form.get("on_behalf_of"))
        message = binding_message(form.get("binding_message"))
        # From here on, every request does the same work whoever the hint names, so that
        # neither the answer nor its latency tells whether the number is served here or
        # whether its subscriber objected (CAMARA IdentityAndConsentManagement #258).
        subscriber = self._subscriber(hint)
        if subscriber is None and self.told_who_is_served(client.client_id):
            raise OAuthError("unknown_user_id", "this operator does not serve that number")
        refused = subscriber is None or objects_to(request.purpose, subscriber)
        msisdn = subscriber.msisdn if subscriber is not None else hint
        existing = request.needs_consent and self.consents.find_active(
            msisdn, party, request.purpose.purpose, request.api_scopes
        ) is not None
        prompt = refused or (request.needs_consent and not existing)
        handset = REFUSED if refused or subscriber is None else (
            subscriber.handset.model_dump_json())
        now = self.clock()
        auth_req_id = secrets.token_urlsafe(24)
        self.db.insert(
            "INSERT INTO identity_ciba_requests (auth_req_id, client_id, consent_party, msisdn,"
            " scope, binding_message, created_at, expires_at, interval, last_poll_at, prompt,"
            " handset, status, by_network)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (auth_req_id, client.client_id, party, msisdn, " ".join(request.scopes),
             message, now, now + expires_in,
             lifetimes.ciba_interval, now, int(prompt), handset,
             int(hint.startswith(OPERATOR_TOKEN))),
        )
        return BackchannelResponse(auth_req_id, expires_in, lifetimes.ciba_interval)

    def _subscriber(self, hint: str) -> Subscriber | None:
        """Whom the hint names, or None when nobody here; only a malformed hint is an error
        (its shape is the client's own mistake and says nothing about the subscriber base)."""
        try:
            return self.subjects.resolve(hint)
        except UnknownSubjectError as error:
            if error.malformed:
                raise OAuthError("invalid_request", str(error)) from error
            return None

    def poll(self, client: Client, form: Mapping[str, str]) -> IssuedToken:
        """Handle a token request with the CIBA grant: pending, slow down, denied, or a token."""
        if GrantType.CIBA not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use CIBA")
        auth_req_id = form.get("auth_req_id")
        if not auth_req_id:
            raise OAuthError("invalid_request", "auth_req_id is required")
        with self.db.transaction():
            outcome = self._poll(client, auth_req_id)
        if isinstance(outcome, OAuthError):
            raise outcome
        return outcome

    def _poll(self, client: Client, auth_req_id: str) -> IssuedToken | OAuthError:
        """One poll inside one transaction; an error is returned so its state change commits."""
        row = self.db.one("SELECT * FROM identity_ciba_requests WHERE auth_req_id = ?",
                          (auth_req_id,))
        if row is None or row["client_id"] != client.client_id:
            return OAuthError("invalid_grant", "unknown auth_req_id")
        if row["status"] == "issued":
            return OAuthError("invalid_grant", "auth_req_id already redeemed")
        now = self.clock()
        if now >= row["expires_at"]:
            return OAuthError("expired_token", "auth_req_id expired")
        if row["status"] == "denied":
            return OAuthError("access_denied", "the subscriber denied the request")
        if now - row["last_poll_at"] < row["interval"]:
            self.db.execute(
                "UPDATE identity_ciba_requests SET interval = interval + ?, last_poll_at = ?"
                " WHERE auth_req_id = ?", (SLOW_DOWN_STEP, now, auth_req_id))
            return OAuthError("slow_down", f"wait {row['interval'] + SLOW_DOWN_STEP:.0f} s"
                              " between polls")
        self.db.execute("UPDATE identity_ciba_requests SET last_poll_at = ?"
                        " WHERE auth_req_id = ?", (now, auth_req_id))
        answer = Verdict.APPROVED
        if row["prompt"]:
            behaviour = HandsetBehaviour.model_validate(json.loads(row["handset"]))
            pressed = Verdict(row["pressed"]) if row["pressed"] else None
            answer = verdict(behaviour, row["created_at"], now, pressed)
        if answer is Verdict.PENDING:
            return OAuthError("authorization_pending", "waiting for the subscriber")
        if answer is Verdict.DENIED:
            self.db.execute("UPDATE identity_ciba_requests SET status = 'denied'"
                            " WHERE auth_req_id = ?", (auth_req_id,))
            return OAuthError("access_denied", "the subscriber denied the request")
        return self._approve(client, row, auth_req_id)

    def _approve(self, client: Client, row: Any, auth_req_id: str) -> IssuedToken | OAuthError:
        request = parse_scope(self.config, client, row["scope"], purpose_required=True)
        assert request.purpose is not None
        consent_id = None
        if request.needs_consent:
            consent = self.consents.find_active(
                row["msisdn"], row["consent_party"], request.purpose.purpose, request.api_scopes)
            if consent is None and not row["prompt"]:
                return OAuthError("access_denied", "consent was revoked meanwhile")
            if consent is None:
                consent = self.consents.grant(
                    row["msisdn"], row["consent_party"], request.purpose.purpose,
                    request.api_scopes, actor="subscriber:handset",
                )
            consent_id = consent.id
        issued = self.tokens.issue(
            client.client_id, request, grant=GrantType.CIBA, msisdn=row["msisdn"],
            grant_ref=f"ciba:{auth_req_id}", consent_id=consent_id, auth_time=self.clock(),
            by_network=bool(row["by_network"]), consent_party=row["consent_party"],
        )
        lapsed = self.tokens.refusal_of(issued)
        if lapsed is not None:  # e.g. the subscriber opted out after the request started
            self.tokens.revoke_jti(issued.jti)
            self.db.execute("UPDATE identity_ciba_requests SET status = 'denied'"
                            " WHERE auth_req_id = ?", (auth_req_id,))
            return OAuthError("access_denied", f"the grant no longer stands: {lapsed.description}")
        self.db.execute("UPDATE identity_ciba_requests SET status = 'issued'"
                        " WHERE auth_req_id = ?", (auth_req_id,))
        return issued

    # -- the interactive handset ------------------------------------------------------------

    def prompts(self, msisdn: str) -> list[Prompt]:
        """Prompts on ``msisdn``'s interactive handset not yet redeemed or expired, newest
        first; a scripted handset answers by itself, so none of its prompts is shown."""
        now = self.clock()
        rows = self.db.all(
            "SELECT * FROM identity_ciba_requests WHERE msisdn = ? AND status = 'pending'"
            " AND prompt = 1 AND expires_at > ? AND json_extract(handset, '$.mode') = ?"
            " ORDER BY created_at DESC LIMIT 20",
            (msisdn, now, HandsetMode.INTERACTIVE.value),
        )
        return [
            Prompt(r["auth_req_id"], r["client_id"], r["consent_party"],
                   tuple(r["scope"].split()), r["binding_message"], r["created_at"],
                   r["expires_at"], Verdict(r["pressed"]) if r["pressed"] else None)
            for r in rows
        ]

    def press(self, msisdn: str, auth_req_id: str, answer: Verdict) -> Press:
        """Record the button pressed on ``msisdn``'s handset for one prompt; the first press
        stands (pressing again, or the other button, changes nothing), so a double click or
        two browser tabs cannot flip a decision the application may already have collected."""
        if answer is Verdict.PENDING:
            raise ValueError("a handset button approves or denies")
        with self.db.transaction():
            row = self.db.one("SELECT * FROM identity_ciba_requests WHERE auth_req_id = ?",
                              (auth_req_id,))
            if (row is None or row["msisdn"] != msisdn or not row["prompt"]
                    or not _interactive(row["handset"])):
                return Press.GONE
            if row["pressed"] or row["status"] != "pending":
                return Press.ALREADY_ANSWERED
            if self.clock() >= row["expires_at"]:
                return Press.GONE
            self.db.execute("UPDATE identity_ciba_requests SET pressed = ? WHERE auth_req_id = ?",
                            (answer.value, auth_req_id))
        return Press.RECORDED


    def withdraw(self, msisdn: str, party: str, purpose: str | None = None) -> int:
        """Deny ``msisdn``'s pending requests from ``party`` for ``purpose`` (for any purpose
        when None): a consent is
        granted when the application collects an approved request, so without this a
        subscriber who approved on the handset and then withdrew their consent to that
        application would see it granted again at the next poll. Returns how many."""
        with self.db.transaction():
            rows = self.db.all(
                "SELECT auth_req_id, scope FROM identity_ciba_requests"
                " WHERE msisdn = ? AND consent_party = ? AND status = 'pending'",
                (msisdn, party))
            denied = [row["auth_req_id"] for row in rows
                      if purpose is None or purpose in row["scope"].split()]
            for auth_req_id in denied:
                self.db.execute("UPDATE identity_ciba_requests SET status = 'denied'"
                                " WHERE auth_req_id = ?", (auth_req_id,))
        return len(denied)


def _interactive(handset: str) -> bool:
    return HandsetBehaviour.model_validate_json(handset).mode is HandsetMode.INTERACTIVE


