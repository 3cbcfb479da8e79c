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

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


class _Tally:
    """One histogram series as plain numbers: a count per bucket (the last one +Inf) and the
    sum. Only the event loop's thread adds; a scrape copies the counts in one step."""

    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.sum = 0.0


class BackendMeter:
    """One function's series. Observing is a bisection and two additions: a
    ``prometheus_client`` histogram takes a lock per bucket and sum and scans its bounds,
    ~8 µs per backend call for the three series here against well under one."""

    __slots__ = ("_bounds", "calls", "seconds", "service")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self.seconds = _Tally(len(self._bounds))
        self.service = _Tally(len(self._bounds))
        self.calls = dict.fromkeys(OUTCOMES, 0)

    def served(self, seconds: float) -> None:
        """A server took the call for ``seconds`` of service."""
        service = self.service
        service.counts[bisect_left(self._bounds, seconds)] += 1  # le: the first bound >= it
        service.sum += seconds

    def ended(self, outcome: str, seconds: float) -> None:
        """The call ended with ``outcome``, ``seconds`` after it reached the function."""
        tally = self.seconds
        tally.counts[bisect_left(self._bounds, seconds)] += 1
        tally.sum += seconds
        self.calls[outcome] += 1


class BackendMetrics(Collector):
    """The backends' three metrics, read from each function's :class:`BackendMeter` when
    ``registry`` is scraped; every function's series exist (at zero) once it has a meter, so
    a scrape's rate sees its first calls and failures."""

    def __init__(self, registry: CollectorRegistry, *, buckets: Sequence[float]) -> None:
        self._buckets = tuple(buckets)
        self._les = (*(floatToGoString(b) for b in self._buckets), "+Inf")
        self._meters: dict[str, BackendMeter] = {}
        registry.register(self)

    def meter(self, function: str) -> BackendMeter:
        """The meter of ``function`` (the same one on every ask)."""
        meter = self._meters.get(function)
        if meter is None:
            meter = self._meters[function] = BackendMeter(self._buckets)
        return meter

    def collect(self) -> Iterator[Metric]:
        seconds = HistogramMetricFamily(
            "ogsim_backend_seconds",
            "Seconds from a call's arrival at a network function to its answer "
            "(waiting for a server plus service), every call",
            labels=["function"],
        )
        service = HistogramMetricFamily(
            "ogsim_backend_service_seconds",
            "Service time a call holds a server of a network function for",
            labels=["function"],
        )
        calls = CounterMetricFamily(
            "ogsim_backend_calls",
            "Calls to a network function by how they ended",
            labels=["function", "outcome"],
        )
        for function, meter in list(self._meters.items()):
            self._add(seconds, function, meter.seconds)
            self._add(service, function, meter.service)
            for outcome, count in list(meter.calls.items()):
                calls.add_metric([function, outcome], count)
        yield seconds
        yield service
        yield calls

    def _add(self, family: HistogramMetricFamily, function: str, tally: _Tally) -> None:
        """One series, its counts made cumulative as the exposition wants them."""
        counts = list(tally.counts)  # one step: a call counted now is in all buckets or none
        total, cumulative = 0, []
        for bound, count in zip(self._les, counts, strict=True):
            total += count
            cumulative.append((bound, float(total)))
        family.add_metric([function], cumulative, tally.sum)
