"""Prometheus timing of the live network functions, for calibrating the simulation's backends.

The gateway's histogram times a whole call; the simulation models each backend as a station
(servers, waiting room, service time), so calibration needs, per function, the time from a
call's arrival at the function to its answer (waiting for a server plus service) and the
service time alone, and how calls ended. Three series per function, in the operator's own
registry beside the gateway's:

* ``ogsim_backend_seconds{function}``: arrival to answer, every call (refused, failed, timed
  out and cancelled ones included), on the integrator's clock;
* ``ogsim_backend_service_seconds{function}``: the service time the call drew and holds a
  server for (wall seconds: the model's draw times the operator's time scale), once per call
  that got a server;
* ``ogsim_backend_calls_total{function,outcome}``: calls by how they ended (:data:`OUTCOMES`).

``function`` is the :class:`~operators.core.description.NetworkFunctionKind` value. Only the
live operator is measured; the simulation keeps its own records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from .errors import (
    BackendBusy,
    BackendError,
    BackendFailure,
    BackendUnavailable,
    SessionUnknown,
    SubscriberUnknown,
)

__all__ = [
    "BUSY",
    "CANCELLED",
    "ERROR",
    "NOT_FOUND",
    "OK",
    "OUTAGE",
    "OUTCOMES",
    "TIMEOUT",
    "BackendMeter",
    "BackendMetrics",
    "outcome_of",
]

OK = "ok"
"""The function answered a record."""
NOT_FOUND = "not_found"
"""The function answered that the subscriber or session is unknown (a 404, not a failure)."""
ERROR = "error"
"""Served for its duration, then failed (the injected error rate), or the handler raised."""
OUTAGE = "outage"
"""Refused at once: the function is in outage."""
BUSY = "busy"
"""Rejected at once: every server busy and the waiting room full."""
TIMEOUT = "timeout"
"""No answer within the integrator's call timeout."""
CANCELLED = "cancelled"
"""The caller went away (its task was cancelled) before the answer."""
OUTCOMES = (OK, NOT_FOUND, ERROR, OUTAGE, BUSY, TIMEOUT, CANCELLED)

_OUTCOME_OF: dict[type[BackendError], str] = {
    BackendFailure: ERROR,
    BackendUnavailable: OUTAGE,
    BackendBusy: BUSY,
    SubscriberUnknown: NOT_FOUND,
    SessionUnknown: NOT_FOUND,
}


def outcome_of(error: BackendError) -> str:
    """The ``outcome`` label of a call that ended in ``error``."""
    return _OUTCOME_OF.get(type(error), ERROR)


class BackendMeter:
    """One function's labelled series, looked up once: the per-call cost is the observations
    themselves (``labels()`` takes a lock and builds a key each time)."""

    __slots__ = ("_calls", "_seconds", "_service")

    def __init__(self, seconds: Any, service: Any, calls: dict[str, Any]) -> None:
        self._seconds = seconds
        self._service = service
        self._calls = calls

    def served(self, seconds: float) -> None:
        """A server took the call for ``seconds`` of service."""
        self._service.observe(seconds)

    def ended(self, outcome: str, seconds: float) -> None:
        """The call ended with ``outcome``, ``seconds`` after it reached the function."""
        self._seconds.observe(seconds)
        self._calls[outcome].inc()


class BackendMetrics:
    """The backends' three metrics in ``registry``, with one :class:`BackendMeter` per function."""

    def __init__(self, registry: CollectorRegistry, *, buckets: Sequence[float]) -> None:
        self.seconds = Histogram(
            "ogsim_backend_seconds",
            "Seconds from a call's arrival at a network function to its answer "
            "(waiting for a server plus service), every call",
            ["function"],
            buckets=buckets,
            registry=registry,
        )
        self.service = Histogram(
            "ogsim_backend_service_seconds",
            "Service time a call holds a server of a network function for",
            ["function"],
            buckets=buckets,
            registry=registry,
        )
        self.calls = Counter(
            "ogsim_backend_calls",
            "Calls to a network function by how they ended",
            ["function", "outcome"],
            registry=registry,
        )
        self._meters: dict[str, BackendMeter] = {}

    def meter(self, function: str) -> BackendMeter:
        """The meter of ``function``; every outcome's series exists from then on (at zero), so
        a scrape's rate sees a function's first failures."""
        meter = self._meters.get(function)
        if meter is None:
            meter = self._meters[function] = BackendMeter(
                self.seconds.labels(function),
                self.service.labels(function),
                {outcome: self.calls.labels(function, outcome) for outcome in OUTCOMES},
            )
        return meter
