"""One member operator of a running federation: its data centres, trust policy and front.

:class:`MemberOperator` builds, from the federation config, one
:class:`~operators.operator.Operator` replica per data centre — each its own gateway and
identity server, all over the operator's one database file, so consent, revocation, clients,
keys and replay guards are shared between sites — and the federation's additions to each
replica's app: the trusted-issuer policy for JWT-bearer assertions (with
:class:`~federation.trusted_issuers.PrepareAssertions` fetching keys before the synchronous
grant), the gateway's refusal of tokens held by a party no longer trusted, the Telco Routing
table, the second-level Telco Finder of an operator with brands, and a trust admin API. The
replicas sit behind a :class:`~federation.data_centres.LoadBalancedFront`, which is what the
operator's public URL reaches.

:meth:`MemberOperator.start` does the start-up work that needs the other parties: registering
each partner as a client (with the keys its discovery document publishes; retried until the
partner answers, since under ``ogsim up`` parties start in any order), recording configured
ports, fetching trusted issuers' keys and starting the health probes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from operators import CamaraError, Operator, Subscriber, admin_guard, create_operator_app
from operators.camara import OPERATION_SCOPES
from operators.gateway import ThreatLimits, openapi_body, read_model
from operators.identity import SubjectResolver, UnknownSubjectError
from operators.integrator import CloudEventNotifier
from operators.policies import Throttle, gateway_throttle
from operators.portal import close_developer_portal

from .authorization_relay import callback_url
from .config import FederatedOperator, FederationConfig, origin_of
from .data_centres import DataCentreSite, LoadBalancedFront
from .global_load_balancer import GlobalLoadBalancer, HealthPolicy
from .jwks_cache import JwksCache
from .portability import apply_ports
from .protection import TELCO_FINDER_SCOPE, TELCO_ROUTING_SCOPE, BearerProtection
from .settlement import build_operator_statements_router
from .telco_finder import BrandFinder, build_telco_finder_router
from .telco_routing import build_routing_table, build_telco_routing_router
from .tracing import Tracer, no_trace
from .trust import TrustGraph, UnknownPartyError
from .trust_revocations import TrustRevocations
from .trusted_issuers import PrepareAssertions, TrustedIssuers, party_registration
from .types import Clock

PARTNER_SCOPE = " ".join(
    sorted(
        {s for alts in OPERATION_SCOPES.values() for alt in alts for s in alt}
        | {TELCO_ROUTING_SCOPE, TELCO_FINDER_SCOPE}
    )
)
"""Every scope a federation partner is registered for: all CAMARA APIs and discovery."""


class PortedSubjects:
    """A subject resolver that also knows numbers ported in to the operator.

    Stopgap: ``operators.identity.subjects.SubjectResolver`` resolves ``tel:`` hints only
    inside the operator's own ranges, so a number ported in (served, per the subscriber base)
    is unknown to CIBA and the JWT-bearer grant. This wrapper asks the subscriber base for
    those; everything else is the resolver's own answer. Installed like
    ``TrustedIssuers.install`` until the resolver itself consults the subscriber base.
    """

    def __init__(self, inner: SubjectResolver) -> None:
        self.inner = inner

    def resolve(self, hint: str) -> Subscriber:
        try:
            return self.inner.resolve(hint)
        except UnknownSubjectError:
            if hint.startswith("tel:"):
                subscriber = self.inner.subscribers.get(hint.removeprefix("tel:"))
                if subscriber is not None:
                    return subscriber
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TrustChange(BaseModel):
    issuer: str


TRUST_BODY_LIMITS = ThreatLimits(max_body_bytes=1024, max_depth=2)
"""``{"issuer": ...}``, read through the operator's threat protection."""


