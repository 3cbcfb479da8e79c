"""One operator's authorization server as a plain object: no HTTP, no module state.

Everything is built from an :class:`~operators.config.OperatorConfig`, a
:class:`~operators.storage.Database`, a :class:`~operators.subscriber_base.SubscriberBase`
and a clock, so several operators live in one process and a SimPy model can drive the very
same object in virtual time. ``app.py`` puts HTTP in front of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import ClientRateLimit, OperatorConfig, Plan
from ..errors import OAuthError
from ..policies import Throttle, ThrottlePolicy
from ..storage import Database
from ..subscriber import Subscriber
from ..subscriber_base import SubscriberBase
from ..types import Clock
from . import _jwt
from .authorization_code import AuthorizationCodeFlow, Redirect
from .ciba import BackchannelResponse, CibaService
from .client_auth import ClientAuthenticator, basic_credentials
from .client_keys import ClientKeys
from .clients import Client, ClientRegistration, ClientRegistry
from .consent import Consent, ConsentStore
from .consent_capture import ConsentCaptures
from .consent_info import ConsentInfo
from .grant_standing import GrantFacts, TokenContext
from .jwks_cache import JwksCache
from .jwt_bearer import AssertionIssuerPolicy, JwtBearerGrant, RegisteredClientIssuers
from .keys import KeyRing, SigningKey
from .purposes import parse_scope
from .replay import ReplayGuard
from .request_object import RequestObjects
from .subjects import SubjectResolver
from .tokens import AccessTokenClaims, IssuedToken, TokenService
from .types import AuthMethod, GrantType


class RateLimitedError(OAuthError):
    """429 ``too_many_requests`` with a ``Retry-After`` (whole seconds) for the HTTP face.

    RFC 6749 has no error code for rate limiting and CIBA's ``slow_down`` is only for polls
    faster than the interval; this is the body Auth0 and other servers answer with.
    """

    def __init__(self, retry_after: float) -> None:
        seconds = 1 if math.isinf(retry_after) else max(1, math.ceil(retry_after))
        super().__init__("too_many_requests", f"rate limit exceeded; retry in {seconds} s", 429)
        self.retry_after = seconds


def _bucket_plan(endpoint: str, limit: ClientRateLimit) -> Plan:
    """An endpoint's per-client limit in the shape the shared :class:`Throttle` takes."""
    return Plan(name=f"identity{endpoint}", rate_per_second=limit.rate_per_second,
                burst=limit.burst)


