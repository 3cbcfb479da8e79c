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
5. records the call for settlement exactly once per application and key: the application's
   ``Idempotency-Key``, else one the hub chose (the same key, scoped by the application, goes
   to the operator as its ``Idempotency-Key``, so the operator's ledger and the hub's books
   hold the call under one key). The application's ``x-correlator`` goes along as it came:
   it correlates, and one value may span a whole flow.

Settlement is read per partner operator at ``GET /admin/settlement`` (aggregator admin
credential), and as priced monthly statements at ``GET /admin/statements?month=YYYY-MM``
(:mod:`federation.settlement`). Applications cannot run CIBA at the aggregator itself (it has
no subscribers); consent is collected on the serving operator, which is where the data is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import uuid
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError

from operators import (
    REPLAY_WINDOW,
    TEST_NUMBERS,
    CamaraError,
    Database,
    LegalBasis,
    NumberPlan,
    SubscriberBase,
    admin_guard,
)
from operators.camara import (
    CORRELATOR_HEADER,
    IDEMPOTENCY_HEADER,
    Operation,
    correlator_for,
    idempotency_key,
    new_correlator,
    operation_named,
)
from operators.gateway import (
    Admission,
    BearerAuthenticator,
    InMemoryPlans,
    ThreatLimits,
    install_camara_error_handlers,
    is_billable,
    read_json_object,
    sandbox_refusal,
)
from operators.identity import (
    IdentityServer,
    build_identity_router,
    callback_refusal,
    install_oauth_error_handlers,
)
from operators.integrator import CloudEventNotifier
from operators.policies import NoThrottle
from operators.portal import PortalHost, install_developer_portal
from operators.web import install_api_docs

from .aggregator_metrics import (
    CONTENT_TYPE,
    FINDER,
    FORWARD,
    TOKEN,
    AggregatorMetrics,
    CallTiming,
    name_call,
)
from .authorization_relay import (
    CALLBACK_PATH,
    NO_STORE,
    RELAYED_API,
    AuthorizationRelay,
    ServingOperator,
    query_params,
)
from .client import ApplicationClient, Endpoints, OAuthClientError
from .config import AggregatorConfig, FederatedOperator, FederationConfig
from .data_centres import DATA_CENTRE_HEADER, DATA_CENTRE_OPT_IN
from .discovery_fallback import FIRST_SEARCH, Stale, next_search, stale_signal
from .network_id import HttpNetworkId
from .notification_relay import LIMITS as NOTIFICATION_LIMITS
from .notification_relay import PATH as NOTIFICATION_PATH
from .notification_relay import NotificationRelay
from .protection import TELCO_FINDER_SCOPE, TELCO_ROUTING_SCOPE, BearerProtection
from .settlement import build_aggregator_statements_router, operator_correlator
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
    "createSession",
    "retrieveSessionsByDevice",
    "getSession",
    "deleteSession",
    "extendQosSessionDuration",
    "retrieveQoSProfiles",
    "getQosProfile",
    "phoneNumberVerify",
    "phoneNumberShare",
    "retrieveStatus",
)
"""The operations (ids of the operation table) the aggregator routes. Those whose body names
the device go to the operator the Telco Finder names; a QoD session's operations go where the
session was created (the hub's session table); QoS Profiles without a device are answered
from every partner (see :meth:`Aggregator._everywhere`); Number Verification goes to the
operator that authenticated the device, with the token it gave the hub (see
:mod:`federation.authorization_relay`). Consent Info goes to the operator serving the number,
with a token the hub asked for on behalf of the application, so the operator answers about
that application's consents (and its capture page names it)."""

SESSION_OPERATIONS: tuple[str, ...] = ("getSession", "deleteSession", "extendQosSessionDuration")
"""Operations that name a QoD session by the id the hub handed out (``{sessionId}``)."""

SESSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS aggregator_qod_sessions (
    session_id TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    operator TEXT NOT NULL,
    served_as TEXT NOT NULL,
    operator_session_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at REAL NOT NULL,
    deleted_at REAL,
    UNIQUE (operator, operator_session_id)
);
"""

_T = TypeVar("_T")

TOKEN_MARGIN = 5.0
"""Seconds before its expiry a cached operator token is no longer used."""

TOKEN_SWEEP = 1024
"""Cached tokens at which the first sweep of the expired ones runs."""

CONSENT_WAIT = 30.0
"""Seconds a call waits for the subscriber to answer an operator's consent prompt (CIBA).
The prompt stays open after that, until the operator lets it expire, and the call's retry
waits on the same prompt: the subscriber is asked once, not once per retry. A retry under
the call's Idempotency-Key sent while the call itself is still waiting gets 409 (one request
at a time under a key); once the call has answered, the retry joins the prompt."""

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
    """The call's key (the application's ``Idempotency-Key``, else one the hub chose): the
    column's name dates from when the ``x-correlator`` was that key."""
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
        """Record a call once; a retry under the same key may only turn it billable."""
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

    def settled(self, application: str, correlator: str) -> tuple[str, str, bool] | None:
        """The (operator, operation, billable) a call under this key was settled with."""
        row = self.db.one(
            "SELECT operator, operation, billable FROM aggregator_settlement"
            " WHERE application = ? AND correlator = ?",
            (application, correlator),
        )
        if row is None:
            return None
        return str(row["operator"]), str(row["operation"]), bool(row["billable"])

    def any_settled(self, application: str, correlators: list[str]) -> bool:
        """Whether a call under any of these keys was settled: one query for the keys of a
        fan-out, which every first call under a new key asks about."""
        if not correlators:
            return False
        marks = ", ".join("?" * len(correlators))
        row = self.db.one(
            "SELECT 1 FROM aggregator_settlement"
            f" WHERE application = ? AND correlator IN ({marks}) LIMIT 1",
            (application, *correlators),
        )
        return row is not None

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