@dataclass
class MemberOperator:
    """An operator of the federation as it runs: replicas per data centre, one front."""

    federation: FederationConfig
    config: FederatedOperator
    replicas: dict[str, Operator]
    policies: dict[str, TrustedIssuers]
    trust: TrustGraph
    jwks: JwksCache
    front: LoadBalancedFront
    http: httpx.AsyncClient
    ready: bool = False
    registered: list[str] = field(default_factory=list)
    throttle: Throttle | None = None
    """The throttle the replicas share (closed with them)."""

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def primary(self) -> Operator:
        """The first data centre's replica: where one-off writes (ports, clients) go."""
        return next(iter(self.replicas.values()))

    @property
    def api_root(self) -> str:
        return self.config.api_root

    @classmethod
    def build(
        cls,
        federation: FederationConfig,
        operator_id: str,
        http: httpx.AsyncClient,
        *,
        storage: str | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        reference_time: datetime | None = None,
        health: HealthPolicy | None = None,
        tracer: Tracer = no_trace,
    ) -> MemberOperator:
        """Replicas over one database (``storage``: a SQLite file; memory only with one DC)."""
        config = federation.operator(operator_id)
        if storage is None:
            storage = config.storage
        if storage == ":memory:" and len(config.data_centres) > 1:
            raise ValueError(f"{operator_id}: data centres share one database; give a file")
        if storage != ":memory:":
            Path(storage).parent.mkdir(parents=True, exist_ok=True)
        trust = TrustGraph.from_config(federation)
        jwks = JwksCache(http, clock=monotonic)
        replicas: dict[str, Operator] = {}
        policies: dict[str, TrustedIssuers] = {}
        sites: dict[str, DataCentreSite] = {}
        reference = reference_time or datetime.fromtimestamp(clock(), UTC)
        shared_throttle = gateway_throttle(  # one set of limits per operator
            config.redis_url, monotonic=monotonic, calendar=clock, namespace=operator_id
        )
        for dc in config.data_centres:
            replica_config = config.model_copy(update={"storage": storage})
            policy_box: list[TrustedIssuers] = []

            def trusted(client: str, box: list[TrustedIssuers] = policy_box) -> bool:
                return box[0].is_trusted_client(client)

            operator = Operator.from_config(
                replica_config,
                clock=clock,
                monotonic=monotonic,
                reference_time=reference,
                client_trusted=trusted,
                throttle=shared_throttle,
            )  # its core and protection: the config's own (a ServedOperatorConfig)
            operator.identity.share_jwks_cache(jwks)  # one cache of keys by reference, over http
            notifier = operator.integrator.notifier
            if isinstance(notifier, CloudEventNotifier):
                notifier.use_http(http)  # QoD sinks (the hub's relay, too) reached over it
            policy = TrustedIssuers.for_identity(operator_id, operator.identity, trust, jwks)
            policy.install(operator.identity)
            policy_box.append(policy)
            subjects = PortedSubjects(operator.identity.subjects)
            operator.identity.jwt_bearer.subjects = subjects  # type: ignore[assignment]
            operator.identity.ciba.subjects = subjects  # type: ignore[assignment]
            replicas[dc.name] = operator
            policies[dc.name] = policy
            sites[dc.name] = DataCentreSite(
                operator_id,
                dc.name,
                _replica_app(federation, config, operator, policy, jwks),
            )
        revocations = TrustRevocations(next(iter(replicas.values())).db, operator_id, clock)
        for policy in policies.values():
            policy.revocations = revocations
        glb = GlobalLoadBalancer.for_operator(config, clock=monotonic, policy=health)
        front = LoadBalancedFront(
            operator_id,
            sites,
            glb,
            admin_secret=config.admin_secret,
            tracer=tracer,
            clock=monotonic,
        )
        member = cls(federation, config, replicas, policies, trust, jwks, front, http)
        member.throttle = shared_throttle
        return member

    # -- start-up and shut-down ---------------------------------------------------------------

    async def start(self, *, timeout: float = 30.0, probes: bool = True) -> None:
        """Register partners, record ports, warm trusted keys, start probes; then ``ready``."""
        deadline = time.monotonic() + timeout
        partners = [o.id for o in self.federation.operators if o.id != self.id]
        partners += [a.id for a in self.federation.aggregators]
        for party in partners:
            await self._register(party, deadline)
        known = self.primary.subscribers
        fresh = {
            n: t
            for n, t in self.federation.ports.items()
            if (t == self.id) != (known.get(n) is not None)
        }
        apply_ports(fresh, self.federation, {self.id: self.primary})
        await self.policies[next(iter(self.policies))].warm()
        await self.primary.identity.client_keys.warm(self.registered)
        if probes:  # background work: health probes, and the housekeeping of the one file
            self.front.start()
            await self.primary.start()
            for replica in self.replicas.values():  # their writers; the monitor runs once
                if replica is not self.primary:
                    await replica.start_replica()
        self.ready = True

    async def _register(self, party: str, deadline: float) -> None:
        """Register ``party`` with its ``jwks_uri`` (keys by reference: its rotations need no
        re-registration), once it answers; a registration by value of an older database, or
        by an earlier run's address (another port than its issuer's now), follows the one it
        publishes now."""
        clients = self.primary.identity.clients
        known = clients.get(party)
        issuer = self.federation.issuer_of(party)
        assert issuer is not None
        if known is not None and known.jwks_uri and origin_of(known.jwks_uri) == origin_of(issuer):
            # by reference on the partner's current address: nothing to wait for (a replica
            # started mid-run, or with a partner down, starts at once)
            self.registered.append(party)
            return
        while True:
            try:
                jwks_uri = await _published_jwks_uri(self.http, issuer)
                break
            except (httpx.HTTPError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.id}: {party} published no keys in time") from None
                await asyncio.sleep(0.2)
        if known is not None:
            if known.jwks_uri != jwks_uri:  # registered by value, or by an earlier run's port
                clients.refer_keys(party, jwks_uri)
        else:
            purposes = [p.purpose for p in self.config.purposes]
            aggregator = any(a.id == party for a in self.federation.aggregators)
            self.primary.identity.register_client(party_registration(
                party, jwks_uri=jwks_uri, scope=PARTNER_SCOPE, purposes=purposes, ciba=True,
                redirect_uris=[callback_url(issuer)] if aggregator else ()))
        self.registered.append(party)

    async def stop(self) -> None:
        await self.front.stop()
        for operator in self.replicas.values():
            await operator.stop()

    def close(self) -> None:
        for site in self.front.sites.values():  # their lifespans are answered by ogsim up;
            close_developer_portal(site.app)  # first: a hash under way still writes
        for operator in self.replicas.values():
            operator.close()
        if self.throttle is not None:
            self.throttle.close()

    # -- trust at run time --------------------------------------------------------------------

    def revoke(self, issuer: str) -> None:
        """This operator stops trusting ``issuer``: its assertions and tokens are refused, by
        every process serving it (the revocation is kept in its database)."""
        policy = next(iter(self.policies.values()))
        _revocations(policy).revoke(self.trust, issuer)
        url = self.trust.issuer_url(issuer)
        if url:
            self.jwks.forget(url)

    def reinstate(self, issuer: str) -> None:
        _revocations(next(iter(self.policies.values()))).reinstate(self.trust, issuer)


