"""The integrator live: the asyncio driver of the guarded flows, and its wiring.

:func:`run_async` is the one asyncio driver of :mod:`operators.integrator.flow`: it only
waits (on a future for a promotion, on ``asyncio.timeout`` for the backend) and reports what
happened to the flow's :class:`~operators.integrator.flow.GuardedCall`, which decides. Its
SimPy twin is :func:`sim.tiers.integrator.run_flow`. :class:`GuardedExecutor` runs flows
through it with one :class:`BackendGuard` per network function (and, once
:meth:`GuardedExecutor.measure` is called, one Prometheus meter per function), and
:func:`build_live_integrator` wires the operator's five asyncio functions behind it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, cast

from operators.core import (
    BackendError,
    CoreSpec,
    Hlr,
    KycRegister,
    LiveNetworkFunction,
    LocationServer,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    NvAuthenticator,
    PolicyFunction,
)
from operators.core.backend_metrics import (
    CANCELLED,
    ERROR,
    OK,
    TIMEOUT,
    BackendMeter,
    BackendMetrics,
    outcome_of,
)
from operators.core.qos_session_store import DatabaseQosSessions
from operators.errors import CamaraError
from operators.subscriber_base import SubscriberBase
from operators.types import Clock

from .coverage import Coverage
from .flow import Flow, GuardedCall, next_call
from .integrator import Integrator
from .notifications import CloudEventNotifier, QodNotifier
from .protection import BackendGuard, GuardSettings
from .qod_sessions import DatabaseQodSessions

__all__ = ["AsyncFunction", "GuardedExecutor", "build_live_integrator", "run_async"]

T = TypeVar("T")

_UNMEASURED: Mapping[NetworkFunctionKind, BackendMeter] = MappingProxyType({})


class AsyncFunction(Protocol):
    """A live backend: ``await call(request)`` gives its record or raises a BackendError."""

    def call(self, request: Any) -> Awaitable[Any]: ...


async def run_async(
    flow: Flow[T],
    functions: Mapping[NetworkFunctionKind, AsyncFunction],
    guards: Mapping[NetworkFunctionKind, BackendGuard],
    meters: Mapping[NetworkFunctionKind, BackendMeter] = _UNMEASURED,
    answered: Callable[[], None] | None = None,
) -> T:
    """Drive ``flow`` live: each backend call guarded, awaited, and bounded by its timeout;
    a call reaching a function with a meter in ``meters`` is timed and counted there, and
    ``answered`` is told of each answer a function gave."""
    step = next_call(flow, guards)
    while isinstance(step, GuardedCall):
        value: Any = None
        error: CamaraError | None = None
        kind = step.call.kind
        try:
            value = await _guarded(step, functions[kind], meters.get(kind))
        except CamaraError as exc:
            error = exc
        else:
            if answered is not None:
                answered()
        step = next_call(flow, guards, value, error)
    return step


async def _guarded(call: GuardedCall, function: AsyncFunction, meter: BackendMeter | None) -> Any:
    """Wait for a slot if parked, then for the backend within the timeout; ``call`` decides.

    ``meter`` times the call from its arrival at the function (``call.start``) to however it
    ended: only here is a timeout told apart from the caller going away."""
    if call.waiting:
        promoted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not promoted.done():
                promoted.set_result(None)

        call.on_promotion(wake)
        try:
            await asyncio.wait_for(promoted, max(0.0, call.wait_deadline - call.guard.clock()))
        except TimeoutError:
            pass  # ``waited`` tells a deadline from a promotion at the same instant
        except BaseException:
            call.abandon()
            raise
        refused = call.waited()
        if refused is not None:
            raise refused
    call.start()
    try:
        async with asyncio.timeout(call.timeout):  # no task per call
            record = await function.call(call.request)
    except TimeoutError:
        if meter is not None:
            meter.ended(TIMEOUT, _elapsed(call))
        raise call.timed_out() from None
    except BackendError as exc:
        if meter is not None:
            meter.ended(outcome_of(exc), _elapsed(call))
        raise call.failed(exc) from exc
    except BaseException as exc:
        if meter is not None:
            cancelled = isinstance(exc, asyncio.CancelledError)
            meter.ended(CANCELLED if cancelled else ERROR, _elapsed(call))
        call.abandon()  # cancelled (the client went away) or a bug: nothing to learn
        raise
    if meter is not None:
        meter.ended(OK, _elapsed(call))
    return call.answered(record)


def _elapsed(call: GuardedCall) -> float:
    """Seconds since ``call`` reached its function, on its guard's clock (``start`` set
    ``started``)."""
    return call.guard.clock() - cast(float, call.started)


class GuardedExecutor:
    """Runs flows live against network functions, one :class:`BackendGuard` per function."""

    def __init__(
        self,
        functions: Mapping[NetworkFunctionKind, AsyncFunction],
        guards: Mapping[NetworkFunctionKind, BackendGuard] | None = None,
        *,
        clock: Clock = time.monotonic,
        settings: GuardSettings | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.guards = dict(guards or {})
        for kind in self.functions:
            self.guards.setdefault(kind, BackendGuard(kind.value, clock, settings))
        self.meters: dict[NetworkFunctionKind, BackendMeter] = {}
        self.answered: Callable[[], None] | None = None
        """Called at each answer of a network function: the call read its subscriber's data,
        whatever it answers in the end (the operator notes it for the access log); not when a
        guard refused or a function failed."""

    def measure(self, metrics: BackendMetrics) -> None:
        """Time and count every function's calls in ``metrics`` from now on: the whole call
        here, the service time in each :class:`LiveNetworkFunction` (which alone knows it)."""
        for kind, function in self.functions.items():
            meter = self.meters[kind] = metrics.meter(kind.value)
            if isinstance(function, LiveNetworkFunction):
                function.meter = meter

    async def __call__(self, flow: Flow[T]) -> T:
        return await run_async(flow, self.functions, self.guards, self.meters, self.answered)


def build_live_integrator(
    subscribers: SubscriberBase,
    *,
    core: CoreSpec | None = None,
    seed: int = 0,
    time_scale: float = 1.0,
    settings: GuardSettings | None = None,
    clock: Clock = time.monotonic,
    notifier: QodNotifier | None = None,
) -> tuple[Integrator, GuardedExecutor]:
    """An integrator over the operator's five live network functions (one RNG stream each).

    QoD status changes go to each session's sink as CloudEvents (``notifier``, by default a
    :class:`CloudEventNotifier` over real HTTP on the subscriber base's epoch clock)."""
    spec = core or CoreSpec()

    def rng(kind: NetworkFunctionKind) -> random.Random:
        return random.Random(f"{seed}:{kind.value}")

    handlers: dict[NetworkFunctionKind, tuple[NetworkFunctionSpec, Callable[[Any], Any]]] = {
        NetworkFunctionKind.SIM_DATA_REGISTER: (spec.sim_data_register, Hlr(subscribers)),
        NetworkFunctionKind.LOCATION_SERVER: (spec.location_server, LocationServer(subscribers)),
        NetworkFunctionKind.POLICY_FUNCTION: (
            spec.policy_function,
            PolicyFunction(subscribers, sessions=DatabaseQosSessions(subscribers.db)),
        ),
        NetworkFunctionKind.KYC_REGISTER: (spec.kyc_register, KycRegister(subscribers)),
        NetworkFunctionKind.NV_AUTHENTICATOR: (
            spec.nv_authenticator,
            NvAuthenticator(subscribers),
        ),
    }
    functions: dict[NetworkFunctionKind, LiveNetworkFunction[Any, Any]] = {
        kind: LiveNetworkFunction(
            function_spec, handler, rng(kind), time_scale=time_scale, clock=clock
        )
        for kind, (function_spec, handler) in handlers.items()
    }
    executor = GuardedExecutor(functions, clock=clock, settings=settings)
    integrator = Integrator(
        subscribers,
        executor,
        calendar=subscribers.clock,
        sessions=DatabaseQodSessions(subscribers.db),
        notifier=notifier
        if notifier is not None
        else CloudEventNotifier(_sessions_url(subscribers), clock=subscribers.clock),
        coverage=Coverage.of_country(subscribers.config.country),
    )
    return integrator, executor


def _sessions_url(subscribers: SubscriberBase) -> str:
    """The events' ``source``: the operator's QoD sessions resource."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(subscribers.config.issuer))
    origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else subscribers.config.id
    return f"{origin}/quality-on-demand/v1/sessions"
