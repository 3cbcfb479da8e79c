"""One operator in virtual time: balancer, data centres, gateway, identity, integrator, core.

A call enters through the federation's own
:class:`~federation.global_load_balancer.GlobalLoadBalancer` (health checks by its
:class:`~federation.global_load_balancer.HealthTracker`, on ``env.now``), takes a gateway
replica for its processing time, passes the live gateway's
:class:`~operators.gateway.Admission` (the grant rule with the data centre's consent replica
and the subscriber's objection, the trust gate from the federation's
:class:`~federation.trust.TrustGraph`, scope and purpose from the operation table, the plan
from an in-memory plan store, the real :class:`~operators.policies.Throttle` keyed per
application and API), and runs the live integrator flow through that data
centre's guards against the operator's shared network core. Every step ends in a callback,
so a call costs a Timeout per station it holds and no process; every outcome is an
:class:`Answer`, never an exception.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

import simpy

from federation import (
    DataCentre,
    GlobalLoadBalancer,
    HealthPolicy,
    HealthTracker,
    NodeKind,
    NoHealthyDataCentreError,
    TrustGraph,
)
from operators import CamaraError, OperatorConfig, PurposePolicy, Subscriber, default_plans
from operators.camara import WORKLOADS, Operation, needs_consent, operation_named
from operators.core import Faults, NetworkFunctionKind
from operators.gateway import Admission, InMemoryPlans, objection, sandbox_refusal
from operators.identity import Consent, GrantFacts, GrantType, TokenContext
from operators.integrator import BackendGuard, Coverage, Flow
from operators.policies import (
    CircuitBreakerState,
    NoThrottle,
    StateTransition,
    Throttle,
    ThrottlePolicy,
)
from sim.scenario import AuthSpec, DataCentreSpec, OperatorSpec
from sim.tiers.consent import ConsentReplicas
from sim.tiers.deadlines import Deadlines
from sim.tiers.gateway_pool import GatewayPool, Replica, ReplicaState
from sim.tiers.integrator import (
    CachedSubscriberBase,
    Caller,
    build_core,
    build_guards,
    new_caller,
    operations_for,
    run_flow,
)
from sim.tiers.network_function import CallbackNetworkFunction
from sim.tiers.station import Station
from sim.tiers.timers import Timer, calendar, call_later, clock

__all__ = [
    "AGGREGATOR",
    "BREAKER_LEVEL",
    "Answer",
    "Client",
    "Line",
    "Reply",
    "SimDataCentre",
    "SimOperator",
]

AGGREGATOR = "aggregator"
"""The aggregator's party id in the trust graph (and in partitions)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """How one request ended: an HTTP status and, unless it succeeded, its CAMARA code."""

    status: int
    code: str | None = None
    ok: bool = field(init=False, repr=False, compare=False)
    """Served: 2xx, or a business answer about the subscriber (404/422); worked out once,
    since every answer is read several times on its way back."""

    def __post_init__(self) -> None:
        status = self.status
        object.__setattr__(self, "ok", 200 <= status < 400 or status in (404, 422))


@dataclass(frozen=True, slots=True)
class Client:
    """An application as an operator's gateway sees it: its id, plan, purpose and tokens.

    ``purpose`` None names each API's own purpose from the operation table.
    ``three_legged`` tokens name a subscriber (CIBA); otherwise a direct call's token is
    two-legged unless its purpose needs consent (the identity server issues no two-legged
    token for such a purpose, so the application holds one per subscriber). Calls through
    the aggregator always carry the aggregator's three-legged token.
    """

    id: str
    plan: str
    purpose: str | None = None
    three_legged: bool = False
    sandbox: bool = False
    """A sandbox application: the operator lets it reach its documented test numbers only."""


@dataclass(frozen=True, slots=True)
class _Work:
    """What the gateway needs to know about a workload at this operator, worked out once."""

    operation: Operation
    purpose: str
    policy: PurposePolicy | None
    consent: bool
    scopes: tuple[str, ...]


class _Terms:
    """One client's calls of one API at this operator (direct or through the aggregator),
    worked out on its first call: the work, the flow, and the grant facts of a two-legged
    token (the same for every call) or those last built for each number (reused while the
    consent and subscriber records they hold are the stores' own)."""

    __slots__ = ("facts", "flow", "seen", "two_legged", "work")

    def __init__(self, work: _Work, flow: Callable[[Caller], Flow[Any]], two_legged: bool) -> None:
        self.work = work
        self.flow = flow
        self.two_legged = two_legged
        self.facts: GrantFacts | None = None
        self.seen: dict[str, GrantFacts] = {}