async def _published_jwks_uri(http: httpx.AsyncClient, issuer: str) -> str:
    """A party's ``jwks_uri``, from its discovery document, once it publishes keys there: the
    document must be the issuer's own and the keys on its origin, as the key cache demands."""
    issuer = issuer.rstrip("/")
    metadata = await http.get(issuer + "/.well-known/openid-configuration")
    metadata.raise_for_status()
    document = metadata.json()
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ValueError(f"{issuer}'s discovery document names another issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or origin_of(jwks_uri) != origin_of(issuer):
        raise ValueError(f"{issuer} names no jwks_uri on its own origin")
    response = await http.get(jwks_uri)
    response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or not body.get("keys"):
        raise ValueError(f"{issuer} publishes no keys")
    return jwks_uri


def _replica_app(
    federation: FederationConfig,
    config: FederatedOperator,
    operator: Operator,
    policy: TrustedIssuers,
    jwks: JwksCache,
) -> FastAPI:
    """The operator app of one data centre with the federation's routes and middleware."""
    app = create_operator_app(operator)
    table = build_routing_table(config, federation)
    app.include_router(
        build_telco_routing_router(table, BearerProtection(
            operator.identity, TELCO_ROUTING_SCOPE, party_trusted=policy.is_trusted_client))
    )
    if config.brands:
        subscribers = operator.subscribers
        finder = BrandFinder(
            config,
            serves=lambda number: subscribers.get(number) is not None,
            number_at=lambda ip: s.msisdn if (s := subscribers.by_ipv4(ip)) else None,
        )
        app.include_router(
            build_telco_finder_router(
                finder, BearerProtection(operator.identity, TELCO_FINDER_SCOPE,
                                         party_trusted=policy.is_trusted_client)
            )
        )
    app.include_router(_trust_router(config, policy, jwks))
    app.include_router(  # GET /admin/statements?month=YYYY-MM: what it served per aggregator
        build_operator_statements_router(
            federation, config.id, operator.gateway.ledger, config.admin_secret
        )
    )
    app.add_middleware(
        PrepareAssertions,
        policy=policy,
        token_paths=[urlsplit(operator.identity.token_endpoint).path],
    )
    return app


def _trust_router(config: FederatedOperator, policy: TrustedIssuers,
                  jwks: JwksCache) -> APIRouter:
    """``/admin/trust``: whom this operator trusts now; revoke or reinstate at run time (kept
    in its database, so every process serving it, and a restart, sees the change)."""
    router = APIRouter(
        prefix="/admin/trust",
        tags=["federation"],
        dependencies=[Depends(admin_guard(config.admin_secret))],
    )
    me = config.id

    def checked(issuer: str) -> str:
        try:
            policy.trust.kind(issuer)
        except UnknownPartyError as error:
            raise CamaraError(404, "NOT_FOUND", f"no federation party {issuer!r}") from error
        return issuer

    @router.get("")
    def read() -> dict[str, Any]:
        trust = policy.trust
        return {
            "party": me,
            "trusts": trust.trusted_by(me),
            "verdicts": {p: trust.explain(me, p).reason for p in trust.parties() if p != me},
        }

    @router.post("/revoke", openapi_extra=openapi_body(TrustChange))
    async def revoke(request: Request) -> dict[str, Any]:
        change = await read_model(request, TrustChange, TRUST_BODY_LIMITS)
        issuer = checked(change.issuer)
        trust = policy.trust
        _revocations(policy).revoke(trust, issuer)
        url = trust.issuer_url(issuer)
        if url:
            jwks.forget(url)
        return {"party": me, "revoked": issuer, "trusted": trust.trusts(me, issuer)}

    @router.post("/reinstate", openapi_extra=openapi_body(TrustChange))
    async def reinstate(request: Request) -> dict[str, Any]:
        change = await read_model(request, TrustChange, TRUST_BODY_LIMITS)
        issuer = checked(change.issuer)
        trust = policy.trust
        _revocations(policy).reinstate(trust, issuer)
        return {"party": me, "reinstated": issuer, "trusted": trust.trusts(me, issuer)}

    return router


def _revocations(policy: TrustedIssuers) -> TrustRevocations:
    revocations = policy.revocations
    assert revocations is not None, "a member operator keeps its revocations (from_config)"
    return revocations
