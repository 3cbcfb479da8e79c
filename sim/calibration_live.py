"""What the live federation's own servers say about one load step: scrapes and CPU times.

Each operator process exposes ``/metrics`` (the gateway's Prometheus histogram of request
seconds by API and operation, the identity server's grants under ``api="oauth"``); its pid
in the descriptor gives its CPU seconds in ``/proc/<pid>/stat`` (user plus system ticks).
A step is measured as the difference of two readings, before and after the load, so what
happened earlier (start-up, previous steps) does not count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from operators.camara import WORKLOADS
from sim.calibration_fit import Histogram

__all__ = [
    "IDENTITY_API",
    "NOT_CALLS",
    "WORKLOAD_OF",
    "LiveStep",
    "OperatorReading",
    "OperatorStep",
    "api_name",
    "cpu_seconds",
    "measure_step",
    "parse_histograms",
    "read_operator",
]

IDENTITY_API = "oauth"
NOT_CALLS = frozenset({"health", "admin", "metrics", "portal", "-"})
"""Gateway ``api`` labels that are housekeeping, not calls a client makes."""
HISTOGRAM = "ogsim_gateway_request_seconds"
WORKLOAD_OF = {operations[0]: name for name, operations in WORKLOADS.items()}
"""The scenario's unit of work each live operation begins (its first operation)."""


def api_name(operation: str) -> str | None:
    """The scenario's name of a live operation, None when it begins no unit of work (a QoD
    session's read or extension: its CPU is carried by the calls that are modelled)."""
    return WORKLOAD_OF.get(operation)


def parse_histograms(text: str, name: str = HISTOGRAM) -> dict[tuple[str, str], Histogram]:
    """Each ``(api, operation)`` series of the histogram ``name`` in a Prometheus exposition."""
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            key = (sample.labels.get("api", ""), sample.labels.get("operation", ""))
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                if math.isfinite(bound):
                    buckets.setdefault(key, {})[bound] = sample.value
            elif sample.name.endswith("_sum"):
                sums[key] = sample.value
            elif sample.name.endswith("_count"):
                counts[key] = sample.value
    found = {}
    for key, series in buckets.items():
        bounds = tuple(sorted(series))
        found[key] = Histogram(
            bounds, tuple(series[b] for b in bounds), counts.get(key, 0.0), sums.get(key, 0.0)
        )
    return found


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User plus system CPU seconds of process ``pid`` so far (fields 14 and 15 of stat)."""
    text = (proc / str(pid) / "stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass(frozen=True)
class OperatorReading:
    """One operator process at one instant: its histograms and CPU seconds (NaN: no pid)."""

    histograms: dict[tuple[str, str], Histogram]
    cpu: float


def read_operator(http: httpx.Client, root: str, pid: int | None) -> OperatorReading:
    """Scrape ``root/metrics`` and read the process's CPU seconds."""
    answer = http.get(root.rstrip("/") + "/metrics")
    answer.raise_for_status()
    cpu = math.nan
    if pid is not None:
        try:
            cpu = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            cpu = math.nan
    return OperatorReading(parse_histograms(answer.text), cpu)


@dataclass(frozen=True)
class OperatorStep:
    """What one operator served during a step, from its own metrics."""

    operator: str
    seconds: float
    calls: dict[tuple[str, str], Histogram]
    """Modelled CAMARA calls by (api, operation): the gateway's latency histograms."""
    others: float
    """CAMARA calls that begin no unit of work of the scenario language (counted only)."""
    grants: Histogram | None
    """The identity server's token endpoint calls (None when none were made)."""
    cpu: float
    """CPU seconds the operator process used (NaN when its pid is unknown)."""

    @property
    def call_count(self) -> float:
        return sum(h.count for h in self.calls.values())

    @property
    def cpu_per_call(self) -> float:
        """CPU seconds per modelled call: grants and unmodelled calls ride on the modelled
        ones, so one simulated worker is as busy as the live event loop."""
        return self.cpu / self.call_count if self.call_count else math.nan

    def all_calls(self) -> Histogram | None:
        merged: Histogram | None = None
        for histogram in self.calls.values():
            merged = histogram if merged is None else merged.plus(histogram)
        return merged


def _step(
    operator: str, seconds: float, before: OperatorReading, after: OperatorReading
) -> OperatorStep:
    calls: dict[tuple[str, str], Histogram] = {}
    grants: Histogram | None = None
    others = 0.0
    for key, histogram in after.histograms.items():
        earlier = before.histograms.get(key)
        delta = histogram.minus(earlier) if earlier is not None else histogram
        if delta.count <= 0:
            continue
        if key[0] == IDENTITY_API:
            grants = delta
        elif api_name(key[1]) is not None:
            calls[key] = delta
        elif key[0] not in NOT_CALLS:
            others += delta.count
    return OperatorStep(operator, seconds, calls, others, grants, after.cpu - before.cpu)


@dataclass(frozen=True)
class LiveStep:
    """One rung of the ladder: the users Locust ran, and each operator's share of the work."""

    users: int
    seconds: float
    operators: dict[str, OperatorStep]
    client: dict[str, Any]
    """Locust's own summary of the step (served calls' rps, p50, p95 as the client saw them)."""

    @property
    def throughput(self) -> float:
        """Modelled CAMARA calls per second served by the operators' gateways."""
        return sum(op.call_count for op in self.operators.values()) / self.seconds

    def calls(self) -> Histogram | None:
        merged: Histogram | None = None
        for step in self.operators.values():
            histogram = step.all_calls()
            if histogram is not None:
                merged = histogram if merged is None else merged.plus(histogram)
        return merged


def _calls(readings: dict[str, OperatorReading]) -> float:
    return sum(
        h.count
        for reading in readings.values()
        for (api, _), h in reading.histograms.items()
        if api not in NOT_CALLS and api != IDENTITY_API
    )


def measure_step(
    http: httpx.Client,
    operators: dict[str, tuple[str, int | None]],
    users: int,
    seconds: float,
    start: Callable[[], Callable[[], dict[str, Any]]],
    sleep: Callable[[float], None],
    warm_up: float = 0.0,
    start_limit: float = 30.0,
) -> LiveStep:
    """Start the load, wait for its first calls and a warm-up, read every operator, wait
    ``seconds``, read again, then wait for the load to finish (``start`` returns that wait,
    which gives the client's summary).

    ``operators`` maps each operator id to its API root and pid (from the descriptor). The
    load generator's own start (seconds on a busy machine) and the users' first token flows
    stay out of the measured window: it opens ``warm_up`` seconds after the operators saw
    the first calls (or after ``start_limit`` seconds without any).
    """

    def read() -> dict[str, OperatorReading]:
        return {op: read_operator(http, root, pid) for op, (root, pid) in operators.items()}

    baseline = _calls(read())
    finish = start()
    try:
        waited = 0.0
        while waited < start_limit and _calls(read()) <= baseline:
            sleep(0.5)
            waited += 0.5
        sleep(warm_up)
        before = read()
        sleep(seconds)
        after = read()
    finally:
        client = finish()
    steps = {op: _step(op, seconds, before[op], after[op]) for op in operators}
    return LiveStep(users, seconds, steps, client)
