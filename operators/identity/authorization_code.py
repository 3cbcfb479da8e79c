"""OIDC authorization code flow with PKCE (S256 only) and network-based authentication.

The subscriber is whoever the operator assigned the request's source address to; consent,
where the purpose needs it, follows the simulated handset's answer (its delay is ignored:
the browser waits on the prompt). Problems with ``client_id`` or ``redirect_uri`` are shown
as an error page, never redirected; every later problem is redirected with ``state`` kept.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..config import OperatorConfig
from ..errors import OAuthError
from ..storage import Database
from ..subscriber import HandsetAnswer
from ..subscriber_base import SubscriberBase
from ..types import Clock
from .clients import Client, ClientRegistry
from .consent import ConsentStore
from .purposes import ScopeRequest, objects_to, parse_scope
from .request_object import RequestObjects
from .tokens import IssuedToken, TokenService
from .types import GrantType

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    consent_id TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
"""

PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True)
class Redirect:
    """Where to send the browser: the client's redirect URI with a code or an error."""

    location: str


def client_redirect(redirect_uri: str, issuer: str, state: str | None, **values: str) -> Redirect:
    """Back to the client's redirect URI with ``values``, ``iss`` (RFC 9207) and its ``state``."""
    query = {**values, "iss": issuer}
    if state is not None:
        query["state"] = state
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return Redirect(redirect_uri + separator + urlencode(query))


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request whose client and redirect URI are good: from here on, every
    problem is redirected to the client with its ``state``."""

    client: Client
    redirect_uri: str
    params: Mapping[str, str]
    """The query's parameters, superseded by those of a signed request object."""
    issuer: str

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    def back(self, **values: str) -> Redirect:
        return client_redirect(self.redirect_uri, self.issuer, self.state, **values)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _same(subject: str) -> str | None:
    return subject