class _ClientTerms:
    """A client's :class:`_Terms` by API, for direct calls and for calls through the
    aggregator; holding ``client`` keeps its id from being reused while the entry lives."""

    __slots__ = ("client", "direct", "via")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.direct: dict[str, _Terms] = {}
        self.via: dict[str, _Terms] = {}


Reply = Callable[[Answer], None]
"""Hears how a request ended, once (maybe before the call that started it returns)."""


@dataclass(frozen=True, slots=True)
class Line:
    """A subscriber line as callers see it: the number, its device address, a stable rank.

    ``rank`` in [0, 1) is a hash of the line's position, so a consent revocation wave of
    share ``s`` always hits the same subscribers (those ranked below ``s``).
    """

    number: str
    ipv4: str
    rank: float


OK = Answer(200)
DC_UNREACHABLE = Answer(503, "UNAVAILABLE")
NO_GATEWAY_READY = Answer(503, "UNAVAILABLE")
REPLICA_LOST = Answer(502, "BAD_GATEWAY")
"""The balancer's answer when the gateway replica holding a call died."""
IDENTITY_DOWN = Answer(503, "IDENTITY_UNAVAILABLE")
CIBA_DENIED = Answer(403, "ACCESS_DENIED")

BREAKER_LEVEL = {
    CircuitBreakerState.CLOSED: 0.0,
    CircuitBreakerState.DISABLED: 0.0,
    CircuitBreakerState.METRICS_ONLY: 0.0,
    CircuitBreakerState.HALF_OPEN: 1.0,
    CircuitBreakerState.OPEN: 2.0,
    CircuitBreakerState.FORCED_OPEN: 2.0,
}
"""Breaker states as plot levels: 0 closed, 1 half-open, 2 open."""

_WORKING = frozenset({ReplicaState.READY, ReplicaState.DRAINING})

_TERMS_BOUND = 4096
"""Clients (and, per client and API, numbers) whose terms and facts are kept before the
cache is cleared: a caller that makes a client object per call gains nothing, loses nothing."""


class _GaugeNames(NamedTuple):
    """An operator's gauge names: (queue, busy) per network function; per data centre its
    busy, replicas, ready and rotation names and (buffer, breaker) per guard."""

    core: list[tuple[str, str]]
    data_centres: list[tuple[str, str, str, str, list[tuple[str, str]]]]


class SimDataCentre:
    """One data centre: gateway replicas (a :class:`GatewayPool`, healed and maybe
    autoscaled), identity replicas and its integrator's guards."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        spec: DataCentreSpec,
        guards: dict[NetworkFunctionKind, BackendGuard],
        seed: str = "",
    ) -> None:
        self.name = name
        self.spec = spec
        self.up = True
        self.pool = GatewayPool(
            env,
            spec.gateway.replicas,
            spec.gateway.workers,
            startup=spec.replica_startup,
            liveness=spec.liveness_delay,
        )
        wake_up = spec.gateway.wake_up
        if wake_up is not None:
            self.pool.wake_up = partial(wake_up.sampler(), random.Random(f"{seed}:{name}:wake"))
        self.identity = Station(env, spec.identity.workers * spec.identity.replicas)
        self.identity_time = spec.identity.service_time.sampler()
        """Draws an identity replica's time for one token request."""
        self.guards = guards
        self.gateway_time = spec.gateway.service_time.sampler()
        """Draws a gateway replica's processing time for one request."""
        self.after_answer = spec.gateway.work_after_answer
        """The share of that time the replica spends after the call has passed on."""

    @property
    def gateways(self) -> list[Replica]:
        """The gateway replicas in rotation (ready, not draining, not failed)."""
        return self.pool.rotation

    def gateway(self) -> Replica | None:
        """The next gateway replica in rotation, round robin (the data centre's local
        balancer); None when no replica is ready."""
        return self.pool.pick()