class IdentityServer:
    """The OAuth 2.0 / OIDC / CIBA authorization server of one operator.

    Public parts other packages use:

    * ``verify_access_token(token)`` and ``token_context(claims)``: what the gateway calls on
      every request (see their docstrings);
    * ``metadata()``, ``jwks()``: discovery and keys, for federation partners;
    * ``token``, ``backchannel_authorize``, ``authorize``, ``introspect``, ``revoke``: the
      endpoints, taking parsed parameters and returning JSON-ready dicts (``app.py``);
    * ``clients``, ``consents``, ``keys``, ``subjects``: the registries behind them.

    ``issuer_policy`` decides who may sign JWT-bearer assertions (default: registered clients
    with their own keys); ``audience`` is the ``aud`` of issued access tokens, by default the
    origin of the issuer URL (the operator's API root host). ``throttle`` keeps the per-client
    buckets of ``/token`` and ``/bc-authorize`` (by default a :class:`Throttle` on ``clock``,
    sized by ``config.token_rate_limit`` and ``config.ciba_rate_limit``).
    """

    def __init__(
        self,
        config: OperatorConfig,
        db: Database,
        subscribers: SubscriberBase,
        clock: Clock = time.time,
        *,
        issuer_policy: AssertionIssuerPolicy | None = None,
        audience: str | None = None,
        client_gate: Callable[[str], bool] | None = None,
        throttle: ThrottlePolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.subscribers = subscribers
        self.clock = clock
        self.client_gate = client_gate
        self.throttle = throttle if throttle is not None else Throttle(clock)
        self.token_issued: Callable[[str], None] | None = None
        """Told the client id of every token ``/token`` issues (the analytics keeps each
        application's first); None tells nobody."""
        self._rate_plans = {"/token": _bucket_plan("/token", config.token_rate_limit),
                            "/bc-authorize": _bucket_plan("/bc-authorize",
                                                          config.ciba_rate_limit),
                            "/admin/operator-tokens": _bucket_plan(
                                "/admin/operator-tokens", config.operator_token_rate_limit)}
        self.issuer = config.issuer_url.rstrip("/")
        parts = urlsplit(self.issuer)
        self.audience = audience or f"{parts.scheme}://{parts.netloc}"
        lifetimes = config.lifetimes
        self.keys = KeyRing(db, alg=config.signing_alg, clock=clock,
                            retention=lifetimes.access_token + lifetimes.clock_skew)
        self.clients = ClientRegistry(config, db, clock=clock)
        self.jwks_cache = JwksCache(http, clock=clock)
        self.client_keys = ClientKeys(self.clients, self.jwks_cache)
        self.consents = ConsentStore(db, clock=clock)
        self.captures = ConsentCaptures(db, clock=clock)
        self.replay = ReplayGuard(db, clock=clock)
        self.subjects = SubjectResolver(config, subscribers, db, clock=clock)
        self.tokens = TokenService(config, db, self.keys, clients=self.clients,
                                   consents=self.consents, subscribers=subscribers, clock=clock,
                                   audience=self.audience)
        self.authenticator = ClientAuthenticator(
            config, self.clients, self.replay, clock=clock,
            issuer_audiences=(self.issuer, config.issuer_url, self.token_endpoint),
            keys=self.client_keys,
        )
        self.consent_info = ConsentInfo(
            config, self.clients, self.consents, subscribers, self.captures,
            capture_url=self.issuer + "/consent/capture", clock=clock,
        )
        self.request_objects = RequestObjects(
            config, keys=self.client_keys, replay=self.replay, clock=clock,
            audiences=(self.issuer, config.issuer_url))
        self.ciba = CibaService(config, db, subjects=self.subjects, consents=self.consents,
                                tokens=self.tokens, clock=clock)
        self.authorization_code = AuthorizationCodeFlow(
            config, db, clients=self.clients, subscribers=subscribers, consents=self.consents,
            tokens=self.tokens, clock=clock, request_objects=self.request_objects)
        self.jwt_bearer = JwtBearerGrant(
            config,
            issuers=issuer_policy or RegisteredClientIssuers(self.clients, self.client_keys),
            replay=self.replay, subjects=self.subjects, consents=self.consents,
            tokens=self.tokens, clock=clock, token_endpoint=self.token_endpoint)

    # -- endpoints' URLs and discovery --------------------------------------------------------

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    def metadata(self) -> dict[str, Any]:
        """OIDC Discovery 1.0 / RFC 8414 metadata: what this server does, no more, no less.

        Every endpoint, grant, response type, client authentication method and algorithm
        listed here works, and nothing else is accepted (``test_discovery_conformance``).
        ``request_uri_parameter_supported`` is said false because Discovery's default is true.
        """
        scopes = sorted({"openid", *(p.purpose for p in self.config.purposes),
                         *(s for c in self.clients.all() for s in c.scopes)})
        client_algs = sorted(_jwt.ASYMMETRIC_ALGS)
        auth_methods = [m.value for m in AuthMethod]
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.token_endpoint,
            "backchannel_authentication_endpoint": self.url("/bc-authorize"),
            "jwks_uri": self.url("/jwks"),
            "introspection_endpoint": self.url("/introspect"),
            "revocation_endpoint": self.url("/revoke"),
            "grant_types_supported": [g.value for g in GrantType],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": client_algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": client_algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": client_algs,
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_authentication_request_signing_alg_values_supported": client_algs,
            "backchannel_user_code_parameter_supported": False,
            "request_parameter_supported": True,
            "request_uri_parameter_supported": False,
            "request_object_signing_alg_values_supported": client_algs,
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [self.keys.id_token_alg],
            "scopes_supported": scopes,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr"],
            "claims_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return self.keys.jwks()

    def rotate_keys(self) -> SigningKey:
        return self.keys.rotate()

    def register_client(
        self, registration: ClientRegistration | dict[str, Any]
    ) -> tuple[Client, str | None]:
        return self.clients.register(registration)

    def use_http(self, http: httpx.AsyncClient) -> None:
        """Fetch clients' ``jwks_uri`` with ``http`` (a federation member's own client)."""
        self.jwks_cache.use_http(http)

    def share_jwks_cache(self, cache: JwksCache) -> None:
        """Hold clients' keys by reference in ``cache``: the data centres of one operator share
        one, so a partner's keys fetched (and warmed at start) once serve every replica."""
        self.jwks_cache = self.client_keys.cache = cache

    async def prepare(self, params: Mapping[str, str]) -> None:
        """Await before an endpoint: fetches the keys, held by reference, of the clients whose
        JWTs (client assertion, grant assertion, request object) are in ``params``."""
        await self.client_keys.prepare(params)

    def subscriber_at(self, address: str | None) -> Subscriber | None:
        """Network-based authentication: the subscriber this operator gave ``address`` to."""
        return self.subscribers.by_ipv4(address) if address else None

    # -- endpoints ------------------------------------------------------------------------------

    def authenticate_client(
        self, form: Mapping[str, str], authorization: str | None, endpoint: str
    ) -> Client:
        """The authenticated client, refused when ``client_gate`` no longer admits it (a
        federation party whose trust was revoked gets no new token from its credentials), or
        429 when it went past its rate at ``/token`` or ``/bc-authorize``. Counted after
        authentication, so nobody can spend another client's budget by naming it."""
        client = self.authenticator.authenticate(form, authorization, self.url(endpoint))
        self._admit(client, endpoint)
        return client

    def _admit(self, client: Client, endpoint: str) -> None:
        """The gate and the endpoint's rate for a client whose identity is proven."""
        if self.client_gate is not None and not self.client_gate(client.client_id):
            raise OAuthError("invalid_client", "this party is no longer trusted", 401)
        plan = self._rate_plans.get(endpoint)
        if plan is not None:
            decision = self.throttle.check(client.client_id, plan)
            if not decision.allowed:
                raise RateLimitedError(decision.retry_after)

    def admit_device_token(self, msisdn: str) -> None:
        """A device's own request for a TS.43 operator token, within its rate: each one is a
        row until it expires, so an unlimited device could grow the table at will."""
        plan = self._rate_plans["/admin/operator-tokens"]
        decision = self.throttle.check(f"device:{msisdn}", plan)
        if not decision.allowed:
            raise RateLimitedError(decision.retry_after)

    def token(self, form: Mapping[str, str], authorization: str | None = None) -> dict[str, Any]:
        """``POST /token``: dispatch on ``grant_type``; returns the JSON token response."""
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        try:
            grant_type = GrantType(grant)
        except ValueError:
            raise OAuthError("unsupported_grant_type", f"{grant!r} is not supported") from None
        if grant_type is GrantType.JWT_BEARER:
            presented = bool(form.get("client_assertion")) or (
                basic_credentials(authorization) is not None)
            client = (self.authenticate_client(form, authorization, "/token")
                      if presented else None)
            asserted: list[Client] = []

            def admit(issuer: Client) -> None:
                # Without client authentication the verified assertion is the client's proof:
                # the gate and the rate apply to it then, as to an authenticated client.
                if client is None:
                    self._admit(issuer, "/token")
                asserted.append(issuer)

            answer = self.jwt_bearer.exchange(form, client, admit).response()
            if self.token_issued is not None:
                self.token_issued(asserted[0].client_id)
            return answer
        client = self.authenticate_client(form, authorization, "/token")
        issued: IssuedToken
        match grant_type:
            case GrantType.CLIENT_CREDENTIALS:
                issued = self._client_credentials(client, form)
            case GrantType.AUTHORIZATION_CODE:
                issued = self.authorization_code.redeem(client, form)
            case GrantType.CIBA:
                issued = self.ciba.poll(client, form)
        if self.token_issued is not None:
            self.token_issued(client.client_id)
        return issued.response()

    def _client_credentials(self, client: Client, form: Mapping[str, str]) -> IssuedToken:
        """Two-legged tokens: only for purposes the operator agreed to serve two-legged."""
        if GrantType.CLIENT_CREDENTIALS not in client.grant_types:
            raise OAuthError("unauthorized_client", "client may not use client_credentials")
        request = parse_scope(self.config, client, form.get("scope"), purpose_required=False)
        if request.purpose is None and any(s in camara_scopes() for s in request.api_scopes):
            # every CAMARA operation reads or acts on subscribers' data, and the gateway
            # refuses its tokens without a purpose, so none is issued (the federation's own
            # telco-finder and routing scopes name no subscriber and need no purpose)
            raise OAuthError("invalid_scope",
                             "personal-data requests must name one dpv: purpose")
        if request.purpose is not None and not request.purpose.two_legged:
            raise OAuthError(
                "invalid_scope",
                f"{request.purpose.purpose} needs the subscriber: use a three-legged flow",
            )
        if request.openid:
            raise OAuthError("invalid_scope", "openid makes no sense without a subscriber")
        return self.tokens.issue(client.client_id, request, grant=GrantType.CLIENT_CREDENTIALS)

    def backchannel_authorize(
        self, form: Mapping[str, str], authorization: str | None = None
    ) -> dict[str, Any]:
        """``POST /bc-authorize`` (CIBA poll mode)."""
        client = self.authenticate_client(form, authorization, "/bc-authorize")
        if form.get("request"):
            form = self.request_objects.backchannel(client, form)
        response: BackchannelResponse = self.ciba.start(client, form)
        return response.response()

    def authorize(
        self, params: Mapping[str, str], source_ip: str | None, *, repeated: bool = False
    ) -> Redirect:
        """``GET /authorize``: a redirect, or :class:`OAuthError` to show as an error page."""
        return self.authorization_code.authorize(params, source_ip, repeated=repeated)

    def introspect(
        self, form: Mapping[str, str], authorization: str | None = None
    ) -> dict[str, Any]:
        """``POST /introspect`` (RFC 7662): a client may introspect tokens issued to it."""
        client = self.authenticate_client(form, authorization, "/introspect")
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        answer = self.tokens.introspect(token)
        if answer.get("active") and answer.get("client_id") != client.client_id:
            return {"active": False}
        return answer

    def withdraw_consent(self, consent_id: str, *, actor: str) -> Consent:
        """Revoke a consent and deny the pending CIBA requests it would have covered (one the
        subscriber approved but the application has not collected included), together."""
        with self.db.transaction():
            revoked = self.consents.revoke(consent_id, actor=actor)
            self.ciba.withdraw(revoked.msisdn, revoked.client_id, revoked.purpose)
        return revoked

    def revoke(self, form: Mapping[str, str], authorization: str | None = None) -> None:
        """``POST /revoke`` (RFC 7009): unknown or foreign tokens are ignored silently."""
        client = self.authenticate_client(form, authorization, "/revoke")
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is required")
        hint = form.get("token_type_hint")
        if hint and hint not in ("access_token", "refresh_token"):
            raise OAuthError("unsupported_token_type", f"{hint!r} tokens are not issued here")
        try:
            claims = self.tokens.verify(token)
        except OAuthError:
            return
        if claims.client_id != client.client_id:
            raise OAuthError("unauthorized_client", "token was issued to another client")
        self.tokens.revoke_jti(claims.jti)

    # -- for the gateway -------------------------------------------------------------------------

    def verify_access_token(self, token: str) -> AccessTokenClaims:
        """Verify a bearer token as a resource server must; raises ``InvalidAccessTokenError``.

        Checks, in order: size ≤ 8 KiB before parsing; compact JWS with a signature; no
        ``alg: none``, no ``crit``, no ``jku``/``x5u``/``jwk``/``x5c`` header; ``typ`` is
        ``at+jwt``; ``kid`` names one of this operator's published keys and the algorithm is
        the one pinned to that key (never read from the header alone); the signature; ``iss``
        is this issuer; ``aud`` contains :attr:`audience`; ``iss``, ``sub``, ``aud``, ``exp``,
        ``iat``, ``jti``, ``client_id`` present; ``exp``/``iat``/``nbf`` against the injected
        clock with ``config.lifetimes.clock_skew``. Stateless apart from the key ring: whether
        the token still stands is :meth:`token_context`'s job.
        """
        return self.tokens.verify(token)

    def token_context(self, claims: AccessTokenClaims) -> TokenContext:
        """Who and what a verified token stands for now; raises ``TokenContextError``.

        Returns the client id, the subscriber's number (None for a two-legged token), the
        purpose and the API scopes. Refuses, from the very next call after the change, a
        revoked token, a token whose consent was revoked or expired, a legitimate-interest
        token whose subscriber opted out since, a disabled client, a subscriber who left.
        """
        return self.tokens.context(claims)

    def grant_facts(self, claims: AccessTokenClaims) -> GrantFacts:
        """The grant behind a verified token as the records show it now, for the gateway's
        admission to decide on (with :func:`~operators.identity.grant_refusal`)."""
        return self.tokens.facts(claims)


def camara_scopes() -> frozenset[str]:
    """Every CAMARA API scope (imported here, not at the top: the operation table's package
    imports this one)."""
    from ..camara.scopes import ALL_SCOPES

    return ALL_SCOPES
