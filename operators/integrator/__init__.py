"""The integrator: CAMARA operations translated to network-function calls, and back.

Public face: :class:`Integrator` (implements ``operators.camara.CamaraServices``),
:func:`build_live_integrator`, the sans-IO flows in :mod:`.operations` and the guarded backend
call written once (:class:`GuardedCall`, :func:`next_call`) with the asyncio driver
:func:`run_async` (its SimPy twin is ``sim.tiers.integrator.run_flow``), and
:class:`BackendGuard` / :class:`GuardSettings` (breaker, buffer and shedder per backend).
"""

from operators.integrator.coverage import Coverage
from operators.integrator.flow import BackendCall, Flow, GuardedCall, next_call
from operators.integrator.integrator import EXPIRED_RETENTION, ConsentStatusSource, Integrator
from operators.integrator.live import GuardedExecutor, build_live_integrator, run_async
from operators.integrator.notifications import (
    CloudEventNotifier,
    NoNotifications,
    QodNotifier,
)
from operators.integrator.operations import (
    check_sim_swap,
    create_qos_session,
    delete_qos_session,
    kyc_match,
    reachability_status,
    retrieve_location,
    retrieve_sim_swap_date,
    roaming_status,
    verify_location,
    verify_number,
)
from operators.integrator.protection import BackendGuard, GuardSettings, Outcome

__all__ = [
    "EXPIRED_RETENTION",
    "BackendCall",
    "BackendGuard",
    "CloudEventNotifier",
    "ConsentStatusSource",
    "Coverage",
    "Flow",
    "GuardSettings",
    "GuardedCall",
    "GuardedExecutor",
    "Integrator",
    "NoNotifications",
    "Outcome",
    "QodNotifier",
    "build_live_integrator",
    "check_sim_swap",
    "create_qos_session",
    "delete_qos_session",
    "kyc_match",
    "next_call",
    "reachability_status",
    "retrieve_location",
    "retrieve_sim_swap_date",
    "roaming_status",
    "run_async",
    "verify_location",
    "verify_number",
]
