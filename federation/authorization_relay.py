"""Number Verification through the aggregator: the authorization code flow, relayed.

Number Verification rests on network-based authentication: only the operator that gave the
device its address can say whose device it is. So an application registered only at the
aggregator runs the front-channel authorization code flow at the aggregator, and the
aggregator sends the device on to the operator serving it:

1. the device brings the application's request to the hub's ``/authorize``; the hub checks it
   as an operator would (client, redirect URI, PKCE S256, scope and purpose: Number
   Verification only, for a purpose that needs no consent), finds the operator that assigned
   the device's address with its Telco Finder (``ipv4Address`` target), keeps the request
   under a fresh ``state`` and redirects the device to that operator's ``/authorize`` as
   client ``hub`` with its own PKCE challenge and the hub's callback as redirect URI;
2. the operator authenticates the device by its address and sends it back to the callback
   with a code (or an error);
3. the callback takes the ``state`` once (unknown, forged, used or expired: an error page),
   checks the answer's ``iss`` (RFC 9207), redeems the operator's code at its token endpoint
   (``private_key_jwt``), keeps the operator's token as a *relayed grant* of the application,
   issues the hub's own code for that grant and redirects the device to the application's
   redirect URI with the application's ``state``;
4. the application redeems the hub's code at the hub's token endpoint (single use, its client,
   its redirect URI, its PKCE verifier: the identity server's own checks), and the hub's
   token stands for the relayed grant (:meth:`AuthorizationRelay.grant_for`), which the
   aggregator forwards Number Verification calls with. Never a JWT-bearer token: the hub
   cannot vouch for whose device it is.

Consent-based purposes are refused here (``invalid_scope``): the operator would record the
subscriber's consent for the hub, not for the application.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from operators import CamaraError, Database, OAuthError
from operators.identity import IdentityServer

from .client import ApplicationClient, OAuthClientError
from .types import Clock

CALLBACK_PATH = "/callback"
"""The hub's redirect URI at every operator, relative to its issuer URL."""

RELAYED_API = "number-verification"
"""The API whose scopes the relayed flow grants."""

PENDING_LIFETIME = 300.0
"""Seconds a device has to come back from its operator to the hub's callback."""

SUBJECT_PREFIX = "relay:"
"""A hub code's subject: the relayed grant it stands for, never a phone number."""

TOKEN_MARGIN = 5.0
"""Seconds before its expiry an operator's token is no longer used."""

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Headers of every redirect carrying a code or a state."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS aggregator_authorizations (
    state_hash TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    request TEXT NOT NULL,
    operator TEXT NOT NULL,
    served_as TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS aggregator_relayed_grants (
    grant_id TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    operator TEXT NOT NULL,
    served_as TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL
);
"""

KEPT = (
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "scope",
    "response_type",
    "code_challenge",
    "code_challenge_method",
)
"""The application's parameters kept while the device is at its operator."""


def callback_url(issuer: str) -> str:
    """The aggregator's callback (its redirect URI at operators) under its issuer URL."""
    return issuer.rstrip("/") + CALLBACK_PATH


def query_params(query: str) -> tuple[dict[str, str], bool]:
    """A query's parameters (RFC 6749 §3.1: empty means absent) and whether one repeats."""
    seen: dict[str, str] = {}
    repeated = False
    for name, value in parse_qsl(query, keep_blank_values=True):
        if not value:
            continue
        repeated = repeated or name in seen
        seen[name] = value
    return seen, repeated


@dataclass(frozen=True)
class ServingOperator:
    """The operator that assigned a device's address, and the hub's client there."""

    operator: str
    served_as: str
    client: ApplicationClient


@dataclass(frozen=True)
class RelayedGrant:
    """An operator's token for one application's authorization from one subscriber's device."""

    grant_id: str
    application: str
    operator: str
    served_as: str
    access_token: str
    expires_at: float


