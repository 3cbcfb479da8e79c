"""The aggregator: one entry point and one set of credentials for an application.

An application registers once, with the aggregator's own identity server, and calls the
CAMARA APIs at the aggregator's URL with the aggregator's token (client credentials,
``private_key_jwt``). For each call :class:`Aggregator`:

1. authenticates and authorises the application's token exactly as an operator gateway
   would (same :class:`~operators.gateway.authentication.BearerAuthenticator` and
   :class:`~operators.gateway.admission.Admission`, on the aggregator's issuer);
2. finds the serving operator with its Telco Finder (``SHALLOW``, and once more ``DEEP``
   when a hop says the number is not where the search put it, as
   :func:`~federation.discovery_fallback.next_search` decides: it may have just ported);
3. obtains that operator's own three-legged token for the subscriber behind the scenes —
   the JWT bearer grant (an assertion signed with the aggregator's key, ``sub`` =
   ``tel:+…``, audience the operator's token endpoint) where the purpose's legal basis needs
   no consent, CIBA on the operator (its subscriber's handset answering) where it does —
   and keeps it until shortly before it expires;
4. forwards the call to the operator's gateway without the device identifier (a
   three-legged token names the device; CAMARA answers ``UNNECESSARY_IDENTIFIER`` to both),
   passes the answer back unchanged (status, CAMARA ``code``, body), and maps failures of
   its own hops to CAMARA errors: nobody serves the number → 404 ``IDENTIFIER_NOT_FOUND``,
   a refused token request → 403 ``PERMISSION_DENIED``, an unreachable operator → 503;
5. records the call for settlement exactly once per application and ``x-correlator`` (the
   same correlator goes to the operator, whose ledger is idempotent on it too).

Settlement is read per partner operator at ``GET /admin/settlement`` (aggregator admin
credential). Applications cannot run CIBA at the aggregator itself (it has no subscribers);
consent is collected on the serving operator, which is where the data is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from operators import CamaraError, Database, LegalBasis, SubscriberBase, admin_guard
from operators.camara import CORRELATOR_HEADER, Operation, correlator_for, operation_named
from operators.gateway import (
    Admission,
    BearerAuthenticator,
    InMemoryPlans,
    install_camara_error_handlers,
    is_billable,
)
from operators.identity import IdentityServer, build_identity_router, install_oauth_error_handlers
from operators.policies import NoThrottle

from .client import ApplicationClient, Endpoints, OAuthClientError
from .config import AggregatorConfig, FederatedOperator, FederationConfig
from .data_centres import DATA_CENTRE_HEADER
from .discovery_fallback import FIRST_SEARCH, Stale, next_search, stale_signal
from .network_id import HttpNetworkId
from .protection import TELCO_FINDER_SCOPE, TELCO_ROUTING_SCOPE, BearerProtection
from .telco_finder import (
    HttpSecondLevelFinder,
    SearchAnswer,
    SearchMode,
    SearchRequest,
    Target,
    TelcoFinder,
    build_telco_finder_router,
)
from .telco_routing import RoutingTable, fetch_routing_table
from .tracing import Hop, Tracer, no_trace
from .types import Clock

FORWARDED: tuple[str, ...] = (
    "checkSimSwap",
    "retrieveSimSwapDate",
    "getReachabilityStatus",
    "getRoamingStatus",
    "verifyLocation",
    "retrieveLocation",
    "KYC_Match",
)
"""The operations (ids of the operation table) the aggregator routes: those whose body names
the device, so it can find the serving operator before any session exists there."""

TOKEN_MARGIN = 5.0
"""Seconds before its expiry a cached operator token is no longer used."""

SETTLEMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS aggregator_settlement (
    application TEXT NOT NULL,
    correlator TEXT NOT NULL,
    operator TEXT NOT NULL,
    served_as TEXT NOT NULL,
    api TEXT NOT NULL,
    operation TEXT NOT NULL,
    status INTEGER NOT NULL,
    billable INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (application, correlator)
);
"""


@dataclass(frozen=True)
class SettledCall:
    """One application call an operator answered, as the aggregator settles it."""

    application: str
    correlator: str
    operator: str
    served_as: str
    api: str
    operation: str
    status: int
    billable: bool
    at: float


