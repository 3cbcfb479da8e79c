"""Client authentication at the token, backchannel, introspection and revocation endpoints.

``private_key_jwt`` (OIDC Core §9, CAMARA profile) for every application, and
``client_secret_basic`` only for clients registered as operator tooling. Every failure is a
401 ``invalid_client``; the description says why, never which secret or key was expected.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from ..config import OperatorConfig
from ..errors import OAuthError
from ..types import Clock
from . import _jwt
from .client_keys import ClientKeys
from .clients import Client, ClientRegistry
from .replay import ReplayGuard
from .types import CLIENT_ASSERTION_TYPE, AuthMethod

FUTURE_TOLERANCE = 60.0
"""How far ``iat``/``nbf`` of an assertion may lead our clock (clients' clocks drift)."""


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic header (RFC 6749 §2.3.1 form-encoding)."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise OAuthError("invalid_request", "malformed Basic credentials") from error
    user, sep, password = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_request", "malformed Basic credentials")
    return unquote(user), unquote(password)


class ClientAuthenticator:
    """Decides which registered, enabled client made a request, or refuses it."""

    def __init__(
        self,
        config: OperatorConfig,
        clients: ClientRegistry,
        replay: ReplayGuard,
        *,
        clock: Clock,
        issuer_audiences: Iterable[str],
        keys: ClientKeys,
    ) -> None:
        self.config = config
        self.clients = clients
        self.keys = keys
        self.replay = replay
        self.clock = clock
        self.issuer_audiences = tuple(issuer_audiences)

    def authenticate(
        self, form: Mapping[str, str], authorization: str | None, endpoint_url: str
    ) -> Client:
        basic = basic_credentials(authorization)
        assertion = form.get("client_assertion")
        if basic is not None and assertion:
            raise OAuthError("invalid_request", "use exactly one client authentication method")
        if basic is not None:
            return self._basic(*basic, form)
        if assertion:
            return self._private_key_jwt(form, assertion, endpoint_url)
        if form.get("client_secret"):
            raise invalid_client("client_secret_post is not supported")
        raise invalid_client("client authentication required (private_key_jwt)")

    def _enabled(self, client_id: str) -> Client:
        client = self.clients.get(client_id)
        if client is None or client.disabled:
            raise invalid_client("unknown or disabled client")
        return client

    def _basic(self, client_id: str, secret: str, form: Mapping[str, str]) -> Client:
        if form.get("client_id") and form["client_id"] != client_id:
            raise invalid_client("client_id does not match the credentials")
        client = self.clients.get(client_id)
        if not self.clients.check_secret(client_id, secret) or client is None:
            raise invalid_client("client authentication failed")
        if client.disabled:
            raise invalid_client("unknown or disabled client")
        if client.auth_method is not AuthMethod.CLIENT_SECRET_BASIC or not client.tooling:
            raise invalid_client("this client must authenticate with private_key_jwt")
        return client

    def _private_key_jwt(
        self, form: Mapping[str, str], assertion: str, endpoint_url: str
    ) -> Client:
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise invalid_client("client_assertion_type must be " + CLIENT_ASSERTION_TYPE)
        try:
            header = _jwt.read_header(assertion)
            unverified = _jwt.unverified_claims(assertion)
            client_id = _jwt.string(unverified, "iss")
        except _jwt.JwtRejectedError as error:
            raise invalid_client(f"client assertion rejected: {error}") from error
        if form.get("client_id") and form["client_id"] != client_id:
            raise invalid_client("client_id does not match the assertion issuer")
        client = self._enabled(client_id)
        if client.auth_method is not AuthMethod.PRIVATE_KEY_JWT:
            raise invalid_client("this client is not registered for private_key_jwt")
        try:
            claims = _jwt.verify_with_any(assertion, header, self.keys.of(client))
            if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
                raise _jwt.JwtRejectedError("'iss' and 'sub' must both be the client id")
            _jwt.check_assertion(
                claims,
                now=self.clock(),
                accepted_audiences={endpoint_url, *self.issuer_audiences},
                max_lifetime=self.config.lifetimes.client_assertion_max,
                skew=self.config.lifetimes.clock_skew,
                future_tolerance=FUTURE_TOLERANCE,
            )
            jti = _jwt.string(claims, "jti")
        except _jwt.JwtRejectedError as error:
            raise invalid_client(f"client assertion rejected: {error}") from error
        if not self.replay.first_use(f"client:{client.client_id}", jti, float(claims["exp"])):
            raise invalid_client("client assertion 'jti' was already used")
        return client