class AuthorizationCodeFlow:
    """``/authorize`` and the ``authorization_code`` grant of one operator.

    A code stands for a subject: the subscriber's number here. ``subscriber`` names the
    subscriber a subject is at redemption (default: the subject itself); an aggregator that
    relays the flow to the serving operator names none (its codes' subjects are its own
    handles, see ``federation.authorization_relay``).
    """

    def __init__(
        self,
        config: OperatorConfig,
        db: Database,
        *,
        clients: ClientRegistry,
        subscribers: SubscriberBase,
        consents: ConsentStore,
        tokens: TokenService,
        clock: Clock,
        request_objects: RequestObjects | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.clients = clients
        self.request_objects = request_objects
        self.subscribers = subscribers
        self.consents = consents
        self.tokens = tokens
        self.clock = clock
        self.subscriber: Callable[[str], str | None] = _same
        db.ensure_schema(SCHEMA)

    def authorize(
        self, params: Mapping[str, str], source_ip: str | None, *, repeated: bool = False
    ) -> Redirect:
        """Answer an authorization request; raises :class:`OAuthError` for an error page."""
        request = self.accept(params)
        try:
            code = self._authorize(request, source_ip, repeated)
        except OAuthError as error:
            return request.back(error=error.error, error_description=error.description)
        return request.back(code=code)

    def accept(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """The client and its redirect URI (a signed request object read first); raises
        :class:`OAuthError` for an error page, never a redirect."""
        client_id = params.get("client_id")
        client = self.clients.get(client_id) if client_id else None
        if client is None or client.disabled:
            raise OAuthError("invalid_request", "unknown or disabled client_id")
        if params.get("request"):
            if self.request_objects is None:
                raise OAuthError("request_not_supported", "request objects are not supported")
            params = self.request_objects.authorization(client, params)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
        return AuthorizationRequest(client, redirect_uri, params, self.config.issuer_url)

    def check(self, request: AuthorizationRequest, repeated: bool) -> ScopeRequest:
        """What is checked before the subscriber is known: response type and mode, grant,
        PKCE (S256), scope and purpose; raises :class:`OAuthError` (to redirect)."""
        client, params = request.client, request.params
        if repeated:
            raise OAuthError("invalid_request", "a parameter is repeated")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code")
        if params.get("response_mode", "query") != "query":
            raise OAuthError("invalid_request", "only response_mode=query is supported")
        if GrantType.AUTHORIZATION_CODE not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use the authorization code")
        if params.get("request_uri"):
            raise OAuthError("request_uri_not_supported", "pass the request object by value")
        challenge = params.get("code_challenge")
        if not challenge or not PKCE_VALUE.match(challenge):
            raise OAuthError("invalid_request", "PKCE code_challenge (S256) is required")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        scope = parse_scope(self.config, client, params.get("scope"), purpose_required=True)
        assert scope.purpose is not None
        return scope

    def _authorize(
        self, request: AuthorizationRequest, source_ip: str | None, repeated: bool
    ) -> str:
        scope = self.check(request, repeated)
        client, params = request.client, request.params
        assert scope.purpose is not None
        subscriber = self.subscribers.by_ipv4(source_ip) if source_ip else None
        if subscriber is None:
            raise OAuthError("login_required",
                             "network-based authentication failed: not an operator device")
        if objects_to(scope.purpose, subscriber):
            raise OAuthError("access_denied", "the subscriber objected to this purpose")
        consent_id = None
        if scope.needs_consent:
            consent = self.consents.find_active(
                subscriber.msisdn, client.client_id, scope.purpose.purpose, scope.api_scopes)
            if consent is None:
                if "none" in params.get("prompt", "").split():
                    raise OAuthError("consent_required", "consent needed and prompt=none")
                if subscriber.handset.answer is not HandsetAnswer.APPROVE:
                    raise OAuthError("access_denied", "the subscriber did not give consent")
                consent = self.consents.grant(
                    subscriber.msisdn, client.client_id, scope.purpose.purpose,
                    scope.api_scopes, actor="subscriber:browser",
                )
            consent_id = consent.id
        return self.issue_code(request, subscriber.msisdn, scope, consent_id=consent_id)

    def issue_code(
        self,
        request: AuthorizationRequest,
        subject: str,
        scope: ScopeRequest,
        *,
        consent_id: str | None = None,
    ) -> str:
        """A fresh single-use code for ``subject``, bound to the client, its redirect URI and
        its PKCE challenge, living ``lifetimes.authorization_code`` seconds."""
        code = secrets.token_urlsafe(32)
        now = self.clock()
        params = request.params
        self.db.insert(
            "INSERT INTO identity_authorization_codes (code_hash, client_id, redirect_uri,"
            " msisdn, scope, code_challenge, nonce, consent_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_hash(code), request.client.client_id, request.redirect_uri, subject,
             " ".join(scope.scopes), params.get("code_challenge"), params.get("nonce"),
             consent_id, now, now + self.config.lifetimes.authorization_code),
        )
        return code

    def subject_of_token(self, jti: str) -> str | None:
        """The subject of the code a token was redeemed from (None: not from a code)."""
        row = self.db.one(
            "SELECT c.msisdn FROM identity_access_tokens t JOIN identity_authorization_codes c"
            " ON t.grant_ref = 'code:' || c.code_hash WHERE t.jti = ?", (jti,))
        return None if row is None else str(row["msisdn"])

    def redeem(self, client: Client, form: Mapping[str, str]) -> IssuedToken:
        """The ``authorization_code`` grant: single use, bound to client, URI and verifier."""
        if GrantType.AUTHORIZATION_CODE not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use the authorization code")
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        code_hash = _hash(code)
        with self.db.transaction():
            row = self.db.one("SELECT * FROM identity_authorization_codes WHERE code_hash = ?",
                              (code_hash,))
            if row is not None and row["used_at"] is not None:
                self.tokens.revoke_grant(f"code:{code_hash}")
            replayed = row is not None and row["used_at"] is not None
        if row is None or replayed:
            raise OAuthError("invalid_grant", "unknown, expired or already used code")
        if row["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "code was issued to another client")
        if self.clock() >= row["expires_at"]:
            raise OAuthError("invalid_grant", "code expired")
        if form.get("redirect_uri") != row["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        verifier = form.get("code_verifier")
        if not verifier or not PKCE_VALUE.match(verifier):
            raise OAuthError("invalid_grant", "PKCE code_verifier missing or malformed")
        if not secrets.compare_digest(create_s256_code_challenge(verifier),
                                      row["code_challenge"]):
            raise OAuthError("invalid_grant", "PKCE code_verifier does not match")
        request = parse_scope(self.config, client, row["scope"], purpose_required=True)
        with self.db.transaction():
            claimed = self.db.execute(
                "UPDATE identity_authorization_codes SET used_at = ?"
                " WHERE code_hash = ? AND used_at IS NULL", (self.clock(), code_hash))
            issued = self.tokens.issue(
                client.client_id, request, grant=GrantType.AUTHORIZATION_CODE,
                msisdn=self.subscriber(row["msisdn"]), grant_ref=f"code:{code_hash}",
                consent_id=row["consent_id"], nonce=row["nonce"], auth_time=row["created_at"],
                by_network=True,  # /authorize knows the subscriber by the device's address
            ) if claimed else None
        if issued is None:  # lost a race with a concurrent redemption of the same code
            self.tokens.revoke_grant(f"code:{code_hash}")
            raise OAuthError("invalid_grant", "code already used")
        lapsed = self.tokens.refusal_of(issued)
        if lapsed is not None:  # consent withdrawn, or the subscriber left, since /authorize
            self.tokens.revoke_jti(issued.jti)
            raise OAuthError("invalid_grant", f"the grant no longer stands: {lapsed.description}")
        return issued