class _Request:
    """One API request inside the operator, between its gateway slot and its flow's end."""

    __slots__ = (
        "after",
        "api",
        "checked",
        "client",
        "dc",
        "line",
        "operator",
        "reply",
        "revoked",
        "via",
    )

    def __init__(
        self,
        operator: SimOperator,
        dc: SimDataCentre,
        client: Client,
        api: str,
        line: Line,
        via: bool,
        reply: Reply,
    ) -> None:
        self.operator = operator
        self.dc = dc
        self.client = client
        self.api = api
        self.line = line
        self.via = via
        self.reply = reply
        self.revoked: float | None = None
        """Ground truth for a revoked consent let through: when every data centre sees it."""
        self.checked = 0.0
        self.after: tuple[Replica, float] | None = None
        """The replica and the seconds of its work left once the call has passed on."""

    def __call__(self) -> None:
        """The gateway processed the request: its checks, then the integrator flow."""
        after = self.after
        if after is not None:
            after[0].serve_next(after[1], _AFTER_ANSWER)
        self.operator._after_gateway(self)

    def lost(self) -> None:
        """The gateway replica holding the request died: the balancer answers 502."""
        self.reply(REPLICA_LOST)

    def ended(self, error: CamaraError | None) -> None:
        answer = OK if error is None else self.operator.answer(error.status, error.code)
        if self.revoked is not None and answer.ok:
            self.operator.consent.served(self.revoked, self.checked)
        self.reply(answer)


class _Nothing:
    """A replica's work after a call's answer: it holds the worker, nobody waits for it."""

    __slots__ = ()

    def __call__(self) -> None:
        return None

    def lost(self) -> None:
        return None


_AFTER_ANSWER = _Nothing()


def single_party_trust(operator_id: str) -> TrustGraph:
    """A trust graph where ``operator_id`` trusts the aggregator (a world of one operator)."""
    graph = TrustGraph()
    graph.add_party(operator_id, NodeKind.OPERATOR)
    graph.add_party(AGGREGATOR, NodeKind.AGGREGATOR)
    graph.state(operator_id, AGGREGATOR)
    return graph