@dataclass(frozen=True)
class RoutedSession:
    """A QoD session created through the hub: the id the application holds, and where it is.

    The hub hands out its own UUID, so two operators' session ids can never collide in an
    application's eyes, and each later call about the session goes to the operator holding it.
    """

    session_id: str
    application: str
    operator: str
    served_as: str
    operator_session_id: str
    subject: str


class SessionTable:
    """The hub's QoD sessions in its database (kept across restarts): hub id → operator's id.

    A deleted session stays as a tombstone for the replay window, with the key its DELETE
    was sent under: a DELETE retried under that Idempotency-Key must still reach the operator
    that replays its 204; every other request finds the session gone. Tombstones past the
    window are dropped at each delete and by the hub's housekeeping.
    """

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock
        db.ensure_schema(SESSION_SCHEMA)
        db.ensure_column("aggregator_qod_sessions", "deleted_at", "REAL")
        db.ensure_column("aggregator_qod_sessions", "deleted_under", "TEXT")
        db.ensure_schema(  # the purge of old tombstones, at each delete, reads no live row
            "CREATE INDEX IF NOT EXISTS aggregator_qod_sessions_deleted"
            " ON aggregator_qod_sessions (deleted_at);"
        )

    def add(self, session: RoutedSession, at: float) -> RoutedSession:
        """Record a session, once: the same operator session keeps the hub id it first got."""
        self.db.execute(
            "INSERT INTO aggregator_qod_sessions (session_id, application, operator, served_as,"
            " operator_session_id, subject, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (operator, operator_session_id) DO NOTHING",
            (
                session.session_id,
                session.application,
                session.operator,
                session.served_as,
                session.operator_session_id,
                session.subject,
                at,
            ),
        )
        # Read back tombstones too: a create replayed after its session was deleted finds the
        # row it first made (its hub id), not none.
        row = self.db.one(
            "SELECT * FROM aggregator_qod_sessions WHERE operator = ? AND operator_session_id = ?",
            (session.operator, session.operator_session_id),
        )
        assert row is not None  # inserted just now, or there already
        return _routed(row)

    def get(self, session_id: str) -> RoutedSession | None:
        """The session, unless it was deleted."""
        row = self.db.one(
            "SELECT * FROM aggregator_qod_sessions WHERE session_id = ? AND deleted_at IS NULL",
            (session_id,),
        )
        return None if row is None else _routed(row)

    def deleted(self, session_id: str, key: str) -> RoutedSession | None:
        """The session's tombstone, while a DELETE retried under ``key``, the key it was
        deleted under, may still be replayed. A tombstone from before keys were kept (NULL)
        answers any key, as then; one of a session found gone (``''``) answers none."""
        row = self.db.one(
            "SELECT * FROM aggregator_qod_sessions WHERE session_id = ?"
            " AND (deleted_under = ? OR deleted_under IS NULL) AND deleted_at > ?",
            (session_id, key, self.clock() - REPLAY_WINDOW),
        )
        return None if row is None else _routed(row)

    def at_operator(self, operator: str, operator_session_id: str) -> RoutedSession | None:
        row = self.db.one(
            "SELECT * FROM aggregator_qod_sessions WHERE operator = ? AND operator_session_id = ?"
            " AND deleted_at IS NULL",
            (operator, operator_session_id),
        )
        return None if row is None else _routed(row)

    def forget(self, session_id: str, deleted_under: str | None = None) -> None:
        """The session is gone at its operator (deleted under the key ``deleted_under``, or
        found gone): a tombstone now, and tombstones past the replay window are dropped."""
        now = self.clock()
        with self.db.transaction():
            self.db.execute(
                "UPDATE aggregator_qod_sessions SET deleted_at = ?, deleted_under = ?"
                " WHERE session_id = ? AND deleted_at IS NULL",
                (now, deleted_under or "", session_id),
            )
            self.db.execute(
                "DELETE FROM aggregator_qod_sessions WHERE deleted_at <= ?",
                (now - REPLAY_WINDOW,),
            )


def _routed(row: Any) -> RoutedSession:
    return RoutedSession(
        row["session_id"],
        row["application"],
        row["operator"],
        row["served_as"],
        row["operator_session_id"],
        row["subject"],
    )