class SettlementLedger:
    """Cross-operator usage in the aggregator's database: one row per (application, call)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SETTLEMENT_SCHEMA)

    def record(self, call: SettledCall) -> bool:
        """Record a call once; a retry with the same correlator may only turn it billable."""
        changed = self.db.execute(
            "INSERT INTO aggregator_settlement (application, correlator, operator, served_as,"
            " api, operation, status, billable, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (application, correlator) DO UPDATE SET status = excluded.status,"
            " billable = 1, operator = excluded.operator, served_as = excluded.served_as,"
            " at = excluded.at WHERE aggregator_settlement.billable = 0 AND excluded.billable = 1",
            (
                call.application,
                call.correlator,
                call.operator,
                call.served_as,
                call.api,
                call.operation,
                call.status,
                int(call.billable),
                call.at,
            ),
        )
        return changed == 1

    def calls(self, operator: str | None = None) -> list[SettledCall]:
        sql = "SELECT * FROM aggregator_settlement"
        params: tuple[str, ...] = ()
        if operator is not None:
            sql += " WHERE operator = ?"
            params = (operator,)
        return [
            SettledCall(
                r["application"],
                r["correlator"],
                r["operator"],
                r["served_as"],
                r["api"],
                r["operation"],
                r["status"],
                bool(r["billable"]),
                r["at"],
            )
            for r in self.db.all(sql + " ORDER BY at, correlator", params)
        ]

    def totals(self) -> dict[str, dict[str, int]]:
        """Per partner operator: calls answered, billable calls, per application too."""
        rows = self.db.all(
            "SELECT operator, application, COUNT(*) AS calls, SUM(billable) AS billable"
            " FROM aggregator_settlement GROUP BY operator, application ORDER BY operator"
        )
        totals: dict[str, dict[str, int]] = {}
        for row in rows:
            entry = totals.setdefault(row["operator"], {"calls": 0, "billable": 0})
            entry["calls"] += int(row["calls"])
            entry["billable"] += int(row["billable"] or 0)
        return totals


@dataclass
class _CachedToken:
    token: str
    expires_at: float


@dataclass(frozen=True)
class Partner:
    """A member operator as the aggregator reaches it: its config and the aggregator's client."""

    config: FederatedOperator
    client: ApplicationClient


def _device_target(body: dict[str, Any]) -> tuple[Target, str]:
    """The device a two-legged call names, as a Telco Finder target and a subject hint."""
    device = body.get("device")
    number = body.get("phoneNumber")
    if isinstance(device, dict):
        if number is None and isinstance(device.get("phoneNumber"), str):
            number = device["phoneNumber"]
        ipv4 = device.get("ipv4Address")
        if number is None and isinstance(ipv4, dict) and ipv4.get("publicAddress"):
            try:
                target = Target.model_validate({"ipv4Address": ipv4})
            except ValidationError as error:
                raise CamaraError(
                    400, "INVALID_ARGUMENT", "device.ipv4Address is not valid."
                ) from error
            return target, f"ipport:{ipv4['publicAddress']}"
        if number is None and device.get("ipv6Address"):
            raise CamaraError(
                422,
                "UNSUPPORTED_IDENTIFIER",
                "The aggregator routes devices by phone number or IPv4 address.",
            )
    if number is None:
        raise CamaraError(422, "MISSING_IDENTIFIER", "The device cannot be identified.")
    try:
        target = Target.model_validate({"phoneNumber": number})
    except ValidationError as error:
        raise CamaraError(
            400, "INVALID_ARGUMENT", "phoneNumber must be an E.164 number like +34600000001."
        ) from error
    return target, f"tel:{number}"


def _without_device(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("phoneNumber", "device")}


def _refusal(operator: str, error: OAuthClientError) -> CamaraError:
    if error.status >= 500:
        return CamaraError(503, "UNAVAILABLE", f"{operator}'s authorization server failed.")
    if error.error == "unknown_user_id" or "unknown subject" in error.description:
        return CamaraError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")
    return CamaraError(
        403,
        "PERMISSION_DENIED",
        f"{operator} refused the aggregator's token request: "
        f"{error.error} {error.description}".rstrip(),
    )


