"""The integrator in virtual time: the live CAMARA flows, the live guards, SimPy backends.

Each scenario API name is a workload of the operation table
(:data:`~operators.camara.WORKLOADS`), whose operations map to
:mod:`operators.integrator.operations`' flows, driven
by :func:`run_flow` through one :class:`BackendGuard` per backend and data centre, against
:class:`~sim.tiers.network_function.CallbackNetworkFunction` backends answering from the
operator's own handlers (HLR, location server, ...). The subscriber base is the real one
with a small subscriber count; its lookups are memoised because the simulation records no
subscriber changes during a run, and a database round trip per call would cost more than
the call.

:func:`run_flow` is the SimPy driver of the guarded backend call written once in
:mod:`operators.integrator.flow` (admit, wait in the buffer until promoted or ``max_wait``,
call within ``call_timeout``, finish with the outcome, throw the CAMARA error into the flow);
it only waits, on callbacks and :class:`~sim.tiers.deadlines.Deadlines` instead of a process,
a Condition and two Timeouts per backend call.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import simpy

from operators import (
    CamaraError,
    Change,
    ChangeKind,
    Clock,
    Database,
    OperatorConfig,
    Subscriber,
    SubscriberBase,
)
from operators.camara import WORKLOADS, KycMatchRequest, Point, VerifyCircle
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
)
from operators.integrator import (
    BackendCall,
    BackendGuard,
    Coverage,
    Flow,
    GuardedCall,
    GuardSettings,
    check_sim_swap,
    create_qos_session,
    delete_qos_session,
    kyc_match,
    next_call,
    reachability_status,
    retrieve_location,
    retrieve_sim_swap_date,
    roaming_status,
    verify_location,
    verify_number,
)
from operators.policies import CircuitBreakerConfig
from sim.tiers.deadlines import Deadlines
from sim.tiers.network_function import Answered, CallbackNetworkFunction
from sim.tiers.timers import Timer, call_later

__all__ = [
    "OPERATIONS",
    "STEPS",
    "Backend",
    "CachedSubscriberBase",
    "Caller",
    "FlowEnd",
    "build_core",
    "build_guards",
    "new_caller",
    "operations_for",
    "run_flow",
    "workload_circle",
]


class _Memo(dict[str, "Subscriber | None"]):
    """Records by number, each loaded on its first lookup: a hit is a dict lookup in C."""

    __slots__ = ("_load",)

    def __init__(self, load: Callable[[str], Subscriber | None]) -> None:
        super().__init__()
        self._load = load

    def __missing__(self, msisdn: str) -> Subscriber | None:
        found = self[msisdn] = self._load(msisdn)
        return found


class CachedSubscriberBase(SubscriberBase):
    """The real subscriber base, with lookups memoised (a change made through
    :meth:`record_change` takes effect at once; scheduled changes are not supported).

    ``get`` is the memo's own ``__getitem__``, set on the instance: the simulation looks a
    subscriber up a few times per call, and a method wrapping the memo cost a Python frame
    each time."""

    def __init__(self, config: OperatorConfig, clock: Clock, reference_time: datetime) -> None:
        super().__init__(config, Database(":memory:"), clock=clock, reference_time=reference_time)
        self._memo = _Memo(super().get)
        self.get = self._memo.__getitem__  # type: ignore[method-assign,assignment]
        self._by_address: dict[str, Subscriber | None] = {}

    def record_change(
        self, msisdn: str, kind: ChangeKind, payload: dict[str, Any], at: float | None = None
    ) -> Change:
        """Record a change (a port, an opt-out) and forget the memoised record."""
        change = super().record_change(msisdn, kind, payload, at)
        self._memo.pop(msisdn, None)
        self._by_address.clear()  # a port in gives a device address
        return change

    def by_ipv4(self, address: str) -> Subscriber | None:
        """The subscriber at a device address, worked out once per address."""
        try:
            return self._by_address[address]
        except KeyError:
            found = self._by_address[address] = super().by_ipv4(address)
            return found


class Caller(NamedTuple):
    """What a flow needs to know about the call: the number, its device address, the time.

    A named tuple: one is made per call, and a tuple is cheaper to make than a dataclass.
    """

    msisdn: str
    ipv4: str
    now: float


new_caller: Callable[[tuple[str, str, float]], Caller] = functools.partial(tuple.__new__, Caller)
"""``Caller(*fields)`` without the named tuple's ``__new__`` frame (one is made per call)."""