Locate = Callable[[str], Awaitable[ServingOperator]]
"""Device address → the operator serving it; raises ``CamaraError`` (404: nobody)."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _no_subscriber(subject: str) -> str | None:
    return None


class AuthorizationRelay:
    """The hub's ``/authorize`` and callback, and the relayed grants behind its tokens."""

    def __init__(
        self,
        identity: IdentityServer,
        db: Database,
        *,
        locate: Locate,
        partner: Callable[[str], ApplicationClient | None],
        clock: Clock,
    ) -> None:
        self.identity = identity
        self.codes = identity.authorization_code
        self.codes.subscriber = _no_subscriber  # the hub's codes name relayed grants
        self.db = db
        self.locate = locate
        self.partner = partner
        self.clock = clock
        self.callback_uri = callback_url(identity.issuer)
        db.ensure_schema(SCHEMA)

    # -- 1. the application's request, sent on to the serving operator ------------------------

    async def authorize(self, params: Mapping[str, str], source_ip: str | None,
                        *, repeated: bool = False) -> str:
        """Where to send the device: the serving operator, or back to the application with
        an error; raises :class:`OAuthError` for an error page (client, redirect URI)."""
        await self.identity.prepare(params)
        request = self.codes.accept(params)
        try:
            scope = self.codes.check(request, repeated)
            apis = {s.split(":")[0] for s in scope.api_scopes}
            if apis != {RELAYED_API}:
                raise OAuthError("invalid_scope",
                                 "the aggregator relays this flow for Number Verification only")
            if scope.needs_consent:
                raise OAuthError("invalid_scope", "through the aggregator, Number Verification"
                                 " serves purposes that need no consent")
            serving = await self._serving(source_ip)
        except OAuthError as error:
            return request.back(error=error.error, error_description=error.description).location
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        now = self.clock()
        kept = {k: request.params[k] for k in KEPT if k in request.params}
        self.db.insert(
            "INSERT INTO aggregator_authorizations (state_hash, application, request, operator,"
            " served_as, verifier, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (_hash(state), request.client.client_id, json.dumps(kept), serving.operator,
             serving.served_as, verifier, now, now + PENDING_LIFETIME),
        )
        query = {
            "response_type": "code",
            "client_id": serving.client.client_id,
            "redirect_uri": self.callback_uri,
            "scope": " ".join(scope.scopes),
            "state": state,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        return serving.client.endpoints.authorization + "?" + urlencode(query)

    async def _serving(self, source_ip: str | None) -> ServingOperator:
        if not source_ip:
            raise OAuthError("login_required", "network-based authentication failed: no address")
        try:
            return await self.locate(source_ip)
        except CamaraError as error:
            if error.status == 404:
                raise OAuthError(
                    "login_required",
                    "network-based authentication failed: no operator of the federation"
                    " assigned this address",
                ) from error
            raise OAuthError("temporarily_unavailable", error.message) from error

    # -- 2. back from the operator ----------------------------------------------------------

    async def callback(self, params: Mapping[str, str]) -> str:
        """Where to send the device back: the application's redirect URI with the hub's code
        or the error; raises :class:`OAuthError` for an error page (a bad ``state``)."""
        pending = self._take(params.get("state"))
        kept: dict[str, str] = json.loads(pending["request"])
        request = self.codes.accept(kept)  # the client may have been disabled meanwhile
        client = self.partner(pending["operator"])
        if client is None:
            return request.back(error="temporarily_unavailable",
                                error_description="the serving operator left").location
        iss = params.get("iss")
        if iss is not None and iss != client.endpoints.issuer:
            return request.back(error="access_denied",
                                error_description="the answer names another issuer").location
        if params.get("error"):
            return request.back(error=params["error"],
                                error_description=params.get("error_description", "")).location
        code = params.get("code")
        if not code:
            return request.back(error="access_denied",
                                error_description="the serving operator gave no code").location
        try:
            reply = await client.redeem_code(code, self.callback_uri, pending["verifier"])
        except OAuthClientError as error:
            return request.back(
                error="access_denied",
                error_description=f"the serving operator refused: {error.error}").location
        except httpx.HTTPError:
            return request.back(error="temporarily_unavailable",
                                error_description="the serving operator is unreachable").location
        grant = self._keep(pending, reply)
        scope = self.codes.check(request, False)
        hub_code = self.codes.issue_code(request, SUBJECT_PREFIX + grant.grant_id, scope)
        return request.back(code=hub_code).location

    def _take(self, state: str | None) -> Any:
        """The pending request a ``state`` names, taken once; an error page otherwise."""
        if not state:
            raise OAuthError("invalid_request", "state is required")
        now = self.clock()
        with self.db.transaction():
            row = self.db.one("SELECT * FROM aggregator_authorizations WHERE state_hash = ?",
                              (_hash(state),))
            taken = row is not None and row["used_at"] is None and now < row["expires_at"]
            if taken:
                self.db.execute(
                    "UPDATE aggregator_authorizations SET used_at = ? WHERE state_hash = ?",
                    (now, _hash(state)))
        if row is None or not taken:
            raise OAuthError("invalid_request", "unknown, expired or already used state")
        return row

    def _keep(self, pending: Any, reply: Mapping[str, Any]) -> RelayedGrant:
        now = self.clock()
        lifetime = float(reply.get("expires_in", 60))
        grant = RelayedGrant(str(uuid.uuid4()), pending["application"], pending["operator"],
                             pending["served_as"], str(reply["access_token"]),
                             now + lifetime - TOKEN_MARGIN)
        self.db.insert(
            "INSERT INTO aggregator_relayed_grants (grant_id, application, operator, served_as,"
            " access_token, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (grant.grant_id, grant.application, grant.operator, grant.served_as,
             grant.access_token, grant.expires_at, now),
        )
        self.db.execute("DELETE FROM aggregator_relayed_grants WHERE expires_at < ?", (now,))
        self.db.execute("DELETE FROM aggregator_authorizations WHERE expires_at < ?", (now,))
        return grant

    # -- 3. the hub's token, for a Number Verification call -------------------------------------

    def grant_for(self, jti: str, application: str) -> RelayedGrant | None:
        """The relayed grant a hub token (its ``jti``) stands for, if the application's."""
        subject = self.codes.subject_of_token(jti)
        if subject is None or not subject.startswith(SUBJECT_PREFIX):
            return None
        row = self.db.one("SELECT * FROM aggregator_relayed_grants WHERE grant_id = ?",
                          (subject.removeprefix(SUBJECT_PREFIX),))
        if row is None or row["application"] != application:
            return None
        return RelayedGrant(row["grant_id"], row["application"], row["operator"],
                            row["served_as"], row["access_token"], row["expires_at"])
