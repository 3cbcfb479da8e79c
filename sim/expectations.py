"""Judging a run: each scenario expectation measured on the streamed metrics, pass or fail.

Window metrics read the per-second rows (a row stamped ``t`` covers ``[t-1, t)``); filtered
metrics read the per-(operator, API, application) totals; latency quantiles come from
DDSketches (windows registered before the run, or key sketches merged after it). Recovery
time is measured from an event's start or end until per-second availability is back to
``level`` of its value in the minute before the event, and stays there ``hold`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ddsketch import DDSketch

from sim.metrics import RELATIVE_ACCURACY, Metrics, quantile
from sim.results import RunResult, Verdict
from sim.scenario import CONSENT_METRICS, REPLICA_METRICS, Expectation, Scenario

__all__ = ["Verdict", "evaluate", "recovery_time", "resolve_window"]


def resolve_window(
    expectation: Expectation, events: dict[str, tuple[float, float]]
) -> tuple[float, float]:
    """The absolute window of an expectation, or the whole run.

    With ``relative_to``, the window is shifted by that event's start or end (``reference``).
    """
    if expectation.window is None:
        return 0.0, math.inf
    shift = 0.0
    if expectation.relative_to:
        start, end = events[expectation.relative_to]
        shift = start if expectation.reference == "start" else end
    return expectation.window[0] + shift, expectation.window[1] + shift


Row = Mapping[str, float]
MEASURES = ("t", "offered", "attempts", "completed", "goodput", "throttled")
"""The columns expectations read (rows of these only, not of every gauge)."""


def _rows(rows: Sequence[Row], start: float, end: float) -> list[Row]:
    return [row for row in rows if row["t"] - 1 >= start and row["t"] <= end]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _availability(row: Row) -> float:
    return row["goodput"] / row["completed"] if row["completed"] else 1.0


def recovery_time(
    rows: Sequence[Row],
    event: tuple[float, float],
    reference: str,
    level: float,
    hold: int,
) -> float:
    """Seconds from the event's reference point until availability holds at ``level``."""
    start, end = event
    before = _rows(rows, max(0.0, start - 60.0), start)
    completed = sum(row["completed"] for row in before)
    baseline = sum(row["goodput"] for row in before) / completed if completed else 1.0
    threshold = level * baseline
    origin = start if reference == "start" else end
    after = [row for row in rows if row["t"] - 1 >= origin]
    streak = 0
    first: Row | None = None
    for row in after:
        if not row["completed"] and not row["offered"]:
            continue  # nothing asked, nothing answered: no sign either way
        # a second whose calls were asked but none answered (all waiting on a blackhole)
        # is no recovery: before, it read as fully available
        if row["completed"] and _availability(row) >= threshold:
            first = row if streak == 0 else first
            streak += 1
        else:
            streak = 0
        if streak >= hold:
            assert first is not None
            return max(0.0, first["t"] - 1 - origin)
    return math.inf


def _measure(
    expectation: Expectation, result: RunResult, metrics: Metrics, table: Sequence[Row]
) -> float | None:
    metric = expectation.metric
    events = result.events
    if metric == "recovery_time":
        assert expectation.event is not None
        event = events[expectation.event]
        found = recovery_time(
            table, event, expectation.reference, expectation.level, expectation.hold
        )
        if math.isinf(found) and expectation.min is not None:
            origin = event[0] if expectation.reference == "start" else event[1]
            observed = (table[-1]["t"] if table else 0.0) - origin
            if observed < expectation.min:
                return None  # the run ended first: "no recovery within min" was not seen
        return found
    if metric in REPLICA_METRICS:
        window = resolve_window(expectation, events)
        return result.replica_measure(metric, expectation.operator, *window)
    if metric in CONSENT_METRICS:
        counts = result.consent_totals(expectation.operator)
        value = counts.get(metric)
        return None if value is None else float(value)
    filtered = expectation.operator or expectation.application or expectation.api
    offered: float
    completed: float
    ok: float
    attempts: float
    throttled: float
    if filtered:
        keys = [
            stats
            for (op, api, app), stats in result.keys.items()
            if expectation.operator in (None, op)
            and expectation.application in (None, app)
            and expectation.api in (None, api)
        ]
        offered = sum(k.offered for k in keys)
        completed = sum(k.completed for k in keys)
        ok = sum(k.ok for k in keys)
        attempts = sum(k.attempts for k in keys)
        throttled = sum(k.throttled for k in keys)
        sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        if metric.startswith("latency"):
            for k in keys:
                sketch.merge(k.latency)
    else:
        start, end = resolve_window(expectation, events)
        rows = _rows(table, start, end)
        offered = sum(r["offered"] for r in rows)
        completed = sum(r["completed"] for r in rows)
        ok = sum(r["goodput"] for r in rows)
        attempts = sum(r["attempts"] for r in rows)
        throttled = sum(r["throttled"] for r in rows)
        if metric == "goodput":
            return ok / len(rows) if rows else None
        sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        if metric.startswith("latency"):
            if expectation.window is None:
                for k in result.keys.values():
                    sketch.merge(k.latency)
            else:
                sketch = metrics.window(start, end).latency
    if metric == "availability":
        return _ratio(ok, completed)
    if metric == "goodput_ratio":
        return _ratio(ok, offered)
    if metric == "throttle_share":
        return _ratio(throttled, attempts)
    if metric == "error_share":
        return _ratio(completed - ok, completed)
    if metric == "latency_p50":
        return quantile(sketch, 0.5)
    if metric == "latency_p95":
        return quantile(sketch, 0.95)
    if metric == "latency_p99":
        return quantile(sketch, 0.99)
    raise ValueError(f"unknown metric {metric!r}")  # pragma: no cover - Literal is exhaustive


def evaluate(scenario: Scenario, result: RunResult, metrics: Metrics) -> list[Verdict]:
    """Every expectation of ``scenario`` judged on ``result``."""
    table = result.series.rows(MEASURES) if scenario.expectations else []
    return [
        Verdict(e.label, e.metric, _measure(e, result, metrics, table), e.min, e.max)
        for e in scenario.expectations
    ]
