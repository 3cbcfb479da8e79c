"""Wiring of the live integrator: the core's asyncio functions behind one guard each."""

from __future__ import annotations

import random
import time

from operators.core import (
    CoreSpec,
    Hlr,
    KycRegister,
    LiveNetworkFunction,
    LocationServer,
    NetworkFunctionKind,
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

    K = NetworkFunctionKind  # noqa: N806 - a short alias for the table below
    functions = {
        K.SIM_DATA_REGISTER: LiveNetworkFunction(
            spec.sim_data_register,
            Hlr(subscribers),
            rng(K.SIM_DATA_REGISTER),
            time_scale=time_scale,
            clock=clock,
        ),
        K.LOCATION_SERVER: LiveNetworkFunction(
            spec.location_server,
            LocationServer(subscribers),
            rng(K.LOCATION_SERVER),
            time_scale=time_scale,
            clock=clock,
        ),
        K.POLICY_FUNCTION: LiveNetworkFunction(
            spec.policy_function,
            PolicyFunction(subscribers, sessions=DatabaseQosSessions(subscribers.db)),
            rng(K.POLICY_FUNCTION),
            time_scale=time_scale,
            clock=clock,
        ),
        K.KYC_REGISTER: LiveNetworkFunction(
            spec.kyc_register,
            KycRegister(subscribers),
            rng(K.KYC_REGISTER),
            time_scale=time_scale,
            clock=clock,
        ),
        K.NV_AUTHENTICATOR: LiveNetworkFunction(
            spec.nv_authenticator,
            NvAuthenticator(subscribers),
            rng(K.NV_AUTHENTICATOR),
            time_scale=time_scale,
            clock=clock,
        ),
    }
    executor = GuardedExecutor(functions, clock=clock, settings=settings)  # type: ignore[arg-type]
    integrator = Integrator(
        subscribers,
        executor,
        calendar=subscribers.clock,
        sessions=DatabaseQodSessions(subscribers.db),
    )
    return integrator, executor