class Aggregator:
    """The aggregator's state and logic; :func:`create_aggregator_app` is its HTTP face."""

    def __init__(
        self,
        config: AggregatorConfig,
        federation: FederationConfig,
        http: httpx.AsyncClient,
        *,
        clock: Clock = time.time,
        storage: str | None = None,
        tracer: Tracer = no_trace,
    ) -> None:
        identity_config = config.identity_config()
        if storage is not None:
            identity_config = identity_config.model_copy(update={"storage": storage})
        self.config = config
        self.federation = federation
        self.http = http
        self.clock = clock
        self.tracer = tracer
        self.db = Database(identity_config.storage)
        self.identity = IdentityServer(
            identity_config, self.db, SubscriberBase(identity_config, self.db, clock=clock), clock
        )
        self.authenticator = BearerAuthenticator(self.identity, clock)
        # Authorises like an operator's gateway; throttling is the operators' (plans are theirs).
        self.admission = Admission(InMemoryPlans.of(identity_config), NoThrottle(), clock)
        self.settlement = SettlementLedger(self.db)
        self.partners: dict[str, Partner] = {}
        self.finder: TelcoFinder | None = None
        self._tokens: dict[tuple[str, str, str, str], _CachedToken] = {}
        self.ready = False

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def api_root(self) -> str:
        return self.config.api_root

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign an assertion with the aggregator's own key (the one its JWKS publishes)."""
        return self.identity.keys.sign(claims, typ="JWT")

    # -- start-up -----------------------------------------------------------------------------

    async def start(self, *, timeout: float = 30.0) -> None:
        """Discover every member, collect their routing tables, build the Telco Finder.

        Retries until each operator answers and has registered the aggregator (under
        ``ogsim up`` parties start in any order).
        """
        deadline = time.monotonic() + timeout
        tables: dict[str, RoutingTable] = {}
        for operator in self.federation.operators:
            partner = await self._partner(operator, deadline)
            self.partners[operator.id] = partner
            while True:
                try:
                    reply = await partner.client.client_credentials(TELCO_ROUTING_SCOPE)
                    tables[operator.id] = await fetch_routing_table(
                        self.http,
                        operator.api_root + "/telco-routing/v1/routing",
                        reply["access_token"],
                    )
                    break
                except (OAuthClientError, httpx.HTTPError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        network_id = {
            c.code: HttpNetworkId(self.http, c.network_id_url)
            for c in self.federation.countries
            if c.portability and c.network_id_url
        }
        self.finder = TelcoFinder.for_federation(
            self.federation,
            tables,
            network_id=network_id,
            second_level=HttpSecondLevelFinder(self.http, self._finder_token),
        )
        self.ready = True

    async def _partner(self, operator: FederatedOperator, deadline: float) -> Partner:
        while True:
            try:
                response = await self.http.get(
                    operator.issuer_url.rstrip("/") + "/.well-known/openid-configuration"
                )
                response.raise_for_status()
                endpoints = Endpoints.from_metadata(response.json())
                break
            except (httpx.HTTPError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        client = ApplicationClient(
            self.id, None, endpoints, self.http, clock=self.clock, signer=self.sign
        )
        return Partner(operator, client)

    async def _finder_token(self, url: str) -> str | None:
        partner = next(
            (p for p in self.partners.values() if url.startswith(p.config.api_root)), None
        )
        if partner is None:
            return None
        reply = await partner.client.client_credentials(TELCO_FINDER_SCOPE)
        return str(reply["access_token"])

    # -- one call -----------------------------------------------------------------------------

    async def forward(self, request: Request, operation_id: str) -> Response:
        """Serve one CAMARA call for an application (steps 1-5 of the module docstring)."""
        correlator = correlator_for(request.headers.get(CORRELATOR_HEADER))
        claims = self.authenticator.authenticate(request.headers.get("authorization"))
        operation = operation_named(operation_id)
        context = self.admission.authorize(
            self.identity.grant_facts(claims), operation, correlator=correlator
        )
        application = context.client_id
        body = _json_object(await request.body())
        target, subject = _device_target(body)
        assert context.purpose is not None
        scope = " ".join((*operation.scopes[0], context.purpose))
        method, template = operation.method, operation.template
        self.tracer(Hop(application, self.id, f"{method} {template} {target.describe()}"))

        response: httpx.Response | None = None
        answer: SearchAnswer | None = None
        mode: SearchMode | None = FIRST_SEARCH
        phone = target.phone_number is not None
        while mode is not None:
            try:
                answer = await self._find(target, mode)
            except CamaraError as error:
                signal = stale_signal(Stale.FINDER, error.status)
                mode = next_search(mode, signal, phone_number=phone)
                if mode is None:
                    raise
                continue  # the finder's records may predate a port: ask Network Id
            partner = self._partner_for(answer)
            try:
                token = await self._token(partner, subject, scope, context.purpose, application)
            except CamaraError as error:
                signal = stale_signal(Stale.TOKEN, error.status)
                retry = next_search(mode, signal, phone_number=phone)
                if retry is not None:
                    mode = retry
                    continue
                self._settle(application, correlator, partner, answer, operation, error.status)
                raise
            # The operator meters by (client, correlator) and the hub is one client for all
            # applications: scope the correlator by application so two apps never collide.
            response = await self._call(
                partner,
                method,
                template,
                _without_device(body),
                token,
                f"{application}:{correlator}"[:256],
            )
            if response.status_code in (401, 403):
                self._tokens.pop((partner.config.id, application, subject, scope), None)
            signal = stale_signal(Stale.API, response.status_code, _code(response))
            mode = next_search(mode, signal, phone_number=phone)
        assert response is not None and answer is not None
        self._settle(application, correlator, partner, answer, operation, response.status_code)
        headers = {CORRELATOR_HEADER: correlator}
        site = response.headers.get(DATA_CENTRE_HEADER)
        if site:
            headers[DATA_CENTRE_HEADER] = site
        return Response(
            response.content,
            status_code=response.status_code,
            headers=headers,
            media_type=response.headers.get("content-type", "application/json"),
        )

    async def _find(self, target: Target, mode: SearchMode) -> SearchAnswer:
        assert self.finder is not None, "the aggregator has not started"
        started = time.perf_counter()
        request = SearchRequest(
            target=target,
            includeApiRoot=True,
            includeAuthProviderConfiguration=True,
            portabilitySearchMode=mode,
        )
        try:
            answer = await self.finder.search(request)
        except CamaraError as error:
            self.tracer(
                Hop(
                    self.id,
                    f"{self.id} Telco Finder",
                    f"search {target.describe()} ({mode})",
                    f"{error.status}",
                    _ms(started),
                    "nobody serves it",
                )
            )
            if error.status == 404:
                raise CamaraError(
                    404, "IDENTIFIER_NOT_FOUND", "No operator of the federation serves this device."
                ) from error
            raise
        self.tracer(
            Hop(
                self.id,
                f"{self.id} Telco Finder",
                f"search {target.describe()} ({mode})",
                answer.operator_id,
                _ms(started),
            )
        )
        return answer

    def _partner_for(self, answer: SearchAnswer) -> Partner:
        for partner in self.partners.values():
            config = partner.config
            if answer.operator_id == config.id or (
                answer.auth_provider_configuration == config.auth_provider_configuration
            ):
                return partner
        raise CamaraError(
            503, "UNAVAILABLE", f"{answer.operator_id} serves this device but is not a partner."
        )

    async def _token(
        self, partner: Partner, subject: str, scope: str, purpose: str, application: str
    ) -> str:
        """The serving operator's token for one application's request about one subscriber.

        Cached per application: a subscriber's consent to one application must never serve
        another, so each application's first consent-based call asks the handset itself.
        """
        operator = partner.config
        key = (operator.id, application, subject, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self.clock():
            return cached.token
        policy = operator.purpose(purpose)
        consent = policy is not None and policy.legal_basis is LegalBasis.CONSENT
        started = time.perf_counter()
        try:
            if consent:
                reply = await partner.client.ciba(
                    subject,
                    scope,
                    binding_message=f"{self.id}/{application}"[:64],
                    on_behalf_of=application,
                )
            else:
                reply = await partner.client.jwt_bearer(subject, scope)
        except OAuthClientError as error:
            self.tracer(
                Hop(
                    self.id,
                    operator.id,
                    _grant_text(consent, subject),
                    f"{error.status} {error.error}",
                    _ms(started),
                )
            )
            raise _refusal(operator.id, error) from error
        except httpx.TransportError as error:
            raise CamaraError(503, "UNAVAILABLE", f"{operator.id} is unreachable.") from error
        self.tracer(
            Hop(
                self.id,
                operator.id,
                _grant_text(consent, subject),
                "200 token",
                _ms(started),
                "the subscriber's handset approved" if consent else "",
            )
        )
        token = str(reply["access_token"])
        lifetime = float(reply.get("expires_in", 60))
        self._tokens[key] = _CachedToken(token, self.clock() + lifetime - TOKEN_MARGIN)
        return token

    async def _call(
        self,
        partner: Partner,
        method: str,
        template: str,
        body: dict[str, Any],
        token: str,
        correlator: str,
    ) -> httpx.Response:
        operator = partner.config
        started = time.perf_counter()
        try:
            response = await self.http.request(
                method,
                operator.api_root + template,
                json=body,
                headers={"Authorization": f"Bearer {token}", CORRELATOR_HEADER: correlator},
            )
        except httpx.TransportError as error:
            self.tracer(
                Hop(self.id, operator.id, f"{method} {template}", "unreachable", _ms(started))
            )
            raise CamaraError(503, "UNAVAILABLE", f"{operator.id} is unreachable.") from error
        site = response.headers.get(DATA_CENTRE_HEADER)
        code = _code(response)
        status = f"{response.status_code}" + (f" {code}" if code else "")
        self.tracer(
            Hop(
                self.id,
                operator.id,
                f"{method} {template}",
                status,
                _ms(started),
                f"served in {site}" if site else "",
            )
        )
        return response

    def _settle(
        self,
        application: str,
        correlator: str,
        partner: Partner,
        answer: SearchAnswer,
        operation: Operation,
        status: int,
    ) -> None:
        self.settlement.record(
            SettledCall(
                application,
                correlator,
                partner.config.id,
                answer.operator_id,
                operation.api,
                operation.operation_id,
                status,
                is_billable(operation, status),
                self.clock(),
            )
        )

    def close(self) -> None:
        self.db.close()


def _grant_text(consent: bool, subject: str) -> str:
    return f"CIBA {subject}" if consent else f"token (JWT bearer, sub {subject})"


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise CamaraError(400, "INVALID_ARGUMENT", "The body is not JSON.") from error
    if not isinstance(body, dict):
        raise CamaraError(400, "INVALID_ARGUMENT", "The body must be a JSON object.")
    return body


def create_aggregator_app(
    aggregator: Aggregator, *, extra_routers: Mapping[str, APIRouter] | None = None
) -> FastAPI:
    """The aggregator's public face: identity server, CAMARA APIs, Telco Finder, admin.

    ``extra_routers`` (prefix → router) mounts services hosted next to it, such as the
    national Network Id services under ``ogsim up``.
    """
    config = aggregator.config
    app = FastAPI(
        title=f"{config.display_name} ({config.id})",
        description="An ogsim aggregator: one entry point for every operator.",
    )
    install_camara_error_handlers(app)
    identity_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_oauth_error_handlers(identity_app)
    identity_app.include_router(build_identity_router(aggregator.identity))
    app.mount(_path(aggregator.identity.issuer), identity_app)

    for operation_id in FORWARDED:
        operation = operation_named(operation_id)
        app.add_api_route(
            operation.template,
            _forwarder(aggregator, operation_id),
            methods=[operation.method],
            name=operation_id,
            operation_id=operation_id,
        )

    class _Finder:
        async def search(self, request: SearchRequest) -> SearchAnswer:
            assert aggregator.finder is not None
            return await aggregator.finder.search(request)

    app.include_router(
        build_telco_finder_router(
            _Finder(), BearerProtection(aggregator.identity, TELCO_FINDER_SCOPE)
        )
    )
    admin = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(config.admin_secret))]
    )

    @admin.get("/settlement")
    def settlement() -> list[dict[str, Any]]:
        return [
            {"aggregator": config.id, "operator": operator, **numbers}
            for operator, numbers in aggregator.settlement.totals().items()
        ]

    @admin.get("/settlement/{operator}")
    def settlement_of(operator: str) -> dict[str, Any]:
        calls = aggregator.settlement.calls(operator)
        return {
            "aggregator": config.id,
            "operator": operator,
            "calls": len(calls),
            "billable": sum(c.billable for c in calls),
            "records": [
                {
                    "application": c.application,
                    "correlator": c.correlator,
                    "servedAs": c.served_as,
                    "api": c.api,
                    "operation": c.operation,
                    "status": c.status,
                    "billable": c.billable,
                    "at": c.at,
                }
                for c in calls
            ],
        }

    app.include_router(admin)

    @app.get("/health")
    def health() -> JSONResponse:
        status = "UP" if aggregator.ready else "STARTING"
        return JSONResponse(
            {"status": status, "aggregator": config.id},
            status_code=200 if aggregator.ready else 503,
        )

    for prefix, router in (extra_routers or {}).items():
        app.include_router(router, prefix=prefix)
    return app


def _forwarder(aggregator: Aggregator, operation_id: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await aggregator.forward(request, operation_id)

    return endpoint


def _path(issuer: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(issuer).path.rstrip("/") or "/oauth"
