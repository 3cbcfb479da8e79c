"""Judging a run: each scenario expectation measured on the streamed metrics, pass or fail.

Window metrics read the per-second rows (a row stamped ``t`` covers ``[ceil(t) - 1, t)``: a
second, or the part of one a run ends in); filtered metrics read the per-(operator, API,
application) totals; latency quantiles come from DDSketches (windows registered before the
run, or key sketches merged after it). Recovery time is measured from an event's start or end
until per-second availability is back to ``level`` of its value in the minute before the
event, and stays there ``hold`` seconds.

A window that reaches past the run's end (a ``--duration`` shorter than the story) is
measured over the part the run covered and its verdict says so; one the run never reached is
undefined, so it fails instead of reading whatever nothing measures.
:func:`windows_past_the_end` names them before a run, for a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ddsketch import DDSketch

from sim.metrics import RELATIVE_ACCURACY, Metrics, quantile, row_span, row_start
from sim.results import RunResult, Verdict
from sim.scenario import CONSENT_METRICS, REPLICA_METRICS, Expectation, Scenario

__all__ = [
    "Verdict",
    "evaluate",
    "recovery_time",
    "resolve_window",
    "window_note",
    "windows_past_the_end",
]


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


def _past_the_end(
    expectation: Expectation, events: dict[str, tuple[float, float]], duration: float
) -> tuple[float, float] | None:
    """The expectation's absolute window when it reaches past the run's end, else None."""
    if expectation.window is None:
        return None
    start, end = resolve_window(expectation, events)
    return (start, end) if end > duration else None


def window_note(
    expectation: Expectation, events: dict[str, tuple[float, float]], duration: float
) -> str | None:
    """What to say of an expectation whose window reaches past the run's end, else None.

    The rows stop at the end, so such a window was silently shortened (or emptied): said
    here, naming the window and the run's duration.
    """
    window = _past_the_end(expectation, events, duration)
    if window is None:
        return None
    start, end = window
    span = f"window [{start:g}, {end:g}) s"
    if start >= duration:
        return f"{span} starts at or after the run's end ({duration:g} s): not measured"
    return (
        f"{span} reaches past the run's end ({duration:g} s): measured over "
        f"[{start:g}, {duration:g}) only"
    )


def windows_past_the_end(scenario: Scenario) -> list[str]:
    """Each expectation whose window reaches past the run's end, with what is done about it
    (for a warning before the run: a shorter ``--duration`` than the story's)."""
    events = scenario.events()
    found = []
    for expectation in scenario.expectations:
        note = window_note(expectation, events, scenario.duration)
        if note is not None:
            found.append(f"{expectation.label!r}: {note}")
    return found


Row = Mapping[str, float]
MEASURES = ("t", "offered", "attempts", "completed", "goodput", "throttled")
"""The columns expectations read (rows of these only, not of every gauge)."""


def _rows(rows: Sequence[Row], start: float, end: float) -> list[Row]:
    """The rows whose whole interval lies within ``[start, end)``."""
    return [row for row in rows if row_start(row["t"]) >= start and row["t"] <= end]


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
    after = [row for row in rows if row_start(row["t"]) >= origin]
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
            return max(0.0, row_start(first["t"]) - origin)
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
            # per second of the rows' time: the run's trailing part of a second is shorter
            return ok / sum(row_span(r["t"]) for r in rows) if rows else None
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


def _judge(
    expectation: Expectation, result: RunResult, metrics: Metrics, table: Sequence[Row]
) -> Verdict:
    """One expectation's verdict; undefined over a window the run never reached, whatever
    an empty selection of rows or a sketch would read."""
    e, duration = expectation, result.scenario.duration
    window = _past_the_end(e, result.events, duration)
    unreached = window is not None and window[0] >= duration
    value = None if unreached else _measure(e, result, metrics, table)
    return Verdict(e.label, e.metric, value, e.min, e.max, window_note(e, result.events, duration))


def evaluate(scenario: Scenario, result: RunResult, metrics: Metrics) -> list[Verdict]:
    """Every expectation of ``scenario`` judged on ``result``."""
    table = result.series.rows(MEASURES) if scenario.expectations else []
    return [_judge(e, result, metrics, table) for e in scenario.expectations]
