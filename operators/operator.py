"""One operator, assembled from its config: database, subscribers, identity server, network
core, integrator and gateway, and the one FastAPI app that serves them all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .admin_auth import admin_guard
from .analytics.activity_log import ActivityLog
from .analytics.monitor import AnalyticsMonitor
from .analytics.usage_recorder import UsageRecorder
from .billing import InvoiceRun, IssuedInvoices, build_invoice_admin_router
from .camara.consent_info import (
    RetrieveStatusRequestBody,
    RetrieveStatusResponseBody,
    retrieve_status_answer,
)
from .camara.context import CallContext
from .camara.operations import OPERATIONS
from .camara.routers import build_camara_routers
from .config import OperatorConfig
from .consent_portal import build_consent_portal_router
from .core import CoreSpec, Faults, NetworkFunctionKind
from .core.backend_metrics import BackendMetrics
from .errors import CamaraError
from .gateway.admission import Admission, objection, sandbox_refusal
from .gateway.authentication import BearerAuthenticator
from .gateway.chain import GatewayApp
from .gateway.errors import install_camara_error_handlers
from .gateway.gateway import Gateway, GatewayMiddleware
from .gateway.metering import UsageLedger, note_read, note_subject
from .gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
from .gateway.subscriptions import PlanSubscriptions
from .handset_app import HandsetInbox, build_handset_router, phone_link
from .housekeeping import Housekeeping, Retention
from .identity import (
    AssertionIssuerPolicy,
    IdentityServer,
    build_capture_router,
    build_identity_router,
    install_oauth_error_handlers,
)
from .integrator import (
    ConsentStatusSource,
    GuardedExecutor,
    GuardSettings,
    Integrator,
    build_live_integrator,
)
from .policies import Throttle, ThrottlePolicy, gateway_throttle
from .portal import PortalHost, install_developer_portal
from .request_body import openapi_body, read_model
from .served_config import ServedOperatorConfig
from .storage import Database
from .subscriber_admin import ADMIN_LIMITS, build_subscriber_admin_router
from .subscriber_base import SubscriberBase
from .types import Clock
from .wal_checkpointer import WalCheckpointer
from .web import static_files
from .web.api_docs import install_api_docs

if TYPE_CHECKING:
    from .portal import DeveloperAccounts


@dataclass
class Operator:
    """Everything one operator owns; nothing here is shared with any other operator."""

    config: OperatorConfig
    db: Database
    subscribers: SubscriberBase
    identity: IdentityServer
    integrator: Integrator
    backends: GuardedExecutor
    gateway: Gateway
    clock: Clock
    housekeeping: Housekeeping = field(init=False)
    checkpoints: WalCheckpointer = field(init=False)
    """Checkpoints the database's WAL off the event loop while the operator serves."""
    handsets: HandsetInbox = field(init=False)
    """What the subscribers' simulated phones show (codes, consent notices, prompts)."""
    activity: ActivityLog = field(init=False)
    """Developers' milestones for the analytics: the portal, ``/token`` and the gateway note
    them."""
    monitor: AnalyticsMonitor | None = field(init=False)
    """Scores the usage buckets as they close and sends alerts (None when disabled)."""
    issued: IssuedInvoices = field(init=False)
    """Closed months' invoices as first issued: the portal's and ``/admin/invoices``."""
    owned_throttle: Throttle | None = field(init=False, default=None)
    """The throttle :meth:`from_config` built (closed with the operator); None when the
    caller passed one in, which is the caller's to close (replicas sharing it)."""
    invoice_run: InvoiceRun = field(init=False)
    """Issues each month's invoices when it closes, so a later config change cannot reach them."""

    def __post_init__(self) -> None:
        self.handsets = HandsetInbox(self.db, clock=self.clock)
        self.issued = IssuedInvoices(self.db)
        self.invoice_run = InvoiceRun(
            self.config, self.gateway.admission.plans, self.gateway.ledger, self.issued,
            clock=self.clock, interval=self.config.housekeeping_interval,
        )
        analytics = self.config.analytics
        self.activity = ActivityLog(self.db, self.clock, interval=analytics.flush_seconds)
        self.gateway.usage.on_first_success = self.activity.first_success
        self.identity.token_issued = self.activity.first_token
        self.monitor = (
            AnalyticsMonitor.from_config(
                analytics, self.db, self.activity, self.gateway.usage, clock=self.clock,
                plans=self.gateway.admission.plans)
            if analytics.enabled else None
        )
        self.housekeeping = Housekeeping(
            self.db,
            Retention.for_lifetimes(self.config.lifetimes, self.config.analytics),
            clock=self.clock,
            interval=self.config.housekeeping_interval,
        )
        self.checkpoints = WalCheckpointer(self.db)

    @classmethod
    def from_config(
        cls,
        config: OperatorConfig,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        reference_time: datetime | None = None,
        core: CoreSpec | None = None,
        protection: GuardSettings | None = None,
        issuer_policy: AssertionIssuerPolicy | None = None,
        client_trusted: Callable[[str], bool] | None = None,
        throttle: ThrottlePolicy | None = None,
    ) -> Operator:
        """Build the operator; ``clock`` is the epoch clock, ``monotonic`` times policies.

        ``core`` and ``protection`` size the modelled network functions and guard them; left
        out, a :class:`ServedOperatorConfig`'s own are used (what ``ogsim serve`` reads from
        its file), else the defaults. ``issuer_policy`` decides whose JWT-bearer assertions
        the identity server accepts (the federation's trusted issuers); ``client_trusted``
        lets the gateway refuse, at once, tokens already issued to a party whose trust was
        revoked. ``throttle`` lets the replicas of one operator in one process share their
        buckets and quotas.
        """
        if isinstance(config, ServedOperatorConfig):
            core = core if core is not None else config.core
            protection = protection if protection is not None else config.protection
        db = Database(config.storage)
        subscribers = SubscriberBase(config, db, clock=clock, reference_time=reference_time)
        identity = IdentityServer(
            config,
            db,
            subscribers,
            clock,
            issuer_policy=issuer_policy,
            client_gate=client_trusted,
            # its buckets on the monotonic clock: a wall clock stepping back (NTP) would
            # leave them empty until it caught up, while Retry-After said 1 s
            throttle=Throttle(monotonic),
        )
        integrator, backends = build_live_integrator(
            subscribers,
            core=core,
            seed=config.seed,
            time_scale=config.core_time_scale,
            settings=protection,
            clock=monotonic,
        )
        integrator.may_process = _purpose_check(config, subscribers)
        backends.answered = note_read  # the access log shows a call that read data, any status
        integrator.sandbox_gate = _sandbox_gate(subscribers)
        integrator.consent_status = _consent_status(identity)
        owned = None
        if throttle is None:
            throttle = owned = gateway_throttle(
                config.redis_url, monotonic=monotonic, calendar=clock, namespace=config.id
            )
        admission = Admission(PlanSubscriptions(config, db, clock), throttle, clock)
        gateway = Gateway(
            BearerAuthenticator(identity, clock),
            identity,
            admission,
            UsageLedger(db),
            GatewayMetrics(config.id),
            party_trusted=client_trusted,
            calendar=clock,
            usage=UsageRecorder(
                db, clock, bucket_seconds=config.analytics.bucket_seconds,
                interval=config.analytics.flush_seconds,
                subscriber_key=config.analytics.subscriber_key,
            ),
        )
        operator = cls(config, db, subscribers, identity, integrator, backends, gateway, clock)
        operator.owned_throttle = owned
        operator._expose_backend_gauges()
        backends.measure(BackendMetrics(gateway.metrics.registry, buckets=LATENCY_BUCKETS))
        return operator

    @property
    def issuer(self) -> str:
        return self.identity.issuer

    @property
    def api_root(self) -> str:
        """Where the CAMARA APIs live: the issuer's origin (also the tokens' audience)."""
        parts = urlsplit(self.identity.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def set_faults(self, function: NetworkFunctionKind, faults: Faults) -> None:
        self.backends.functions[function].set_faults(faults)  # type: ignore[attr-defined]

    def _expose_backend_gauges(self) -> None:
        functions = self.backends.functions
        guards = self.backends.guards
        metrics = self.gateway.metrics
        metrics.add_gauge(
            "ogsim_backend_queue_length",
            "Calls waiting at each network function",
            ["backend"],
            lambda: {
                (k.value,): float(getattr(f, "queue_length", 0)) for k, f in functions.items()
            },
        )
        metrics.add_gauge(
            "ogsim_backend_in_service",
            "Calls in service at each network function",
            ["backend"],
            lambda: {(k.value,): float(getattr(f, "in_service", 0)) for k, f in functions.items()},
        )
        metrics.add_gauge(
            "ogsim_breaker_state",
            "1 for the current circuit breaker state of each backend",
            ["backend", "state"],
            lambda: {(k.value, g.breaker.state.value): 1.0 for k, g in guards.items()},
        )

    async def start(self) -> None:
        """What runs beside the requests while the operator serves: the housekeeping, the
        writers of the call statistics, usage buckets and activities, the analytics monitor."""
        self.housekeeping.start()
        self.invoice_run.start()
        await self.start_replica()
        if self.monitor is not None:
            await self.monitor.start()

    async def start_replica(self) -> None:
        """The writers alone, for a replica sharing the database of one that runs
        :meth:`start` (the housekeeping and the monitor run once per database)."""
        await self.gateway.start()
        await self.activity.start()
        self.checkpoints.start()

    async def stop(self) -> None:
        """Stop the background work and commit every usage event (and every call statistic,
        usage bucket and activity) still waiting."""
        await self.housekeeping.stop()
        await self.invoice_run.stop()
        if self.monitor is not None:
            await self.monitor.stop()
        self.gateway.commits.flush()
        await self.gateway.stop()
        await self.activity.stop()
        await asyncio.to_thread(self.checkpoints.stop)  # its last checkpoint syncs the disk

    def close(self) -> None:
        with suppress(RuntimeError):  # the loop that awaited them is gone; the rows are not
            self.gateway.commits.flush()
        self.gateway.statistics.flush()
        self.gateway.usage.flush()
        self.activity.flush()
        self.checkpoints.stop()
        if self.owned_throttle is not None:
            self.owned_throttle.close()
        self.db.close()


def _purpose_check(
    config: OperatorConfig, subscribers: SubscriberBase
) -> Callable[[str, str | None], bool]:
    """Whether a two-legged call may process a subscriber's data for its purpose.

    Legitimate interest gives way to the subscriber's objection; consent-based purposes never
    reach here two-legged (the identity server refuses such tokens); contract needs nothing.
    """

    def may_process(msisdn: str, purpose: str | None) -> bool:
        note_subject(msisdn)  # the call is about this subscriber: their access log shows it
        policy = config.purpose(purpose) if purpose else None
        return objection(policy, subscribers.get(msisdn)) is None

    return may_process


def _sandbox_gate(subscribers: SubscriberBase) -> Callable[[str], CamaraError | None]:
    """A sandbox application reaches the documented test numbers, nobody else."""

    def gate(msisdn: str) -> CamaraError | None:
        return sandbox_refusal(True, subscribers.is_test_number(msisdn))

    return gate


def _code_sender(operator: Operator) -> Callable[[str, str], None]:
    """One-time codes of the consent capture page go to the subscriber's (simulated) phone."""

    def send(msisdn: str, code: str) -> None:
        operator.handsets.send(
            msisdn, "code", f"{code} is your {operator.config.display_name} code", code=code
        )

    return send


def _consent_status(identity: IdentityServer) -> ConsentStatusSource:
    """Consent Info answered by the identity server, which holds consents and captures."""

    def answer(ctx: CallContext, msisdn: str, body: RetrieveStatusRequestBody
               ) -> RetrieveStatusResponseBody:
        found = identity.consent_info.retrieve(
            ctx.client_id, msisdn, list(body.scopes), body.purpose,
            request_capture=body.requestCaptureUrl, callback_url=body.callbackUrl,
            party=ctx.consent_party,
        )
        url = identity.consent_info.url_of(found.capture) if found.capture else None
        return retrieve_status_answer(found, url)

    return answer


class SubscriptionRequest(BaseModel):
    plan: str


def create_operator_app(operator: Operator) -> FastAPI:
    """The operator's public face: CAMARA APIs behind the gateway, identity server, admin API."""
    config = operator.config

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await operator.start()
        try:
            yield
        finally:
            await operator.stop()

    app = GatewayApp(
        operator.gateway,
        title=f"{config.display_name} ({config.id})",
        description="An ogsim operator: CAMARA APIs behind a gateway, identity server, admin API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_camara_error_handlers(app)

    identity_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_oauth_error_handlers(identity_app)
    identity_app.include_router(build_identity_router(operator.identity))
    identity_app.include_router(build_capture_router(operator.identity, _code_sender(operator)))
    issuer_path = urlsplit(operator.issuer).path.rstrip("/") or "/oauth"
    app.mount(issuer_path, identity_app)

    @app.get(f"/.well-known/oauth-authorization-server{issuer_path}", include_in_schema=False)
    async def authorization_server_metadata() -> dict[str, Any]:
        """RFC 8414 §3.1: an issuer with a path has its metadata at the origin's well-known
        location with the path appended (also served under the issuer, as OIDC does)."""
        return operator.identity.metadata()


    app.include_camara(build_camara_routers(operator.integrator, operator.gateway.context))
    app.include_router(build_subscriber_admin_router(operator.subscribers, config.admin_secret))
    app.include_router(_operations_router(operator))
    app.mount("/static", static_files(), name="static")
    app.include_router(build_consent_portal_router(operator))
    app.include_router(build_handset_router(operator))
    portal = install_developer_portal(app, portal_host(operator))
    operator.activity.owner_of = _owner_of(portal.accounts)
    operator.invoice_run.owners = portal.accounts.owners
    operator.invoice_run.terms = portal.accounts.terms
    app.include_router(  # GET /admin/invoices?month=YYYY-MM[&by=organisation]
        build_invoice_admin_router(
            config, operator.gateway.admission.plans, operator.gateway.ledger, operator.clock,
            owners=portal.accounts.owners, terms=portal.accounts.terms, issued=operator.issued,
        )
    )
    install_api_docs(app)
    app.add_middleware(GatewayMiddleware, gateway=operator.gateway, oauth_path=issuer_path)
    return app


def portal_host(operator: Operator) -> PortalHost:
    """The operator's parts the developer portal (``/portal``) reads and changes."""
    return PortalHost(
        config=operator.config, db=operator.db, identity=operator.identity,
        plans=operator.gateway.admission.plans, clock=operator.clock,
        origin=operator.api_root, api_root=operator.api_root,
        apis=tuple(dict.fromkeys(op.api for op in OPERATIONS)),
        usage=operator.gateway.ledger, issued=operator.issued,
        statistics=operator.gateway.statistics,
        activity=operator.activity, kind="operator",
    )


def _owner_of(accounts: DeveloperAccounts) -> Callable[[str], tuple[str, str] | None]:
    """Who owns a client, for milestones noted by client id alone (``/token``, the gateway)."""

    def owner_of(client_id: str) -> tuple[str, str] | None:
        application = accounts.application(client_id)
        return None if application is None else (application.developer_id, application.org_id)

    return owner_of


def _operations_router(operator: Operator) -> APIRouter:
    """Health, metrics, fault injection and plan subscriptions (admin credential required)."""
    config = operator.config
    router = APIRouter(tags=["ops"])
    admin = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(config.admin_secret))]
    )

    @router.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({"status": "UP", "operator": config.id})

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(
            operator.gateway.metrics.exposition(), media_type="text/plain; version=0.0.4"
        )

    def kind_of(function: str) -> NetworkFunctionKind:
        try:
            return NetworkFunctionKind(function)
        except ValueError as error:
            names = ", ".join(k.value for k in NetworkFunctionKind)
            raise CamaraError(
                404, "NOT_FOUND", f"no network function {function!r}; one of {names}"
            ) from error

    @admin.get("/faults")
    def read_faults() -> dict[str, object]:
        return {k.value: f.faults.model_dump() for k, f in operator.backends.functions.items()}  # type: ignore[attr-defined]

    @admin.put("/faults/{function}", openapi_extra=openapi_body(Faults))
    async def inject_fault(function: str, request: Request) -> dict[str, object]:
        faults = await read_model(request, Faults, ADMIN_LIMITS)
        operator.set_faults(kind_of(function), faults)
        return {"function": function, "faults": faults.model_dump()}

    @admin.delete("/faults/{function}")
    def clear_fault(function: str) -> dict[str, object]:
        operator.set_faults(kind_of(function), Faults())
        return {"function": function, "faults": Faults().model_dump()}

    @admin.put("/subscriptions/{client_id}/{api}", openapi_extra=openapi_body(SubscriptionRequest))
    async def subscribe(client_id: str, api: str, request: Request) -> dict[str, str]:
        wanted = await read_model(request, SubscriptionRequest, ADMIN_LIMITS)
        if operator.identity.clients.get(client_id) is None:
            raise CamaraError(404, "NOT_FOUND", f"no client {client_id!r}")
        plan = operator.gateway.admission.plans.subscribe(client_id, api, wanted.plan)
        operator.activity.note("plan_changed", client_id=client_id, api=api, detail=plan.name)
        return {"clientId": client_id, "api": api, "plan": plan.name}

    @admin.get("/handsets/{phone_number}")
    def handset_link(phone_number: str) -> dict[str, str]:
        """The link that opens a simulated phone in a browser (its holder's, to hand out)."""
        if operator.subscribers.get(phone_number) is None:
            raise CamaraError(404, "NOT_FOUND", "This operator serves no such phone number.")
        return {"phoneNumber": phone_number,
                "url": phone_link(operator.api_root, config.admin_secret, phone_number)}

    @admin.get("/handsets/{phone_number}/messages")
    def handset_messages(phone_number: str) -> list[dict[str, object]]:
        """What a simulated phone received (codes included): for QA and conformance runs,
        which play the subscriber; the admin credential keeps it from anyone else."""
        return [
            {"id": m.id, "kind": m.kind, "text": m.text, "data": m.data, "sentAt": m.sent_at}
            for m in operator.handsets.messages(phone_number)
        ]

    @admin.get("/usage")
    def usage() -> list[dict[str, object]]:
        totals = operator.gateway.ledger.totals()
        return [{"clientId": c, "api": a, "calls": n} for (c, a), n in sorted(totals.items())]

    router.include_router(admin)
    return router