_CIRCLE = VerifyCircle(
    areaType="CIRCLE", center=Point(latitude=40.4168, longitude=-3.7038), radius=50_000
)
_CLAIM = KycMatchRequest(givenName="Ana", familyName="Garcia", postalCode="28001")


def _number_verification(caller: Caller, _: object = None) -> Flow[bool]:
    binding: NvBinding = yield BackendCall(
        NetworkFunctionKind.NV_AUTHENTICATOR, IpQuery(caller.ipv4)
    )
    return (yield from verify_number(binding.msisdn, caller.msisdn, None))


class Step(Protocol):
    """One operation's live flow with the simulation's sample inputs; gets the previous step's
    result (``deleteSession`` deletes the session ``createSession`` made), None for the first."""

    def __call__(self, caller: Caller, previous: Any = None, /) -> Flow[Any]: ...


STEPS: Mapping[str, Step] = {
    "checkSimSwap": lambda c, _=None: check_sim_swap(c.msisdn, 240, c.now),
    "retrieveSimSwapDate": lambda c, _=None: retrieve_sim_swap_date(c.msisdn),
    "phoneNumberVerify": _number_verification,
    "getReachabilityStatus": lambda c, _=None: reachability_status(c.msisdn),
    "getRoamingStatus": lambda c, _=None: roaming_status(c.msisdn),
    "verifyLocation": lambda c, _=None: verify_location(c.msisdn, _CIRCLE, None, c.now),
    "retrieveLocation": lambda c, _=None: retrieve_location(c.msisdn, None, None, c.now),
    "KYC_Match": lambda c, _=None: kyc_match(c.msisdn, _CLAIM),
    "createSession": lambda c, _=None: create_qos_session(c.msisdn, "QOS_E", 600.0),
    "deleteSession": lambda c, record=None: delete_qos_session(record.session_id),
}
"""Operation id (of the operation table) -> the live integrator's flow for it."""


def _workload(steps: tuple[Step, ...]) -> Callable[[Caller], Flow[Any]]:
    if len(steps) == 1:
        return steps[0]  # called with the caller alone: no wrapper's frame per call

    def flow(caller: Caller) -> Flow[Any]:
        result: Any = None
        for step in steps:
            result = yield from step(caller, result)
        return result

    return flow


def workload_circle(coverage: Coverage | None) -> VerifyCircle:
    """The area the simulated workload verifies: Madrid's circle where the network reaches it,
    else the same circle around the network's first covered place (a French network cannot
    verify an area in Madrid: it would answer AREA_NOT_COVERED, which no workload asks for)."""
    centre = _CIRCLE.center
    if coverage is None or coverage.reaches(centre.latitude, centre.longitude, _CIRCLE.radius):
        return _CIRCLE
    latitude, longitude = coverage.centre()
    return VerifyCircle(
        areaType="CIRCLE",
        center=Point(latitude=latitude, longitude=longitude),
        radius=_CIRCLE.radius,
    )


@functools.cache
def operations_for(coverage: Coverage | None) -> Mapping[str, Callable[[Caller], Flow[Any]]]:
    """Workload name (a scenario's API) -> its flow for a network with this coverage: the
    table's operations in order, Location Verification judged against the coverage as live."""
    circle = workload_circle(coverage)

    def verify(caller: Caller, _: object = None) -> Flow[Any]:
        return verify_location(caller.msisdn, circle, None, caller.now, None, coverage)

    steps = {**STEPS, "verifyLocation": verify}
    return {
        name: _workload(tuple(steps[op] for op in operation_ids))
        for name, operation_ids in WORKLOADS.items()
    }


OPERATIONS = operations_for(None)
"""The flows for a network whose coverage is not modelled (it reaches everywhere)."""


