"""Wiring of the live integrator: the core's asyncio functions behind one guard each."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from operators.core import (
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
from operators.core.qos_session_store import DatabaseQosSessions
from operators.subscriber_base import SubscriberBase
from operators.types import Clock

from .integrator import GuardedExecutor, Integrator
from .protection import GuardSettings
from .qod_sessions import DatabaseQodSessions

__all__ = ["build_live_integrator"]


def build_live_integrator(
    subscribers: SubscriberBase,
    *,
    core: CoreSpec | None = None,
    seed: int = 0,
    time_scale: float = 1.0,
    settings: GuardSettings | None = None,
    clock: Clock = time.monotonic,
) -> tuple[Integrator, GuardedExecutor]:
    """An integrator over the operator's five live network functions (one RNG stream each)."""
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
    )
    return integrator, executor
