"""Rows worked out from the keys' totals when a second closes equal rows counted call by call.

The metrics count a call only in its key's totals and keep its latency as a number; the row,
its per-label counts, its latency quantiles and the windows' sketches are worked out when the
second closes. The reference here counts every call into the second as it happens and fills
a DDSketch per second, as the metrics did before: the rows, their columns' order, the keys'
and the windows' sketches must all come out the same.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from ddsketch import DDSketch

from sim.metrics import (
    _MAPPING,
    RELATIVE_ACCURACY,
    THROTTLE_CODES,
    KeyStats,
    Metrics,
    _quantiles,
    quantile,
)


@dataclass
class _Second:
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    offered_by: Counter[str] = field(default_factory=Counter)
    ok_by: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def _sketch(values: list[float]) -> DDSketch:
    sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for value in values:
        sketch.add(_MAPPING.value(_MAPPING.key(value)))
    return sketch


def _reference_row(second: _Second, at: float, in_flight: int) -> dict[str, float]:
    sketch = _sketch(second.latencies)
    row: dict[str, float] = {"t": at}
    for name in ("offered", "attempts", "retries", "completed", "goodput", "failed"):
        row[name] = second.counts[name]
    row["throttled"] = second.counts["throttled"]
    row["in_flight"] = in_flight
    row["latency_p50"] = quantile(sketch, 0.5) or math.nan
    row["latency_p99"] = quantile(sketch, 0.99) or math.nan
    row.update({f"errors.{code}": count for code, count in second.errors.items()})
    row.update({f"offered.{label}": count for label, count in second.offered_by.items()})
    row.update({f"goodput.{label}": count for label, count in second.ok_by.items()})
    return row


def test_rows_equal_counting_each_call_into_its_second() -> None:
    rng = random.Random(5)
    now = [0.0]
    metrics = Metrics(lambda: now[0])
    windows = [metrics.window(3.0, 7.5), metrics.window(5.25, 12.0)]
    in_window: list[list[float]] = [[], []]
    per_key: dict[tuple[str, str, str], list[float]] = {}
    rows: list[dict[str, float]] = []
    second, in_flight = _Second(), 0
    flying: list[tuple[float, tuple[str, str, str], KeyStats]] = []
    codes = ["TOO_MANY_REQUESTS", "UNAVAILABLE", "CLIENT_TIMEOUT"]
    for tick in range(1, 16):
        while True:
            now[0] += rng.expovariate(40.0)
            if now[0] >= tick:
                now[0] = float(tick)
                break
            # New keys appear late (new columns mid-run), old ones keep going.
            app = f"app{rng.randrange(1 + tick // 4)}"
            operator = f"op{rng.randrange(1 + tick // 6)}"
            api = rng.choice(("sim_swap", "location"))
            if flying and rng.random() < 0.5:
                started, key, stats = flying.pop(rng.randrange(len(flying)))
                ok = rng.random() < 0.8
                for _ in range(rng.randrange(3)):
                    code = rng.choice(codes)
                    metrics.attempt(stats, retry=True)
                    metrics.attempt_failed(stats, code)
                    second.counts["attempts"] += 1
                    second.counts["retries"] += 1
                    second.errors[code] += 1
                    second.counts["throttled"] += code in THROTTLE_CODES
                metrics.finished(stats, key[2], key[0], ok, started)
                in_flight -= 1
                second.counts["completed"] += 1
                if ok:
                    elapsed = now[0] - started
                    second.counts["goodput"] += 1
                    second.ok_by[key[2]] += 1
                    second.ok_by[key[0]] += 1
                    second.latencies.append(elapsed)
                    per_key.setdefault(key, []).append(elapsed)
                    for index, window in enumerate(windows):
                        if window.start <= now[0] < window.end:
                            in_window[index].append(elapsed)
                else:
                    second.counts["failed"] += 1
            else:
                key = (operator, api, app)
                stats = metrics.key(*key)
                metrics.offered(stats, app, operator)
                metrics.attempt(stats, retry=False)
                flying.append((now[0], key, stats))
                in_flight += 1
                second.counts["offered"] += 1
                second.counts["attempts"] += 1
                second.offered_by[app] += 1
                second.offered_by[operator] += 1
        metrics.close_second(now[0], {"gauge": 1.5})
        rows.append({**_reference_row(second, now[0], in_flight), "gauge": 1.5})
        second = _Second()
    assert _no_nan(metrics.series.rows()) == _no_nan(_expected_table(rows))
    assert metrics.series.names == list(_expected_table(rows)[0])
    metrics.flush()
    for key, latencies in per_key.items():
        expected = _sketch(latencies)
        assert metrics.keys[key].latency.count == expected.count
        for q in (0.1, 0.5, 0.9, 0.99):
            assert quantile(metrics.keys[key].latency, q) == quantile(expected, q)
    for window, latencies in zip(windows, in_window, strict=True):
        assert window.latency.count == len(latencies) > 0
        assert quantile(window.latency, 0.99) == quantile(_sketch(latencies), 0.99)


def _no_nan(rows: list[dict[str, float]]) -> list[dict[str, float | None]]:
    """NaN (no latency that second) as None, so that rows compare equal."""
    return [{k: None if v != v else v for k, v in row.items()} for row in rows]


def _expected_table(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """The rows as a TimeSeries gives them back: every column, 0 before it first shows."""
    names: list[str] = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    return [{name: row.get(name, 0) for name in names} for row in rows]


def test_quantiles_are_the_sketchs() -> None:
    rng = random.Random(9)
    for _ in range(200):
        values = [rng.lognormvariate(-4, 2) for _ in range(rng.randrange(1, 60))]
        buckets = Counter(_MAPPING.key(value) for value in values)
        sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        for bucket, count in buckets.items():
            sketch.add(_MAPPING.value(bucket), count)
        qs = (0.0, 0.5, 0.9, 0.99, 1.0)
        assert _quantiles(buckets, qs) == [quantile(sketch, q) for q in qs]
    assert _quantiles(Counter(), (0.5,)) == [None]