class SimOperator:
    """An operator's tiers in virtual time, built from its scenario description."""

    def __init__(
        self,
        env: simpy.Environment,
        operator_id: str,
        spec: OperatorSpec,
        *,
        seed: str,
        start: datetime,
        trust: TrustGraph | None = None,
        config: OperatorConfig | None = None,
    ) -> None:
        """``config`` replaces the operator config the spec describes (numbers, seed, plans,
        purposes): a live operator's own config gives the simulation the same subscribers."""
        self.env = env
        self.id = operator_id
        self.spec = spec
        policies = spec.policies
        plans = policies.throttling.plans or default_plans()
        names = [plan.name for plan in plans]
        self.config = config or OperatorConfig(
            id=operator_id,
            display_name=spec.display_name or operator_id,
            country=spec.country,
            mcc=spec.mcc,
            mnc=spec.mnc,
            number_ranges=spec.number_ranges,
            number_digits=spec.number_digits,
            subscribers=spec.subscribers,
            seed=zlib.crc32(f"{seed}:{operator_id}".encode()) % 1_000_000,
            plans=plans,
            # The config names a default plan; keep it valid for any plan set.
            default_plan="pay-as-you-go" if "pay-as-you-go" in names else names[0],
            lifetimes=spec.lifetimes,
        )
        now = clock(env)
        self.calendar = calendar(env, start.timestamp())
        self.subscribers = CachedSubscriberBase(self.config, self.calendar, start)
        self.numbers = list(self.subscribers.numbers())
        self.flows = operations_for(Coverage.of_country(self.config.country))
        """Each workload's flow as this network runs it (its coverage, as the live one's)."""
        self.lines = [
            Line(
                number,
                self.subscribers.plan.ipv4(index, None) or "0.0.0.0",
                (index * 2654435761 % 1000) / 1000,
            )
            for index, number in enumerate(self.numbers)
        ]
        self.core: dict[NetworkFunctionKind, CallbackNetworkFunction[Any, Any]] = build_core(
            env, spec.core, self.subscribers, f"{seed}:{operator_id}"
        )
        self.throttle: ThrottlePolicy = (
            Throttle(now, calendar_clock=self.calendar)
            if policies.throttling.enabled
            else NoThrottle()
        )
        self.plans = InMemoryPlans.of(self.config, clock=self.calendar)
        self.admission = Admission(self.plans, self.throttle, self.calendar)
        self._subscribed: set[tuple[str, str]] = set()
        self._work: dict[tuple[str | None, str], _Work] = {}
        self._terms: dict[int, _ClientTerms] = {}
        """By ``id(client)``: what the gateway worked out for its calls (an identity lookup,
        no tuple key to build and hash per call); bounded, cleared when full."""
        self._answers: dict[tuple[int, str | None], Answer] = {}
        settings = policies.guard_settings()
        self.breaker_changes: Counter[str] = Counter()
        self.deadlines = Deadlines(env)
        self.data_centres: dict[str, SimDataCentre] = {}
        for name, dc_spec in spec.data_centres.items():
            guards = build_guards(f"{operator_id}/{name}", now, settings, policies.circuit_breaker)
            for guard in guards.values():
                guard.breaker.add_listener(self._count_transition)
            self.data_centres[name] = SimDataCentre(
                env, name, dc_spec, guards, seed=f"{seed}:{operator_id}"
            )
        check = spec.health_check
        self.balancer = GlobalLoadBalancer(
            operator_id,
            HealthTracker(
                [DataCentre(name=name, weight=dc.weight) for name, dc in spec.data_centres.items()],
                clock=now,
                policy=HealthPolicy(
                    interval=check.interval,
                    failures_to_down=check.unhealthy_threshold,
                    successes_to_up=check.healthy_threshold,
                ),
            ),
        )
        self.trust = trust if trust is not None else single_party_trust(operator_id)
        self.trusts_aggregator = True
        self.refresh_trust()
        self.identity_down = False
        self.consent = ConsentReplicas(
            env,
            operator_id,
            {name: dc.weight for name, dc in spec.data_centres.items()},
            seed,
            self.calendar,
        )
        self._rng = random.Random(f"{seed}:{operator_id}:tiers")
        self._gauge_names: _GaugeNames | None = None

    def prepare(self) -> None:
        """Generate every subscriber the backends will look up, before the clock starts."""
        for number in self.numbers:
            self.subscribers.get(number)

    # -- time-driven ------------------------------------------------------------------------

    def _count_transition(self, event: StateTransition) -> None:
        self.breaker_changes[event.to_state.value] += 1

    def refresh_trust(self) -> None:
        """Ask the trust graph again (after a revocation or reinstatement changed it)."""
        self.trusts_aggregator = self.trust.trusts(self.id, AGGREGATOR)

    def start(self) -> None:
        """Start the balancer's health checks and each autoscaled data centre's HPA loop."""
        self.env.process(self._health_checks())
        for dc in self.data_centres.values():
            if dc.spec.autoscale is not None:
                self.env.process(dc.pool.autoscale(dc.spec.autoscale))

    def _health_checks(self) -> Generator[simpy.Event, Any, None]:
        """Probe each data centre when its health tracker says a check is due."""
        env, health = self.env, self.balancer.health
        while True:
            for name in health.due():
                self.balancer.record_check(name, self.data_centres[name].up)
            yield env.timeout(max(0.0, health.next_due_at() - env.now))

    def set_backend_faults(self, function: str, faults: Faults) -> None:
        """Switch one network function's faults now."""
        self.core[NetworkFunctionKind(function)].set_faults(faults)

    # -- calls ------------------------------------------------------------------------------

    def _route(self) -> SimDataCentre | None:
        try:
            name = self.balancer.pick()
        except NoHealthyDataCentreError:
            return None
        dc = self.data_centres[name]
        return dc if dc.up else None

    def knows(self, number: str) -> bool:
        """Whether this operator serves ``number`` now (its identity server issues tokens for
        it; for a number that ported away it answers 404, as live)."""
        return self.subscribers.get(number) is not None

    def answer(self, status: int, code: str | None) -> Answer:
        """The answer for a status and code (one immutable object per pair, reused)."""
        key = (status, code)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = Answer(status, code)
        return found

    def handle(
        self, client: Client, api: str, line: Line, via_aggregator: bool, reply: Reply
    ) -> None:
        """One API request from arrival at the balancer until ``reply`` hears its answer."""
        try:
            name = self.balancer.pick()
        except NoHealthyDataCentreError:
            reply(DC_UNREACHABLE)
            return
        dc = self.data_centres[name]
        if not dc.up:
            reply(DC_UNREACHABLE)
            return
        replica = dc.pool.pick()
        if replica is None:
            reply(NO_GATEWAY_READY)
            return
        request = _Request(self, dc, client, api, line, via_aggregator, reply)
        seconds = dc.gateway_time(self._rng)
        share = dc.after_answer
        if share:
            # The work after the answer (live: the metering commit, a callback the event loop
            # runs before the next requests it reads) goes ahead of the replica's queue once
            # the call has passed on.
            request.after = (replica, seconds * share)
            seconds -= seconds * share
        replica.serve(seconds, request)

    def work(self, purpose: str | None, api: str) -> _Work:
        """The workload's first operation (the one admitted), its purpose and legal basis."""
        key = (purpose, api)
        found = self._work.get(key)
        if found is None:
            operation = operation_named(WORKLOADS[api][0])
            named = purpose or operation.purpose
            found = _Work(
                operation,
                named,
                self.config.purpose(named),
                needs_consent(self.config, named),
                operation.scopes[0],
            )
            self._work[key] = found
        return found

    def _terms_of(self, request: _Request) -> _Terms:
        """The client's terms for the request's API (and route), worked out on first use."""
        client = request.client
        terms = self._terms.get(id(client))
        if terms is None or terms.client is not client:
            if len(self._terms) >= _TERMS_BOUND:
                self._terms.clear()
            terms = self._terms[id(client)] = _ClientTerms(client)
        by_api = terms.via if request.via else terms.direct
        found = by_api.get(request.api)
        if found is None:
            work = self.work(client.purpose, request.api)
            two_legged = not (request.via or client.three_legged or work.consent)
            found = by_api[request.api] = _Terms(work, self.flows[request.api], two_legged)
            self._subscribe(client, work.operation.api)
        return found

    def _facts(self, request: _Request, terms: _Terms) -> GrantFacts:
        """The grant behind the call's token, as this data centre's records show it now.

        Built from the same inputs (the client, the number, the work, and the very consent
        record and subscriber record the stores hold now) the facts are equal, so the ones
        built last time are handed out again; the cache is bounded and cleared when full.
        """
        work = terms.work
        if terms.two_legged:
            facts = terms.facts
            if facts is None:
                facts = terms.facts = self._build_facts(request, work)
            return facts
        number = request.line.number
        consent = None
        if work.consent:
            consent = self.consent.consent_for(
                request.dc.name, number, request.client.id, work.purpose, work.scopes
            )
        subscriber = self.subscribers.get(number)
        seen = terms.seen.get(number)
        if seen is not None and seen.consent is consent and seen.subscriber is subscriber:
            return seen
        if len(terms.seen) >= _TERMS_BOUND:
            terms.seen.clear()
        built = terms.seen[number] = self._build_facts(request, work, consent, subscriber)
        return built

    def _build_facts(
        self,
        request: _Request,
        work: _Work,
        consent: Consent | None = None,
        subscriber: Subscriber | None = None,
    ) -> GrantFacts:
        """The facts of the token the simulated application holds for this work.

        A Number Verification token is modelled as one the network authenticated (the
        authorization code flow from the device, or a TS.43 operator token): the only kind
        the live gateway answers, so an application that verifies numbers has one whatever
        flow the scenario declares for its other APIs. Admission still asks; a scenario
        cannot model a verification from a ``tel:`` token (the live answer is a 403).
        """
        client, number = request.client, request.line.number
        if not (request.via or client.three_legged or work.consent):
            token = TokenContext(
                client.id,
                None,
                work.purpose,
                work.scopes,
                "",
                client.id,
                GrantType.CLIENT_CREDENTIALS,
                None,
                by_network=work.operation.network_authenticated,
            )
            return GrantFacts(token, policy=work.policy, sandbox=client.sandbox)
        grant = GrantType.JWT_BEARER if request.via and not work.consent else GrantType.CIBA
        token = TokenContext(
            client.id,
            number,
            work.purpose,
            work.scopes,
            "",
            number,
            grant,
            consent.id if consent is not None else None,
            by_network=work.operation.network_authenticated,
        )
        return GrantFacts(
            token,
            policy=work.policy,
            consent=consent,
            subscriber=subscriber,
            sandbox=request.client.sandbox and not request.via,
        )

    def _subscribe(self, client: Client, api: str) -> None:
        """The application holds its scenario plan for each API it calls (first call)."""
        key = (client.id, api)
        if key not in self._subscribed:
            self._subscribed.add(key)
            if any(plan.name == client.plan for plan in self.config.plans):
                self.plans.subscribe(client.id, api, client.plan)

    def _after_gateway(self, request: _Request) -> None:
        """The live gateway's admission, then (two-legged) the objection check, then the flow."""
        line = request.line
        terms = self._terms_of(request)
        work = terms.work
        facts = terms.facts or self._facts(request, terms)  # set: a two-legged token's
        try:
            self.admission.admit(
                facts, work.operation, party_trusted=not request.via or self.trusts_aggregator
            )
        except CamaraError as refusal:
            if facts.consent is not None and not facts.consent.active(self.calendar()):
                self.consent.refused()
            request.reply(self.answer(refusal.status, refusal.code))
            return
        if facts.sandbox:
            # Live, the integrator asks this once the device is resolved, before objections.
            refused = sandbox_refusal(True, self.subscribers.is_test_number(line.number))
            if refused is not None:
                request.reply(self.answer(refused.status, refused.code))
                return
        if facts.token.msisdn is None:
            # Live, the integrator resolves the device (an unknown one is its 404) and then
            # asks whether the subscriber objects to the purpose.
            subscriber = self.subscribers.get(line.number)
            objected = objection(work.policy, subscriber) if subscriber is not None else None
            if objected is not None:
                request.reply(self.answer(objected.status, objected.code))
                return
        if work.consent and self.consent.active:
            # Ground truth, only counted: was this consent revoked, and since when everywhere?
            now = self.env._now
            request.revoked = self.consent.revoked_everywhere_at(line.number, now)
            request.checked = now
        caller = new_caller((line.number, line.ipv4, self.calendar()))
        run_flow(
            self.env,
            terms.flow(caller),
            self.core,
            request.dc.guards,
            self.deadlines,
            request.ended,
        )

    def issue_token(self, auth: AuthSpec | None, reply: Reply) -> None:
        """A token: client credentials (``auth`` None) or a CIBA round with the handset."""
        dc = self._route()
        if dc is None:
            reply(DC_UNREACHABLE)
            return
        if self.identity_down:
            reply(IDENTITY_DOWN)
            return
        station, service = dc.identity, dc.identity_time
        rng, env = self._rng, self.env

        def issued() -> None:
            reply(OK)

        def handset_answered(_: Timer) -> None:
            assert auth is not None
            if rng.random() >= auth.approval_rate:
                reply(CIBA_DENIED)
            elif self.identity_down:
                reply(IDENTITY_DOWN)
            else:
                station.serve(service(rng), issued)

        def requested() -> None:
            if auth is None:
                reply(OK)
                return
            call_later(env, auth.answer_time.sample(rng), handset_answered)

        station.serve(service(rng), requested)

    # -- gauges -----------------------------------------------------------------------------

    def gauges(self) -> dict[str, float]:
        """Queue lengths, utilisation, breaker levels and rotation, sampled now."""
        names = self._gauge_names or self._name_gauges()
        values: dict[str, float] = {}
        for (queue, busy), nf in zip(names.core, self.core.values(), strict=True):
            values[queue] = nf.queue_length
            values[busy] = nf.in_service / nf.spec.servers
        health = self.balancer.health
        for (name, dc), (busy, replicas, ready, rotation, guards) in zip(
            self.data_centres.items(), names.data_centres, strict=True
        ):
            pool = dc.pool
            working = [r for r in pool.replicas if r.state in _WORKING]
            in_use = sum(r.busy for r in working)
            capacity = sum(r.servers for r in working)
            values[busy] = in_use / capacity if capacity else 0.0
            values[replicas] = len(pool.replicas)
            values[ready] = len(pool.rotation)
            values[rotation] = 1.0 if health.is_up(name) else 0.0
            for (buffer, breaker), guard in zip(guards, dc.guards.values(), strict=True):
                values[buffer] = guard.buffer.waiting
                values[breaker] = BREAKER_LEVEL[guard.breaker.state]
        return values

    def _name_gauges(self) -> _GaugeNames:
        """The gauges' names, formatted once (the network functions, data centres and guards
        are fixed when the operator is built; formatting them every second cost more than
        reading the values)."""
        op = self.id
        self._gauge_names = _GaugeNames(
            [(f"queue.{op}.{kind.value}", f"busy.{op}.{kind.value}") for kind in self.core],
            [
                (
                    f"busy.{op}.{name}.gateway",
                    f"replicas.{op}.{name}",
                    f"replicas_ready.{op}.{name}",
                    f"rotation.{op}.{name}",
                    [
                        (f"buffer.{op}.{name}.{kind.value}", f"breaker.{op}.{name}.{kind.value}")
                        for kind in dc.guards
                    ],
                )
                for name, dc in self.data_centres.items()
            ],
        )
        return self._gauge_names