@dataclass(frozen=True)
class _Admitted:
    """One application call the hub admitted: who, what, under which correlator, key and
    scope."""

    correlator: str
    key: str
    """What the call is settled under: the application's ``Idempotency-Key``, else one the
    hub chose."""
    application: str
    operation: Operation
    purpose: str
    scope: str
    token_id: str
    """The ``jti`` of the application's hub token."""
    sandbox: bool = False
    """A sandbox application of the hub's portal: it reaches the operators' test numbers only."""
    settled_with: str | None = None
    """The operator that billed an earlier call under the same key: a retry must go there
    too (another operator would bill a call the hub's books hold once)."""
    retried: bool = False
    """The hub settled an earlier call of this operation under the same key."""
    fanned_out: bool = False
    """A device-less QoS Profiles call went to every partner under this key (its rows are
    ``<key>/<partner>``): only that call may run under it again."""


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
            # The Telco Finder routes by the public address (and port); a private address,
            # CAMARA's other way to tell the device behind it, is for the serving operator,
            # which resolves the device by it, as the token's subject does here.
            public = {k: ipv4[k] for k in ("publicAddress", "publicPort") if k in ipv4}
            private = ipv4.get("privateAddress")
            try:
                target = Target.model_validate({"ipv4Address": public})
                if private is not None:
                    if not isinstance(private, str):
                        raise ValueError("privateAddress is a string")
                    private = str(ipaddress.IPv4Address(private))
            except (ValidationError, ValueError) as error:
                raise CamaraError(
                    400, "INVALID_ARGUMENT", "device.ipv4Address is not valid."
                ) from error
            return target, f"ipport:{private or ipv4['publicAddress']}"
        if number is None and (device.get("ipv6Address")
                               or device.get("networkAccessIdentifier")):
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
    """What the application is told when an operator's authorization server turned the
    aggregator down. Only a refusal about the request is the application's 403 or 404: the
    operator limiting the aggregator's own token requests is a 429 to back off from (with the
    operator's ``Retry-After``), and a server that failed is a 503."""
    if error.status >= 500:
        return CamaraError(503, "UNAVAILABLE", f"{operator}'s authorization server failed.")
    if error.status == 429 or error.error == "too_many_requests":
        wait = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        return CamaraError(
            429,
            "TOO_MANY_REQUESTS",
            f"{operator} is limiting the aggregator's token requests; retry later.",
            headers=wait,
        )
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
        consent_wait: float = CONSENT_WAIT,
    ) -> None:
        identity_config = config.identity_config()
        if storage is not None:
            identity_config = identity_config.model_copy(update={"storage": storage})
        self.config = config
        self.federation = federation
        self._number_plans = [NumberPlan(op.operator_config()) for op in federation.operators]
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
        self.sessions = SessionTable(self.db, clock)
        self._keys_under_way: set[tuple[str, str]] = set()
        """(application, key) of the keyed calls being served now."""
        self.notifier = CloudEventNotifier(
            f"{config.api_root}/quality-on-demand/v1/sessions", clock=clock
        )
        self.notifier.use_http(http)  # the aggregator's own client, closed by its owner
        self.notifications = NotificationRelay(
            self.db, api_root=config.api_root, notifier=self.notifier, clock=clock
        )
        self.relay = AuthorizationRelay(
            self.identity, self.db, locate=self._locate, partner=self._client_at, clock=clock
        )
        self.limits = ThreatLimits()  # bodies read bounded, as at an operator's gateway
        self.metrics = AggregatorMetrics()
        self.partners: dict[str, Partner] = {}
        self.finder: TelcoFinder | None = None
        self._tokens: dict[tuple[str, str, str, str], _CachedToken] = {}
        self._sweep_at = TOKEN_SWEEP
        self.consent_wait = consent_wait
        self._consents: dict[tuple[str, str, str, str], asyncio.Task[dict[str, Any]]] = {}
        """The CIBA rounds under way, by the token they will give: calls that need the same
        token wait on one round (one prompt on the subscriber's handset)."""
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
            second_level=HttpSecondLevelFinder(
                self.http, self._finder_token, self._forget_finder_token
            ),
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

    def _finder_partner(self, url: str) -> Partner | None:
        return next((p for p in self.partners.values() if url.startswith(p.config.api_root)), None)

    async def _finder_token(self, url: str) -> str | None:
        """The hub's token at the operator whose second-level finder ``url`` is, cached like
        every two-legged token (a grant per search cost the operator a client assertion's
        check and a token's signature, and the hub a tenth of its time)."""
        partner = self._finder_partner(url)
        if partner is None:
            return None
        try:
            return await self._two_legged(partner, TELCO_FINDER_SCOPE)
        except CamaraError as error:
            # the hub's own credentials failed, not the application's request: neither a
            # refusal of the application nor a sign that the number moved
            raise CamaraError(
                503, "UNAVAILABLE", f"{partner.config.id}'s Telco Finder is unavailable."
            ) from error

    def _forget_finder_token(self, url: str) -> None:
        """The operator refused the cached token (revoked, or its keys rotated)."""
        partner = self._finder_partner(url)
        if partner is not None:
            self._tokens.pop((partner.config.id, "", "", TELCO_FINDER_SCOPE), None)

    # -- one call -----------------------------------------------------------------------------

    async def forward(self, request: Request, operation_id: str) -> Response:
        """Serve one CAMARA call for an application (steps 1-5 of the module docstring)."""
        call = self._admit(request, operation_id)
        if not request.headers.get(IDEMPOTENCY_HEADER):
            return await self._serve(request, call)
        call = self._retry_of(call)
        with self._holding(call.application, [call.key]):
            return await self._serve(request, call)

    @contextmanager
    def _holding(self, application: str, keys: list[str]) -> Iterator[None]:
        """One request at a time under each of an application's keys: two at once, bound for
        two operators, would each be billed by its operator, and the hub's books hold one.
        A device-less QoS Profiles call holds the keys it settles at each partner too
        (``<key>/<partner>``), which an application may also send as keys of its own."""
        held = [(application, key) for key in keys]
        if any(pair in self._keys_under_way for pair in held):
            raise CamaraError(
                409,
                "CONFLICT",
                "Idempotency-Key: another request under this value is in progress;"
                " retry it later.",
            )
        self._keys_under_way.update(held)
        try:
            yield
        finally:
            self._keys_under_way.difference_update(held)

    async def _serve(self, request: Request, call: _Admitted) -> Response:
        operation_id = call.operation.operation_id
        operation = call.operation
        if call.fanned_out and operation.api != "qos-profiles":
            raise _key_taken()
        if operation_id in SESSION_OPERATIONS:
            return await self._session_call(request, call)
        if operation.api == RELAYED_API:
            return await self._relayed_call(request, call)
        body = await self._body(request) if operation.request is not None else {}
        if operation.api == "qos-profiles":
            if not _names_device(body):
                if call.retried:  # the key holds a call that named a device
                    raise _key_taken()
                return await self._everywhere(request, call, body)
            if call.fanned_out:
                raise _key_taken()
        if operation_id == "retrieveStatus":
            self._check_callback(call, body)
        session_id: str | None = None
        if operation_id == "createSession":  # the operator's notifications come to the hub
            session_id = str(uuid.uuid4())
            body = self.notifications.prepare(body, session_id, call.application, operation.request)
        try:
            response, partner, answer, subject = await self._device_call(call, body)
        except BaseException:
            if session_id is not None:
                self.notifications.drop(session_id)
            raise
        content = response.content
        if session_id is not None:
            if response.status_code < 300:
                content = self._created(call, partner, answer, subject, response, session_id)
            else:
                self.notifications.drop(session_id)
        elif response.status_code < 300 and operation_id == "retrieveSessionsByDevice":
            content = self._mine(call, partner, response)
        self._settle(call, partner, answer.operator_id, response.status_code)
        return self._answer(request, call, response, content)

    def _retry_of(self, call: _Admitted) -> _Admitted:
        """An idempotency key the application already used: the hub's settlement row is one
        per (application, key), so only the same operation at the same operator may run under
        it again (the operator then replays, or refuses another request)."""
        previous = self.settlement.settled(call.application, call.key)
        if previous is None:
            fanned_out = self.settlement.any_settled(
                call.application, [f"{call.key}/{partner}" for partner in self.partners]
            )
            return replace(call, fanned_out=fanned_out)
        operator, operation, billable = previous
        if operation != call.operation.operation_id:
            raise _key_taken()
        # an unbilled answer binds nobody: the retry may find the device elsewhere (a port
        # the finder learns of), and the row then takes the operator that bills it
        return replace(call, settled_with=operator if billable else None, retried=True)

    def _test_number(self, number: str) -> bool:
        """Whether some operator of the federation documents ``number`` as a test number (a
        sandbox application names devices by phone number, so its reach can be checked here,
        before any operator is asked)."""
        return any(plan.locate(number)[1] is not None for plan in self._number_plans)

    def _check_callback(self, call: _Admitted, body: dict[str, Any]) -> None:
        """Consent Info's ``callbackUrl`` is checked here, against the application's own
        registration, which only the hub knows (the operator checks the rest)."""
        url = body.get("callbackUrl")
        if not isinstance(url, str):
            return  # absent, or the operator refuses the body as malformed
        reason = callback_refusal(url, self.identity.clients.get(call.application))
        if reason is not None:
            raise CamaraError(
                403,
                "CONSENT_INFO.INVALID_CALLBACK_URL",
                f"The provided callback URL is invalid: {reason}.",
            )

    async def _body(self, request: Request) -> dict[str, Any]:
        """The JSON object body, read with the gateway's bounds (size, time, depth)."""
        return await read_json_object(request, self.limits, empty_is_object=True)

    def _admit(self, request: Request, operation_id: str) -> _Admitted:
        """Authenticate and authorise the application's token as an operator gateway would."""
        operation = operation_named(operation_id)
        correlator = correlator_for(request.headers.get(CORRELATOR_HEADER), operation.correlator)
        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        if key is None:  # a correlator the hub made up is unique already
            key = new_correlator() if request.headers.get(CORRELATOR_HEADER) else correlator
        claims = self.authenticator.authenticate(request.headers.get("authorization"))
        context = self.admission.authorize(
            self.identity.grant_facts(claims), operation, correlator=correlator
        )
        assert context.purpose is not None
        scope = " ".join((*operation.scopes[0], context.purpose))
        return _Admitted(
            correlator,
            key,
            context.client_id,
            operation,
            context.purpose,
            scope,
            claims.jti,
            context.sandbox,
        )

    def _answer(
        self, request: Request, call: _Admitted, response: httpx.Response, content: bytes
    ) -> Response:
        """The operator's answer, passed on as it is, with the call's correlator; an error
        that is no CAMARA ErrorInfo (a proxy's HTML page, a crash's plain text) is the
        serving side failing, told as a 503 the application can act on."""
        if response.status_code >= 400 and not _is_error_info(content):
            raise CamaraError(
                503,
                "UNAVAILABLE",
                f"The serving operator failed ({response.status_code}, not a CAMARA error).",
            )
        headers = {CORRELATOR_HEADER: call.correlator}
        if response.headers.get(REPLAYED_HEADER) == "true":  # the operator's stored answer
            headers[REPLAYED_HEADER] = "true"
        site = response.headers.get(DATA_CENTRE_HEADER)
        if site and DATA_CENTRE_OPT_IN in request.headers:  # internal: only when asked
            headers[DATA_CENTRE_HEADER] = site
        if response.status_code == 204:
            return Response(status_code=204, headers=headers)
        return Response(
            content,
            status_code=response.status_code,
            headers=headers,
            media_type=response.headers.get("content-type", "application/json"),
        )

    async def _device_call(
        self, call: _Admitted, body: dict[str, Any]
    ) -> tuple[httpx.Response, Partner, SearchAnswer, str]:
        """Find the operator serving the device the body names, get its token, forward."""
        target, subject = _device_target(body)
        if call.sandbox:
            number = target.phone_number
            refusal = sandbox_refusal(True, number is not None and self._test_number(number))
            if refusal is not None:
                raise refusal
        application, operation = call.application, call.operation
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
                token = await self._hop(
                    TOKEN,
                    partner.config.id,
                    self._token(partner, subject, call.scope, call.purpose, application),
                )
            except CamaraError as error:
                signal = stale_signal(Stale.TOKEN, error.status)
                retry = next_search(mode, signal, phone_number=phone)
                if retry is not None:
                    mode = retry
                    continue
                self._settle(call, partner, answer.operator_id, error.status)
                raise
            _check_pinned(call, partner)
            response = await self._call(
                partner, method, template, _without_device(body), token, call
            )
            if response.status_code in (401, 403):
                self._tokens.pop((partner.config.id, application, subject, call.scope), None)
            # the code matters only in a 404 (stale_signal): other answers are not parsed here
            code = _code(response) if response.status_code == 404 else None
            signal = stale_signal(Stale.API, response.status_code, code)
            mode = next_search(mode, signal, phone_number=phone)
        assert response is not None and answer is not None
        return response, partner, answer, subject

    # -- Quality on Demand: sessions live where they were created -----------------------------

    def _created(
        self,
        call: _Admitted,
        partner: Partner,
        answer: SearchAnswer,
        subject: str,
        response: httpx.Response,
        session_id: str,
    ) -> bytes:
        """Record a session the operator created and hand the application the hub's id (the
        one its notifications were relayed under, unless the operator answered a replay)."""
        info = _json_or_none(response)
        if not isinstance(info, dict) or not isinstance(info.get("sessionId"), str):
            self.notifications.drop(session_id)
            return response.content
        routed = self.sessions.add(
            RoutedSession(
                session_id,
                call.application,
                partner.config.id,
                answer.operator_id,
                info["sessionId"],
                subject,
            ),
            self.clock(),
        )
        if routed.session_id == session_id:
            self.notifications.bind(session_id, routed.operator_session_id)
        else:
            self.notifications.drop(session_id)
        return json.dumps(self.notifications.shown(info, routed.session_id)).encode()

    def _mine(self, call: _Admitted, partner: Partner, response: httpx.Response) -> bytes:
        """The operator's sessions of the device that this application created, by hub id.

        The operator sees one client (the hub) for every application, so the hub keeps only
        the sessions its table gives to the calling application.
        """
        listed = _json_or_none(response)
        if not isinstance(listed, list):
            return response.content
        mine = []
        for info in listed:
            if not isinstance(info, dict) or not isinstance(info.get("sessionId"), str):
                continue
            routed = self.sessions.at_operator(partner.config.id, info["sessionId"])
            if routed is not None and routed.application == call.application:
                mine.append(self.notifications.shown(info, routed.session_id))
        return json.dumps(mine).encode()

    async def _session_call(self, request: Request, call: _Admitted) -> Response:
        """A call about a session the hub created: sent to the operator that holds it."""
        session_id = str(request.path_params.get("sessionId", ""))
        routed = self.sessions.get(session_id)
        if routed is None and call.retried and call.operation.operation_id == "deleteSession":
            gone = self.sessions.deleted(session_id, call.key)  # its operator replays the 204
            if gone is not None and gone.application == call.application:
                routed = gone  # another application is told nothing of it: 404
        if routed is None:
            raise CamaraError(404, "NOT_FOUND", "The specified resource is not found.")
        if routed.application != call.application:
            raise CamaraError(
                403, "PERMISSION_DENIED", "The QoS session was not created by this API client."
            )
        body = await self._body(request) if call.operation.request else None
        partner = self.partners.get(routed.operator)
        if partner is None:
            raise CamaraError(503, "UNAVAILABLE", f"{routed.operator} is not a partner.")
        operation = call.operation
        self.tracer(
            Hop(call.application, self.id, f"{operation.method} {operation.template} {session_id}")
        )
        try:
            token = await self._hop(
                TOKEN,
                partner.config.id,
                self._token(partner, routed.subject, call.scope, call.purpose, call.application),
            )
        except CamaraError as error:
            self._settle(call, partner, routed.served_as, error.status)
            raise
        path = operation.template.replace("{sessionId}", routed.operator_session_id)
        _check_pinned(call, partner)
        response = await self._call(
            partner, operation.method, path, body, token, call, label=operation.template
        )
        if response.status_code in (401, 403):
            key = (partner.config.id, call.application, routed.subject, call.scope)
            self._tokens.pop(key, None)
        deleted = operation.operation_id == "deleteSession" and response.status_code < 300
        if deleted or response.status_code == 404:  # gone at the operator: gone here
            self.sessions.forget(session_id, call.key if deleted else None)
        content = response.content
        info = _json_or_none(response) if response.status_code < 300 else None
        if isinstance(info, dict) and "sessionId" in info:
            content = json.dumps(self.notifications.shown(info, routed.session_id)).encode()
        self._settle(call, partner, routed.served_as, response.status_code)
        return self._answer(request, call, response, content)

    # -- Number Verification: the operator's token from the device's own flow -------------------

    async def _relayed_call(self, request: Request, call: _Admitted) -> Response:
        """A Number Verification call, forwarded with the token the serving operator gave the
        hub when it authenticated the application's subscriber by the device's address."""
        grant = self.relay.grant_for(call.token_id, call.application)
        if grant is None:
            raise CamaraError(
                403,
                "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK",
                "Client must authenticate via the mobile network to use this service",
            )
        partner = self.partners.get(grant.operator)
        if partner is None:
            raise CamaraError(503, "UNAVAILABLE", f"{grant.operator} is not a partner.")
        if grant.expires_at <= self.clock():
            raise CamaraError(
                401, "UNAUTHENTICATED", "The operator's authorization has expired: sign in again."
            )
        operation = call.operation
        body = await self._body(request) if operation.request is not None else None
        self.tracer(Hop(call.application, self.id, f"{operation.method} {operation.template}"))
        _check_pinned(call, partner)
        response = await self._call(
            partner, operation.method, operation.template, body, grant.access_token, call
        )
        self._settle(call, partner, grant.served_as, response.status_code)
        return self._answer(request, call, response, response.content)

    async def _locate(self, address: str) -> ServingOperator:
        """The partner that assigned a device's IPv4 address (the Telco Finder's answer)."""
        try:
            target = Target.model_validate({"ipv4Address": {"publicAddress": address}})
        except ValidationError as error:
            raise CamaraError(404, "IDENTIFIER_NOT_FOUND", "Not an IPv4 address.") from error
        answer = await self._find(target, FIRST_SEARCH)
        partner = self._partner_for(answer)
        return ServingOperator(partner.config.id, answer.operator_id, partner.client)

    def _client_at(self, operator: str) -> ApplicationClient | None:
        partner = self.partners.get(operator)
        return None if partner is None else partner.client

    # -- QoS Profiles without a device ---------------------------------------------------------

    async def _everywhere(
        self, request: Request, call: _Admitted, body: dict[str, Any]
    ) -> Response:
        """QoS Profiles asked without a device: the profiles every partner offers.

        Profiles are per operator, and without a device the hub cannot know which operator will
        serve the application's sessions; so it answers with what holds wherever the device
        turns out to be: ``retrieveQoSProfiles`` lists the profiles (by name) that every partner
        offers, with the first partner's definition (federation order); ``getQosProfile``
        answers that definition when every partner offers the name, else 404. With a device,
        ``retrieveQoSProfiles`` is routed to the serving operator like any device call.
        Every partner asked meters the call it answered, so each is settled on its own row,
        under the call's key suffixed with the partner's id (what the partner is sent, scoped
        like any other): the hub's books and each operator's then agree.
        """
        operation = call.operation
        name = request.path_params.get("name")
        # Quoted whole: a name is one path segment, never a query, a fragment or a control byte.
        path = (
            operation.template.replace("{name}", quote(str(name), safe=""))
            if name is not None
            else None
        )
        asked_of = {
            partner.config.id: replace(call, key=f"{call.key}/{partner.config.id}")
            for partner in self.partners.values()
        }
        with self._holding(call.application, [asked.key for asked in asked_of.values()]):
            return await self._ask_everywhere(request, call, body, path, asked_of)

    async def _ask_everywhere(
        self,
        request: Request,
        call: _Admitted,
        body: dict[str, Any],
        path: str | None,
        asked_of: dict[str, _Admitted],
    ) -> Response:
        """Each partner asked in turn, each settled on its own row; then one answer made of
        theirs (see :meth:`_everywhere`)."""
        operation = call.operation
        name = request.path_params.get("name")
        for partner_id, asked in asked_of.items():  # an application may have used such a key
            previous = self.settlement.settled(asked.application, asked.key)
            if previous is not None and (
                previous[1] != operation.operation_id or (previous[2] and previous[0] != partner_id)
            ):
                raise _key_taken()
        answers: list[tuple[Partner, httpx.Response]] = []
        for partner in self.partners.values():
            asked = asked_of[partner.config.id]
            try:
                token = await self._hop(
                    TOKEN, partner.config.id, self._two_legged(partner, call.scope)
                )
            except CamaraError as error:
                self._settle(asked, partner, partner.config.id, error.status)
                raise
            response = await self._call(
                partner,
                operation.method,
                path or operation.template,
                body if operation.request is not None else None,
                token,
                asked,
                label=operation.template,
            )
            self._settle(asked, partner, partner.config.id, response.status_code)
            answers.append((partner, response))
        first_response = answers[0][1]
        failed = next(
            (r for _, r in answers if r.status_code >= 300 and r.status_code != 404), None
        )
        if failed is not None:
            return self._answer(request, call, failed, failed.content)
        if name is not None:  # getQosProfile: offered everywhere, or not found
            missing = next((r for _, r in answers if r.status_code == 404), None)
            chosen = missing if missing is not None else first_response
            return self._answer(request, call, chosen, chosen.content)
        lists = [_json_or_none(r) for _, r in answers]
        names = [
            {p.get("name") for p in listed if isinstance(p, dict)}
            for listed in lists
            if isinstance(listed, list)
        ]
        common = set.intersection(*names) if names else set()
        head = lists[0] if isinstance(lists[0], list) else []
        profiles = [p for p in head if isinstance(p, dict) and p.get("name") in common]
        return self._answer(request, call, first_response, json.dumps(profiles).encode())

    def _keep_token(self, key: tuple[str, str, str, str], reply: Mapping[str, Any]) -> str:
        """Cache a partner's token until shortly before it expires. One is kept per partner,
        application, subscriber and scope, so the expired ones are swept whenever the cache
        has doubled since the last sweep (amortised: a constant cost per token)."""
        now = self.clock()
        if len(self._tokens) >= self._sweep_at:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._sweep_at = max(TOKEN_SWEEP, 2 * len(self._tokens))
        token = str(reply["access_token"])
        lifetime = float(reply.get("expires_in", 60))
        self._tokens[key] = _CachedToken(token, now + lifetime - TOKEN_MARGIN)
        return token

    async def _two_legged(self, partner: Partner, scope: str) -> str:
        """The hub's own client-credentials token at a partner (no subscriber named)."""
        key = (partner.config.id, "", "", scope)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self.clock():
            return cached.token
        try:
            reply = await partner.client.client_credentials(scope)
        except OAuthClientError as error:
            raise _refusal(partner.config.id, error) from error
        except httpx.TransportError as error:
            raise CamaraError(503, "UNAVAILABLE", f"{partner.config.id} is unreachable.") from error
        return self._keep_token(key, reply)

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
            answer = await self._hop(FINDER, "", self.finder.search(request))
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
                reply = await self._consent(partner, key)
            else:
                reply = await partner.client.jwt_bearer(subject, scope, on_behalf_of=application)
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
        return self._keep_token(key, reply)

    async def _consent(
        self, partner: Partner, key: tuple[str, str, str, str]
    ) -> dict[str, Any]:
        """The token of the CIBA round for ``key`` (operator, application, subscriber, scope),
        started unless one is under way, waited for at most :attr:`consent_wait` seconds.

        A round outlives the call that started it (it is shielded), so a retry finds it, and
        it ends by itself when the operator answers or lets the request expire."""
        round_ = self._consents.get(key)
        if round_ is None:
            _, application, subject, scope = key
            round_ = asyncio.ensure_future(
                partner.client.ciba(
                    subject,
                    scope,
                    binding_message=f"{self.id}/{application}"[:64],
                    on_behalf_of=application,
                )
            )
            self._consents[key] = round_
            round_.add_done_callback(lambda done: self._round_ended(key, done))
        try:
            return await asyncio.wait_for(asyncio.shield(round_), self.consent_wait)
        except TimeoutError as error:
            raise CamaraError(
                504,
                "TIMEOUT",
                f"The subscriber has not answered {partner.config.id}'s consent request in"
                f" {self.consent_wait:g} s; it stays open for a while: retry the call.",
            ) from error

    def _round_ended(
        self, key: tuple[str, str, str, str], done: asyncio.Task[dict[str, Any]]
    ) -> None:
        if self._consents.get(key) is done:
            del self._consents[key]
        if not done.cancelled():
            done.exception()  # seen here: a round whose callers all left may end in an error

    async def _call(
        self,
        partner: Partner,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        token: str,
        call: _Admitted,
        *,
        label: str | None = None,
    ) -> httpx.Response:
        """Send one call to an operator's gateway under the application's correlator and the
        call's key scoped by the application (:func:`_scoped`)."""
        operator = partner.config
        template = label or path
        started = time.perf_counter()
        try:
            response = await self._hop(
                FORWARD,
                operator.id,
                self.http.request(
                    method,
                    operator.api_root + path,
                    json=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        CORRELATOR_HEADER: call.correlator,
                        IDEMPOTENCY_HEADER: _scoped(call),
                        DATA_CENTRE_OPT_IN: "1",  # for the hub's own trace, not the application
                    },
                ),
            )
        except httpx.TransportError as error:
            self.tracer(
                Hop(self.id, operator.id, f"{method} {template}", "unreachable", _ms(started))
            )
            raise CamaraError(503, "UNAVAILABLE", f"{operator.id} is unreachable.") from error
        if self.tracer is no_trace:  # the trace's status line parses the answer: skip both
            return response
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

    async def _hop(self, stage: str, operator: str, pending: Awaitable[_T]) -> _T:
        """Await one hop of a call, its time observed however it ends (answer or error)."""
        started = time.perf_counter()
        try:
            return await pending
        finally:
            self.metrics.observe_hop(stage, operator, time.perf_counter() - started)

    def _settle(self, call: _Admitted, partner: Partner, served_as: str, status: int) -> None:
        operation = call.operation
        self.settlement.record(
            SettledCall(
                call.application,
                call.key,
                partner.config.id,
                served_as,
                operation.api,
                operation.operation_id,
                status,
                is_billable(operation, status),
                self.clock(),
            )
        )

    async def stop(self) -> None:
        """Cancel the notifications and consent rounds under way (the HTTP client is its
        owner's)."""
        rounds = list(self._consents.values())
        for round_ in rounds:
            round_.cancel()
        await asyncio.gather(*rounds, return_exceptions=True)
        await self.notifier.aclose()

    def close(self) -> None:
        self.db.close()


