"""The JWT bearer grant (RFC 7523 §2.1) as the CAMARA profile restricts it.

The assertion is both the grant and the client's authentication: ``iss`` is the client id,
``sub`` is ``tel:+…`` or ``operatortoken:…``, ``aud`` the token endpoint URL, ``exp``/``iat``
within 300 s, ``jti`` single use, the ``scope`` claim mandatory with exactly one purpose, the
``scope`` form parameter refused. Consent is checked where the purpose's legal basis needs
it, never asked: this flow has no user interaction. No refresh tokens.

Who may issue assertions is a strategy (:class:`AssertionIssuerPolicy`); the default accepts
registered clients signing with their own keys, and federation can add trusted issuers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc.jwk import Key

from ..config import OperatorConfig
from ..errors import OAuthError
from ..types import Clock
from . import _jwt
from .ciba import consent_party
from .client_auth import FUTURE_TOLERANCE
from .client_keys import ClientKeys
from .clients import Client, ClientRegistry
from .consent import ConsentStore
from .purposes import objects_to, parse_scope
from .replay import ReplayGuard
from .subjects import OPERATOR_TOKEN, SubjectResolver, UnknownSubjectError
from .tokens import IssuedToken, TokenService
from .types import AuthMethod, GrantType


@dataclass(frozen=True)
class AssertionIssuer:
    """An accepted assertion issuer: the client the token is issued to, and its keys."""

    client: Client
    keys: tuple[Key, ...]


class AssertionIssuerPolicy(Protocol):
    """Decides whether ``iss`` may issue JWT-bearer assertions here, and with which keys."""

    def resolve(self, iss: str) -> AssertionIssuer | None: ...


class RegisteredClientIssuers:
    """Default policy: the issuer is an enabled registered client, signing with its own keys
    (registered by value, or by reference when ``keys`` is given)."""

    def __init__(self, clients: ClientRegistry, keys: ClientKeys | None = None) -> None:
        self.clients = clients
        self.keys = keys

    def resolve(self, iss: str) -> AssertionIssuer | None:
        client = self.clients.get(iss)
        if client is None or client.disabled:
            return None
        if client.auth_method is not AuthMethod.PRIVATE_KEY_JWT:
            return None
        keys = self.keys.of(client) if self.keys is not None else tuple(client.keys())
        return AssertionIssuer(client, keys)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


class JwtBearerGrant:
    """Exchanges a CAMARA JWT-bearer assertion for a three-legged access token."""

    def __init__(
        self,
        config: OperatorConfig,
        *,
        issuers: AssertionIssuerPolicy,
        replay: ReplayGuard,
        subjects: SubjectResolver,
        consents: ConsentStore,
        tokens: TokenService,
        clock: Clock,
        token_endpoint: str,
    ) -> None:
        self.config = config
        self.issuers = issuers
        self.replay = replay
        self.subjects = subjects
        self.consents = consents
        self.tokens = tokens
        self.clock = clock
        self.token_endpoint = token_endpoint

    def exchange(
        self,
        form: Mapping[str, str],
        authenticated: Client | None,
        admit: Callable[[Client], None] | None = None,
    ) -> IssuedToken:
        """The token for a verified assertion; ``admit`` is asked about the asserting client
        once its signature verified and before its ``jti`` is spent (the caller's gate and
        rate limit)."""
        if "scope" in form:
            raise OAuthError("invalid_request",
                             "the scope parameter is not used: put it in the assertion")
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError("invalid_request", "assertion is required")
        try:
            header = _jwt.read_header(assertion)
            iss = _jwt.string(_jwt.unverified_claims(assertion), "iss")
            issuer = self.issuers.resolve(iss)
            if issuer is None:
                raise _jwt.JwtRejectedError("assertion issuer is not trusted")
            claims = _jwt.verify_with_any(assertion, header, issuer.keys)
            _jwt.check_assertion(
                claims,
                now=self.clock(),
                accepted_audiences={self.token_endpoint},
                max_lifetime=self.config.lifetimes.client_assertion_max,
                skew=self.config.lifetimes.clock_skew,
                future_tolerance=FUTURE_TOLERANCE,
            )
            if claims.get("iss") != iss:
                raise _jwt.JwtRejectedError("'iss' changed under verification")
            jti = _jwt.string(claims, "jti")
            sub = _jwt.string(claims, "sub")
            scope = claims.get("scope")
            if not isinstance(scope, str) or not scope.strip():
                raise _jwt.JwtRejectedError("the 'scope' claim is mandatory")
        except _jwt.JwtRejectedError as error:
            raise invalid_grant(f"assertion rejected: {error}") from error
        client = issuer.client
        if authenticated is not None and authenticated.client_id != client.client_id:
            raise invalid_grant("assertion issuer is not the authenticated client")
        if GrantType.JWT_BEARER not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use the JWT bearer grant")
        if admit is not None:
            admit(client)
        if not self.replay.first_use(f"bearer:{iss}", jti, float(claims["exp"])):
            raise invalid_grant("assertion 'jti' was already used")
        request = parse_scope(self.config, client, scope, purpose_required=True)
        assert request.purpose is not None
        if not sub.startswith(("tel:", "operatortoken:", "ipport:")):
            raise invalid_grant("sub must be tel:+<E.164>, ipport:<address> or operatortoken:")
        try:
            subscriber = self.subjects.resolve(sub)
        except UnknownSubjectError as error:
            raise invalid_grant(f"unknown subject: {error}") from error
        consent_id = None
        if objects_to(request.purpose, subscriber):
            raise invalid_grant("the subscriber objected to this purpose")
        party = consent_party(client.client_id, _beneficiary(claims))
        if request.needs_consent:
            consent = self.consents.find_active(
                subscriber.msisdn, party, request.purpose.purpose, request.api_scopes)
            if consent is None:
                raise invalid_grant("no consent from the subscriber for this purpose and scope")
            consent_id = consent.id
        return self.tokens.issue(
            client.client_id, request, grant=GrantType.JWT_BEARER, msisdn=subscriber.msisdn,
            grant_ref=f"bearer:{iss}:{jti}", consent_id=consent_id, consent_party=party,
            by_network=sub.startswith(OPERATOR_TOKEN),
        )


def _beneficiary(claims: dict[str, Any]) -> str | None:
    """The application an aggregator asks for (its signed ``on_behalf_of`` claim), if any."""
    value = claims.get("on_behalf_of")
    if value is not None and not isinstance(value, str):
        raise invalid_grant("on_behalf_of must be a string")
    return value