def build_core(
    env: simpy.Environment, core: CoreSpec, subscribers: SubscriberBase, seed: str
) -> dict[NetworkFunctionKind, CallbackNetworkFunction[Any, Any]]:
    """The operator's five network functions in virtual time, each with its own stream."""
    handlers: dict[str, Callable[[Any], Any]] = {
        "sim_data_register": Hlr(subscribers),
        "location_server": LocationServer(subscribers),
        "policy_function": PolicyFunction(subscribers),
        "kyc_register": KycRegister(subscribers),
        "nv_authenticator": NvAuthenticator(subscribers),
    }
    return {
        spec.kind: CallbackNetworkFunction(
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


FlowEnd = Callable[[CamaraError | None], None]
"""Called once when a flow ends: None when it returned, else the CAMARA error it raised."""


class Backend(Protocol):
    """A backend in virtual time: ``submit`` answers ``done(ok, record or BackendError)``."""

    def submit(self, request: Any, done: Answered) -> None: ...


class _FlowRun:
    """One operation's flow, advanced by the answers of its guarded backend calls."""

    __slots__ = ("deadlines", "done", "env", "flow", "functions", "guards")

    def __init__(
        self,
        env: simpy.Environment,
        flow: Flow[Any],
        functions: Mapping[NetworkFunctionKind, Backend],
        guards: Mapping[NetworkFunctionKind, BackendGuard],
        deadlines: Deadlines,
        done: FlowEnd,
    ) -> None:
        self.env = env
        self.flow = flow
        self.functions = functions
        self.guards = guards
        self.deadlines = deadlines
        self.done = done

    def advance(self, value: Any, error: CamaraError | None) -> None:
        """Send a record (or throw an error) into the flow and start its next backend call."""
        try:
            step = next_call(self.flow, self.guards, value, error)
        except CamaraError as failure:
            failure.__traceback__ = None  # no frame cycles: the run stays collectable
            self.done(failure)
            return
        if not isinstance(step, GuardedCall):
            self.done(None)
            return
        waiter = _Waiter(self, step)
        if step.waiting:
            waiter.due = step.wait_deadline
            step.on_promotion(waiter.promoted)
            self.deadlines.add(max(self.env._now, waiter.due), waiter)
        else:
            waiter.run()


class _Waiter:
    """Waits for one guarded call: in the buffer, then for the backend within its timeout.

    The :class:`GuardedCall` decides; this only turns a promotion, a deadline from
    :class:`Deadlines` or the backend's callback into the call's matching step.
    """

    __slots__ = ("active", "call", "due", "flow", "running")

    def __init__(self, flow: _FlowRun, call: GuardedCall) -> None:
        self.flow = flow
        self.call = call
        self.active = True
        self.running = False
        self.due = 0.0
        """When it stops waiting: in the buffer (if parked), then for the backend."""

    def promoted(self) -> None:
        """The buffer gave the waiting call a slot: run it, once the guard has finished."""
        self.active = False
        call_later(self.flow.env, 0.0, self.run)

    def run(self, _: Timer | None = None) -> None:
        self.active = True
        self.running = True
        flow = self.flow
        call = self.call
        self.due = call.start()
        flow.deadlines.add(self.due, self)
        backend = call.call
        flow.functions[backend.kind].submit(backend.request, self.answered)

    def expire(self) -> None:
        """Waited too long in the buffer, or the backend did not answer in time."""
        if self.flow.env._now < self.due:
            return  # the buffer deadline of a call since promoted and running
        self.active = False
        call = self.call
        error = call.timed_out() if self.running else call.waited()
        assert error is not None, "a call still waiting at its deadline is refused"
        self.flow.advance(None, error)

    def answered(self, ok: bool, payload: Any) -> None:
        if not self.active:
            return  # the guard already timed it out; the backend's work was wasted
        self.active = False
        if ok:
            self.flow.advance(self.call.answered(payload), None)
        else:
            self.flow.advance(None, self.call.failed(payload))


def run_flow(
    env: simpy.Environment,
    flow: Flow[Any],
    functions: Mapping[NetworkFunctionKind, Backend],
    guards: Mapping[NetworkFunctionKind, BackendGuard],
    deadlines: Deadlines,
    done: FlowEnd,
) -> None:
    """Drive ``flow`` in virtual time through ``guards``; ``done`` hears how it ended.

    The one SimPy driver of :mod:`operators.integrator.flow` (the asyncio one is
    :func:`operators.integrator.run_async`): every guard decision is the flow's
    :class:`GuardedCall`'s, so both modes decide alike for the same sequence of calls.
    """
    _FlowRun(env, flow, functions, guards, deadlines, done).advance(None, None)
