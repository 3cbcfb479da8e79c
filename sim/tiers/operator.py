"""One operator in virtual time: balancer, data centres, gateway, identity, integrator, core.

A call enters through the operator's data-centre balancer, takes a gateway replica for its
processing time, passes the gateway's checks (issuer trust, consent, then the real
:class:`~operators.policies.Throttle` on ``env.now``), and runs the live integrator flow
through that data centre's guards against the operator's shared network core. Every
outcome is an :class:`Answer`, never an exception, because a SimPy process that nobody waits
for (a call whose client already timed out) must not fail the whole simulation.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import simpy

from operators.config import OperatorConfig, Plan, default_plans
from operators.core import NetworkFunctionKind
from operators.core.description import Faults
from operators.errors import CamaraError
from operators.integrator import BackendGuard, run_process
from operators.policies import CircuitBreakerState, NoThrottle, StateTransition, Throttle
from operators.policies.throttle import ThrottlePolicy
from sim.core import SimNetworkFunction
from sim.scenario import AuthSpec, DataCentreSpec, OperatorSpec
from sim.tiers.data_centres import HealthCheckedBalancer
from sim.tiers.integrator import (
    CONSENT_APIS,
    OPERATIONS,
    CachedSubscriberBase,
    Caller,
    build_core,
    build_guards,
)

__all__ = ["BREAKER_LEVEL", "Answer", "SimDataCentre", "SimOperator"]


@dataclass(frozen=True, slots=True)
class Answer:
    """How one request ended: an HTTP status and, unless it succeeded, its CAMARA code."""

    status: int
    code: str | None = None

    @property
    def ok(self) -> bool:
        """Served: 2xx, or a business answer about the subscriber (404/422)."""
        return 200 <= self.status < 400 or self.status in (404, 422)


OK = Answer(200)
DC_UNREACHABLE = Answer(503, "UNAVAILABLE")
UNTRUSTED = Answer(401, "UNAUTHENTICATED")
NO_CONSENT = Answer(403, "PERMISSION_DENIED")
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


class SimDataCentre:
    """One data centre: gateway replicas, identity replicas and its integrator's guards."""

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        spec: DataCentreSpec,
        guards: dict[NetworkFunctionKind, BackendGuard],
    ) -> None:
        self.name = name
        self.spec = spec
        self.up = True
        self.gateways = [
            simpy.Resource(env, capacity=spec.gateway.workers) for _ in range(spec.gateway.replicas)
        ]
        self.identity = simpy.Resource(env, capacity=spec.identity.workers * spec.identity.replicas)
        self.guards = guards
        self._next = 0

    def gateway(self) -> simpy.Resource:
        """The next gateway replica, round robin (the data centre's local balancer)."""
        self._next = (self._next + 1) % len(self.gateways)
        return self.gateways[self._next]


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
    ) -> None:
        self.env = env
        self.id = operator_id
        self.spec = spec
        policies = spec.policies
        plans = policies.throttling.plans or default_plans()
        names = [plan.name for plan in plans]
        self.config = OperatorConfig(
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
        epoch = start.timestamp()
        self.calendar = lambda: epoch + env.now
        self.subscribers = CachedSubscriberBase(self.config, self.calendar, start)
        self.numbers = list(self.subscribers.numbers())
        self.addresses = [
            self.subscribers.plan.ipv4(index, None) or "0.0.0.0"
            for index in range(len(self.numbers))
        ]
        for number in self.numbers:
            self.subscribers.get(number)  # generate once, before the clock starts
        self.core: dict[NetworkFunctionKind, SimNetworkFunction[Any, Any]] = build_core(
            env, spec.core, self.subscribers, f"{seed}:{operator_id}"
        )
        self.throttle: ThrottlePolicy = (
            Throttle(lambda: env.now, calendar_clock=self.calendar)
            if policies.throttling.enabled
            else NoThrottle()
        )
        self.plans: dict[str, Plan] = {plan.name: plan for plan in policies.throttling.plans}
        self._fallback_plan = policies.throttling.plans[0] if policies.throttling.plans else None
        settings = policies.guard_settings()
        self.breaker_changes: Counter[str] = Counter()
        self.data_centres: dict[str, SimDataCentre] = {}
        for name, dc_spec in spec.data_centres.items():
            guards = build_guards(
                f"{operator_id}/{name}", lambda: env.now, settings, policies.circuit_breaker
            )
            for guard in guards.values():
                guard.breaker.add_listener(self._count_transition)
            self.data_centres[name] = SimDataCentre(env, name, dc_spec, guards)
        check = spec.health_check
        self.balancer = HealthCheckedBalancer(
            list(self.data_centres),
            lambda: env.now,
            unhealthy_threshold=check.unhealthy_threshold,
            healthy_threshold=check.healthy_threshold,
        )
        self.identity_down = False
        self.revoked_issuers: set[str] = set()
        self.consent_revoked_share = 0.0
        self._rng = random.Random(f"{seed}:{operator_id}:tiers")

    # -- time-driven ------------------------------------------------------------------------

    def _count_transition(self, event: StateTransition) -> None:
        self.breaker_changes[event.to_state.value] += 1

    def start(self) -> None:
        """Start the balancer's health checks."""
        self.env.process(self._health_checks())

    def _health_checks(self) -> Generator[simpy.Event, Any, None]:
        interval = self.spec.health_check.interval
        while True:
            yield self.env.timeout(interval)
            for name, dc in self.data_centres.items():
                self.balancer.record_probe(name, dc.up)

    def set_backend_faults(self, function: str, faults: Faults) -> None:
        """Switch one network function's faults now."""
        self.core[NetworkFunctionKind(function)].set_faults(faults)

    # -- calls ------------------------------------------------------------------------------

    def _route(self) -> SimDataCentre | None:
        name = self.balancer.choose()
        return None if name is None else self.data_centres[name]

    def handle(
        self, application: str, plan_name: str, api: str, index: int, via_aggregator: bool
    ) -> Generator[simpy.Event, Any, Answer]:
        """One API request from arrival at the balancer to the gateway's response."""
        dc = self._route()
        if dc is None or not dc.up:
            return DC_UNREACHABLE
        env = self.env
        replica = dc.gateway()
        with replica.request() as slot:
            yield slot
            yield env.timeout(dc.spec.gateway.service_time.sample(self._rng))
        if via_aggregator and "aggregator" in self.revoked_issuers:
            return UNTRUSTED
        # The same subscribers stay revoked: a hash of the index, not a fresh roll.
        if (
            self.consent_revoked_share > 0
            and api in CONSENT_APIS
            and (index * 2654435761 % 1000) / 1000 < self.consent_revoked_share
        ):
            return NO_CONSENT
        plan = self.plans.get(plan_name, self._fallback_plan)
        if plan is not None:
            decision = self.throttle.check(application, plan)
            if not decision.allowed:
                return Answer(429, decision.code)
        caller = Caller(self.numbers[index], self.addresses[index], self.calendar())
        try:
            yield from run_process(env, OPERATIONS[api](caller), self.core, dc.guards)
        except CamaraError as error:
            return Answer(error.status, error.code)
        return OK

    def issue_token(self, auth: AuthSpec | None) -> Generator[simpy.Event, Any, Answer]:
        """A token: client credentials (``auth`` None) or a CIBA round with the handset."""
        dc = self._route()
        if dc is None or not dc.up:
            return DC_UNREACHABLE
        if self.identity_down:
            return IDENTITY_DOWN
        env = self.env
        station = dc.spec.identity
        with dc.identity.request() as slot:
            yield slot
            yield env.timeout(station.service_time.sample(self._rng))
        if auth is None:
            return OK
        yield env.timeout(auth.answer_time.sample(self._rng))
        if self._rng.random() >= auth.approval_rate:
            return CIBA_DENIED
        if self.identity_down:
            return IDENTITY_DOWN
        with dc.identity.request() as slot:
            yield slot
            yield env.timeout(station.service_time.sample(self._rng))
        return OK

    # -- gauges -----------------------------------------------------------------------------

    def gauges(self) -> dict[str, float]:
        """Queue lengths, utilisation, breaker levels and rotation, sampled now."""
        values: dict[str, float] = {}
        op = self.id
        for kind, nf in self.core.items():
            values[f"queue.{op}.{kind.value}"] = nf.queue_length
            values[f"busy.{op}.{kind.value}"] = nf.in_service / nf.spec.servers
        rotation = self.balancer.in_rotation()
        for name, dc in self.data_centres.items():
            busy = sum(r.count for r in dc.gateways)
            capacity = sum(r.capacity for r in dc.gateways)
            values[f"busy.{op}.{name}.gateway"] = busy / capacity
            values[f"rotation.{op}.{name}"] = 1.0 if name in rotation else 0.0
            for kind, guard in dc.guards.items():
                values[f"buffer.{op}.{name}.{kind.value}"] = guard.buffer.waiting
                values[f"breaker.{op}.{name}.{kind.value}"] = BREAKER_LEVEL[guard.breaker.state]
        return values
