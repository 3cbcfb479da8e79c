"""The integrator in virtual time: the live CAMARA flows, the live guards, SimPy backends.

Each scenario API name maps to one of :mod:`operators.integrator.operations`' flows, driven
by :func:`operators.integrator.run_process` through one :class:`BackendGuard` per backend and
data centre, against :class:`sim.core.SimNetworkFunction` backends answering from the
operator's own handlers (HLR, location server, ...). The subscriber base is the real one
with a small subscriber count; its lookups are memoised because the simulation records no
subscriber changes, and a database round trip per call would cost more than the call.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import simpy

from operators.camara.common import Point
from operators.camara.kyc_match import KycMatchRequest
from operators.camara.location import VerifyCircle
from operators.config import OperatorConfig
from operators.core import (
    CoreSpec,
    Hlr,
    IpQuery,
    KycRegister,
    LocationServer,
    NetworkFunctionKind,
    NvAuthenticator,
    NvBinding,
    PolicyFunction,
    QosSessionRecord,
)
from operators.integrator import BackendCall, BackendGuard, Flow, GuardSettings
from operators.integrator import operations as ops
from operators.policies import CircuitBreakerConfig
from operators.storage import Database
from operators.subscriber import Subscriber
from operators.subscriber_base import SubscriberBase
from operators.types import Clock
from sim.core import SimNetworkFunction

__all__ = [
    "OPERATIONS",
    "CachedSubscriberBase",
    "Caller",
    "build_core",
    "build_guards",
]


class CachedSubscriberBase(SubscriberBase):
    """The real subscriber base, with lookups memoised (no changes happen in a scenario)."""

    def __init__(self, config: OperatorConfig, clock: Clock, reference_time: datetime) -> None:
        super().__init__(config, Database(":memory:"), clock=clock, reference_time=reference_time)
        self._memo: dict[str, Subscriber | None] = {}

    def get(self, msisdn: str) -> Subscriber | None:
        """The subscriber, computed once per number."""
        try:
            return self._memo[msisdn]
        except KeyError:
            found = self._memo[msisdn] = super().get(msisdn)
            return found


@dataclass(frozen=True, slots=True)
class Caller:
    """What a flow needs to know about the call: the number, its device address, the time."""

    msisdn: str
    ipv4: str
    now: float


_CIRCLE = VerifyCircle(
    areaType="CIRCLE", center=Point(latitude=40.4168, longitude=-3.7038), radius=50_000
)
_CLAIM = KycMatchRequest(givenName="Ana", familyName="Garcia", postalCode="28001")


def _number_verification(caller: Caller) -> Flow[bool]:
    binding: NvBinding = yield BackendCall(
        NetworkFunctionKind.NV_AUTHENTICATOR, IpQuery(caller.ipv4)
    )
    return (yield from ops.verify_number(binding.msisdn, caller.msisdn, None))


def _qod_session(caller: Caller) -> Flow[QosSessionRecord]:
    record = yield from ops.create_qos_session(caller.msisdn, "QOS_E", 600.0)
    return (yield from ops.delete_qos_session(record.session_id))


OPERATIONS: dict[str, Callable[[Caller], Flow[Any]]] = {
    "sim-swap.check": lambda c: ops.check_sim_swap(c.msisdn, 240, c.now),
    "sim-swap.retrieve-date": lambda c: ops.retrieve_sim_swap_date(c.msisdn),
    "number-verification.verify": _number_verification,
    "device-reachability-status": lambda c: ops.reachability_status(c.msisdn),
    "device-roaming-status": lambda c: ops.roaming_status(c.msisdn),
    "location-verification.verify": lambda c: ops.verify_location(c.msisdn, _CIRCLE, None, c.now),
    "location-retrieval.retrieve": lambda c: ops.retrieve_location(c.msisdn, None, None, c.now),
    "kyc-match.match": lambda c: ops.kyc_match(c.msisdn, _CLAIM),
    "quality-on-demand.session": _qod_session,
}
"""Scenario API name -> the live integrator's flow for it (QoD: create then delete)."""

CONSENT_APIS = frozenset({"location-retrieval.retrieve", "kyc-match.match"})
"""APIs whose purpose needs the subscriber's consent (a revocation wave refuses them)."""


def build_core(
    env: simpy.Environment, core: CoreSpec, subscribers: SubscriberBase, seed: str
) -> dict[NetworkFunctionKind, SimNetworkFunction[Any, Any]]:
    """The operator's five network functions in virtual time, each with its own stream."""
    handlers: dict[str, Callable[[Any], Any]] = {
        "sim_data_register": Hlr(subscribers),
        "location_server": LocationServer(subscribers),
        "policy_function": PolicyFunction(subscribers),
        "kyc_register": KycRegister(subscribers),
        "nv_authenticator": NvAuthenticator(subscribers),
    }
    return {
        spec.kind: SimNetworkFunction(
            env, spec, handlers[slot], random.Random(f"{seed}:core:{slot}")
        )
        for slot, spec in core.functions().items()
    }


def build_guards(
    name: str, clock: Clock, settings: GuardSettings, breaker: CircuitBreakerConfig | None
) -> dict[NetworkFunctionKind, BackendGuard]:
    """One guard per backend; without a breaker config the breaker is switched to DISABLED."""
    guards = {}
    for kind in NetworkFunctionKind:
        guard = BackendGuard(f"{name}/{kind.value}", clock, settings)
        if breaker is None:
            guard.breaker.transition_to_disabled()
        guards[kind] = guard
    return guards
