"""The integrator: CAMARA operations translated to network-function calls, and back.

Public face: :class:`Integrator` (implements ``operators.camara.CamaraServices``),
:func:`build_live_integrator`, the sans-IO flows in :mod:`.operations` with their drivers
:func:`run_async` (asyncio) and :func:`run_process` (a SimPy process generator), and
:class:`BackendGuard` / :class:`GuardSettings` (breaker, buffer and shedder per backend).
"""

from operators.integrator.flow import BackendCall, Flow, run_async, run_process
from operators.integrator.integrator import EXPIRED_RETENTION, GuardedExecutor, Integrator
from operators.integrator.live import build_live_integrator
from operators.integrator.protection import BackendGuard, GuardSettings, Outcome

__all__ = [
    "EXPIRED_RETENTION",
    "BackendCall",
    "BackendGuard",
    "Flow",
    "GuardSettings",
    "GuardedExecutor",
    "Integrator",
    "Outcome",
    "build_live_integrator",
    "run_async",
    "run_process",
]