REPLAYED_HEADER = "idempotent-replayed"
"""Set by an operator that answered with the stored answer of a call under this key."""


def _check_pinned(call: _Admitted, partner: Partner) -> None:
    """Refuse a reused idempotency key bound for another operator than the one that billed
    it."""
    if call.settled_with is not None and call.settled_with != partner.config.id:
        raise _key_taken()


def _key_taken() -> CamaraError:
    return CamaraError(
        400,
        "INVALID_ARGUMENT",
        "Idempotency-Key: this value was already used for another request; send a new one.",
    )


def _scoped(call: _Admitted) -> str:
    """The key sent to the operator, which meters by (client, key) and sees the hub as one
    client for every application: scoped by application so two never collide."""
    return operator_correlator(call.application, call.key, call.operation.correlator)


def _names_device(body: dict[str, Any]) -> bool:
    return isinstance(body.get("device"), dict) or body.get("phoneNumber") is not None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return None


def _grant_text(consent: bool, subject: str) -> str:
    return f"CIBA {subject}" if consent else f"token (JWT bearer, sub {subject})"


def _is_error_info(content: bytes) -> bool:
    """Whether ``content`` is a CAMARA ErrorInfo: a JSON object with a number ``status`` and a
    text ``code`` and ``message``."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("status"), int)
        and isinstance(body.get("code"), str)
        and isinstance(body.get("message"), str)
    )


def _code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


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
        docs_url=None,  # /docs from local files (install_api_docs below); ReDoc needs a CDN
        redoc_url=None,
    )
    install_camara_error_handlers(app)
    app.add_middleware(CallTiming, metrics=aggregator.metrics)
    identity_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_oauth_error_handlers(identity_app)
    relay = aggregator.relay

    # Before the identity router's /authorize, which it shadows (and documents): the hub relays.
    @identity_app.get("/authorize", include_in_schema=False)
    async def authorize(request: Request) -> Response:
        params, repeated = query_params(request.url.query)
        host = request.client.host if request.client else None
        location = await relay.authorize(params, host, repeated=repeated)
        return RedirectResponse(location, status_code=302, headers=dict(NO_STORE))

    @identity_app.get(CALLBACK_PATH, include_in_schema=False)
    async def callback(request: Request) -> Response:
        params, _ = query_params(request.url.query)
        location = await relay.callback(params)
        return RedirectResponse(location, status_code=302, headers=dict(NO_STORE))

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
    app.include_router(  # GET /admin/statements?month=YYYY-MM: monthly statements per operator
        build_aggregator_statements_router(
            aggregator.federation, config.id, aggregator.settlement.calls, config.admin_secret
        )
    )

    @app.post(NOTIFICATION_PATH, status_code=204, include_in_schema=False)
    async def notification(request: Request) -> Response:
        """An operator's CloudEvent about a session created through the hub."""
        session_id = str(request.path_params["sessionId"])
        event = await read_json_object(request, NOTIFICATION_LIMITS)
        aggregator.notifications.receive(session_id, request.headers.get("authorization"), event)
        return Response(status_code=204)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Open like an operator's ``/metrics``: latencies by API and hop, no subscriber data."""
        return Response(aggregator.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/health")
    def health() -> JSONResponse:
        status = "UP" if aggregator.ready else "STARTING"
        return JSONResponse(
            {"status": status, "aggregator": config.id},
            status_code=200 if aggregator.ready else 503,
        )

    for prefix, router in (extra_routers or {}).items():
        app.include_router(router, prefix=prefix)
    install_developer_portal(app, portal_host(aggregator))
    install_api_docs(app)
    return app


def portal_host(aggregator: Aggregator) -> PortalHost:
    """The aggregator's parts its developer portal reads: its identity server (applications
    registered with the hub), its database and its admission's plans."""
    parts = urlsplit(aggregator.identity.issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    return PortalHost(
        config=aggregator.identity.config,
        db=aggregator.db,
        identity=aggregator.identity,
        plans=aggregator.admission.plans,
        clock=aggregator.clock,
        origin=origin,
        api_root=origin,
        apis=tuple(dict.fromkeys(operation_named(op).api for op in FORWARDED)),
        kind="aggregator",
        test_numbers=lambda: [
            (test, plan.test_number(test))
            for plan in aggregator._number_plans
            for test in TEST_NUMBERS
        ],
    )


def _forwarder(aggregator: Aggregator, operation_id: str) -> Any:
    api = operation_named(operation_id).api

    async def endpoint(request: Request) -> Response:
        name_call(request.scope, api, operation_id)
        return await aggregator.forward(request, operation_id)

    return endpoint


def _path(issuer: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(issuer).path.rstrip("/") or "/oauth"
