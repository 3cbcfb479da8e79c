"""Streamed metrics: per-second rows, per-key totals and mergeable latency sketches.

Nothing is kept per call beyond its second. A call only adds to the running totals of its
(operator, API, application) key and, when answered, keeps its latency as a number until the
second closes. At each whole second the engine closes a row, and at the run's end one more
for a run that ends inside a second (a row stamped ``t`` covers ``[ceil(t) - 1, t)``, see
:func:`row_start`): its counts are what the keys' totals grew by since the last row (per
application and operator labels included, in the order the labels first showed), and the
second's latencies are counted into DDSketch buckets (mergeable, 1 % relative accuracy, the
sketches' own logarithmic mapping) for the keys, the windows and the row's p50/p99, which
are read off the bucket counts with a sketch's own arithmetic. Buckets go into the keys' and
windows' DDSketches as weighted adds when the run is judged (bucket for bucket, the same
sketch as adding each value; only its sum, min and max are those of the bucket values).
Rows, with sampled gauges (queues, breaker states, utilisation), go into a
:class:`TimeSeries`, a column of doubles per measure (8 bytes a value, where a dict per row
costs some 15 kB). Memory therefore grows only with the simulated duration, by about a
kilobyte a simulated second, and with the number of keys; never with the number of calls.

Little's law is checked on the client side: the time-average number of operations in flight
(the area under N(t) divided by the elapsed time) against the completion rate times the mean
time in system of completed operations.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

__all__ = [
    "KeyStats",
    "LittleCheck",
    "Metrics",
    "PairStats",
    "TimeSeries",
    "Window",
    "quantile",
    "row_midpoint",
    "row_span",
    "row_start",
]

RELATIVE_ACCURACY = 0.01
CLIENT_TIMEOUT = "CLIENT_TIMEOUT"
THROTTLE_CODES = frozenset({"TOO_MANY_REQUESTS", "QUOTA_EXCEEDED"})


def _sketch() -> DDSketch:
    return DDSketch(relative_accuracy=RELATIVE_ACCURACY)


_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
"""The mapping a DDSketch of this accuracy uses: value -> bucket index -> bucket value."""
_MULTIPLIER = _MAPPING._multiplier
_OFFSET = _MAPPING._offset
_log, _ceil = math.log, math.ceil


_SMALLEST = _MAPPING.min_possible
"""The smallest latency the mapping indexes; a latency of 0 (every tier at zero service
time) is counted in its bucket, whose value is 0 to any printed precision."""


def _keys(latencies: Iterable[float]) -> list[int]:
    """The sketch's bucket index of each latency (``_MAPPING.key``, without its two calls)."""
    try:
        if _OFFSET == 0.0:  # this mapping's: int(ceil(x) + 0.0) is ceil(x)
            return [_ceil(_log(value, 2) * _MULTIPLIER) for value in latencies]
        return [int(_ceil(_log(value, 2) * _MULTIPLIER) + _OFFSET) for value in latencies]
    except ValueError:  # log(0): rare, so the common path pays no comparison for it
        return _keys([value if value > _SMALLEST else _SMALLEST for value in latencies])


def _flush(buckets: Counter[int], *sketches: DDSketch) -> None:
    """Add the bucket counts to each sketch (weighted, one add per bucket) and clear them."""
    value = _MAPPING.value
    for key, count in buckets.items():
        representative = value(key)
        for sketch in sketches:
            sketch.add(representative, count)
    buckets.clear()


_BIN_LIMIT = 2048
"""A DDSketch's default number of bins: a wider span collapses its lowest ones."""

_bins: dict[int, int] = {}
"""Bucket -> the bin its representative value lands in when added to a sketch."""


def _bin(bucket: int) -> int:
    found = _bins.get(bucket)
    if found is None:
        found = _bins[bucket] = _MAPPING.key(_MAPPING.value(bucket))
    return found


def _quantiles(buckets: Counter[int], qs: tuple[float, ...]) -> list[float | None]:
    """The quantiles of a sketch that ``_flush`` would fill with ``buckets``, without one.

    The same arithmetic as :meth:`DDSketch.get_quantile_value` on the same bins (each
    bucket's representative value, added with its count), so the same values; a span wider
    than a sketch holds (never, for latencies) is left to a sketch.
    """
    if not buckets:
        return [None for _ in qs]
    bins: dict[int, float] = {}
    known = _bins.get
    for bucket, count in buckets.items():
        index = known(bucket)  # _bin(bucket) for a bucket seen before, without its frame
        if index is None:
            index = _bin(bucket)
        bins[index] = bins.get(index, 0.0) + count
    ordered = sorted(bins)
    if ordered[-1] - ordered[0] + 1 > _BIN_LIMIT:
        sketch = _sketch()
        _flush(Counter(buckets), sketch)
        return [quantile(sketch, q) for q in qs]
    total = 0.0
    for index in ordered:
        total += bins[index]
    found: list[float | None] = []
    for q in qs:
        rank = q * (total - 1)
        running = 0.0
        chosen = ordered[-1]
        for index in ordered:
            running += bins[index]
            if running > rank:
                chosen = index
                break
        found.append(float(_MAPPING.value(chosen)))
    return found


def row_start(t: float) -> float:
    """Where the row stamped ``t`` begins: rows close at whole seconds and, for a run that
    ends inside one, at its end, so a row covers ``[ceil(t) - 1, t)`` (a 10.5 s run's last
    row, stamped 10.5, covers [10, 10.5)); no row is longer than a second."""
    return float(math.ceil(t) - 1)


def row_span(t: float) -> float:
    """The seconds the row stamped ``t`` covers: 1, or less for a run's trailing part."""
    return t - row_start(t)


def row_midpoint(t: float) -> float:
    """The middle of the interval the row stamped ``t`` measures, where a plot puts it."""
    return (row_start(t) + t) / 2.0


def quantile(sketch: DDSketch, q: float) -> float | None:
    """The ``q`` quantile of a sketch, or None when it is empty."""
    if sketch.count == 0:
        return None
    value = sketch.get_quantile_value(q)
    return None if value is None else float(value)


class TimeSeries:
    """Per-second rows stored as columns; a measure first seen late reads 0 before that.

    Rows come back as dicts (:meth:`rows`), the whole table or a few columns of it; a column
    whose every value was an int gives ints back.
    """

    def __init__(self) -> None:
        self._columns: dict[str, array[float]] = {}
        self._floats: set[str] = set()
        self._length = 0

    def __len__(self) -> int:
        return self._length

    @property
    def names(self) -> list[str]:
        """Every measure, in the order first seen."""
        return list(self._columns)

    def append(self, row: Mapping[str, float]) -> None:
        """Add one second's values (measures not in ``row`` read 0 for it)."""
        columns, length = self._columns, self._length
        for name, value in row.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = array("d", bytes(8 * length))
            column.append(value)
            if type(value) is not int and name not in self._floats:
                self._floats.add(name)
        self._length = length = length + 1
        if len(row) < len(columns):
            for column in columns.values():
                if len(column) < length:
                    column.append(0.0)

    def column(self, name: str) -> list[float]:
        """One measure over the run (zeros if it never occurred)."""
        column = self._columns.get(name)
        if column is None:
            return [0.0] * self._length
        return column.tolist() if name in self._floats else [int(v) for v in column]

    def rows(self, names: Iterable[str] | None = None) -> list[dict[str, float]]:
        """The rows as dicts, with every measure or only ``names``."""
        wanted = list(self._columns) if names is None else list(names)
        series = [self.column(name) for name in wanted]
        return [dict(zip(wanted, values, strict=True)) for values in zip(*series, strict=True)]


@dataclass(slots=True)
class KeyStats:
    """Whole-run totals of one (operator, API, application)."""

    offered: int = 0
    attempts: int = 0
    completed: int = 0
    ok: int = 0
    billable: int = 0
    """Calls billed by the live rule (``is_billable``): 2xx answers only, not 404/422."""
    throttled: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: DDSketch = field(default_factory=_sketch)
    retries: int = 0
    failed: int = 0
    """Operations given up (ended without an answer the client accepts)."""
    elapsed: list[float] = field(default_factory=list, repr=False)
    """Latencies of this second's answered operations, not yet counted in buckets."""
    buckets: Counter[int] = field(default_factory=Counter, repr=False)
    """Latency buckets counted so far, not yet in ``latency``."""
    marks: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    """Offered, attempts, retries, completed, ok, failed and throttled when the last row
    closed: the next row counts what they grew by since."""
    labels: tuple[str, ...] = ()
    """The application and operator its operations count for in a row."""

    @property
    def pending(self) -> Counter[int]:
        """Latency buckets not yet in ``latency``, this second's included (a copy)."""
        pending = Counter(self.buckets)
        pending.update(_keys(self.elapsed))
        return pending


@dataclass(slots=True)
class PairStats:
    """Operations for ported numbers of one (home operator, serving operator, application)."""

    ok: int = 0
    completed: int = 0
    billable: int = 0


@dataclass(slots=True)
class Window:
    """A latency sketch over completions in ``[start, end)``, registered before the run."""

    start: float
    end: float
    latency: DDSketch = field(default_factory=_sketch)
    pending: Counter[int] = field(default_factory=Counter, repr=False)


@dataclass(frozen=True, slots=True)
class LittleCheck:
    """L measured against λW; ``holds`` when they agree within ``tolerance`` (relative)."""

    mean_in_system: float
    arrival_rate: float
    mean_time_in_system: float
    tolerance: float

    @property
    def product(self) -> float:
        return self.arrival_rate * self.mean_time_in_system

    @property
    def relative_error(self) -> float:
        scale = max(self.mean_in_system, self.product, 1e-12)
        return abs(self.mean_in_system - self.product) / scale

    @property
    def holds(self) -> bool:
        return self.relative_error <= self.tolerance


class Metrics:
    """Per-key totals, windows, and the closed rows.

    A call touches only its key's totals (and Little's sums): a second's row is the
    difference of every key's totals since the last row, worked out when it closes, and the
    latencies of a second are kept as numbers and counted into sketch buckets then.
    """

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._errors: dict[str, int] = {}
        """This second's failed requests by code."""
        self.series = TimeSeries()
        self.keys: dict[tuple[str, str, str], KeyStats] = {}
        self._offering: list[KeyStats] = []
        """Keys in the order of their first operation (the order their labels first show)."""
        self._answering: list[KeyStats] = []
        """Keys in the order of their first answered operation."""
        self.pairs: dict[tuple[str, str, str], PairStats] = {}
        """Operations for ported numbers by (home, serving, application), for settlement."""
        self.windows: list[Window] = []
        self._inside: list[Window] = []
        """The windows whose span holds the present (until ``_edge``)."""
        self._edge = -math.inf
        """When the next window opens or closes."""
        self._in_windows: list[float] = []
        """Latencies answered since ``_inside`` last changed, not yet in its windows."""
        self.error_codes: set[str] = set()
        self.labels: set[str] = set()
        # Little's law, client side. The area under N(t) up to now is the time spent in the
        # system by the completed operations plus, for those in flight, now minus their
        # start: so each operation adds its start once and its sojourn once, and nothing
        # needs updating at every arrival and departure.
        self._starts = 0.0
        """The sum of the start times of the operations in flight."""
        self._sojourn_sum = 0.0
        self._completed = 0

    @property
    def total_offered(self) -> int:
        """Operations offered so far (retries are not offers)."""
        return sum(stats.offered for stats in self._offering)

    @property
    def _in_flight(self) -> int:
        return self.total_offered - self._completed

    def window(self, start: float, end: float) -> Window:
        """Register a window whose completions' latencies are to be kept in one sketch."""
        found = next((w for w in self.windows if w.start == start and w.end == end), None)
        if found is None:
            found = Window(start, end)
            self.windows.append(found)
            self._edge = -math.inf  # work out the windows holding the present again
        return found

    def key(self, operator: str, api: str, application: str) -> KeyStats:
        """The totals of one key, created on first use."""
        triple = (operator, api, application)
        stats = self.keys.get(triple)
        if stats is None:
            stats = self.keys[triple] = KeyStats()
        return stats

    def pair(self, home: str, serving: str, application: str) -> PairStats:
        """The ported-number totals of one (home, serving, application), created on first use."""
        triple = (home, serving, application)
        stats = self.pairs.get(triple)
        if stats is None:
            stats = self.pairs[triple] = PairStats()
        return stats

    def offered(self, stats: KeyStats, application: str, operator: str) -> None:
        """An operation arrived (retries are not offers)."""
        self._starts += self._clock()
        if not stats.offered:
            self._offering.append(stats)
            stats.labels = (application, operator)
        stats.offered += 1

    def attempt(self, stats: KeyStats, retry: bool) -> None:
        """One request sent, the first or a retry."""
        stats.attempts += 1
        if retry:
            stats.retries += 1

    def attempt_failed(self, stats: KeyStats, code: str) -> None:
        """One request answered with an error (or timed out at the client)."""
        errors = self._errors
        errors[code] = errors.get(code, 0) + 1
        errors = stats.errors
        errors[code] = errors.get(code, 0) + 1
        if code in THROTTLE_CODES:
            stats.throttled += 1

    def finished(
        self, stats: KeyStats, application: str, operator: str, ok: bool, started: float
    ) -> None:
        """An operation ended: answered (``ok``) or given up; its latency counts if ``ok``."""
        now = self._clock()
        self._starts -= started
        elapsed = now - started
        self._sojourn_sum += elapsed
        self._completed += 1
        stats.completed += 1
        if not ok:
            stats.failed += 1
            return
        if not stats.ok:
            self._answering.append(stats)
        stats.ok += 1
        stats.elapsed.append(elapsed)
        if now >= self._edge:
            self._cross(now)
        if self._inside:
            self._in_windows.append(elapsed)

    def _cross(self, now: float) -> None:
        """A window opened or closed: count what the old ones hold, find those open now."""
        self._count_windows()
        self._inside = [w for w in self.windows if w.start <= now < w.end]
        edges = [t for w in self.windows for t in (w.start, w.end) if t > now]
        self._edge = min(edges, default=math.inf)

    def _count_windows(self) -> None:
        if self._in_windows:
            keys = _keys(self._in_windows)
            for window in self._inside:
                window.pending.update(keys)
            self._in_windows.clear()

    def flush(self) -> None:
        """Move the pending latency buckets of keys and windows into their sketches.

        Called when the run is judged; until then each key and window holds at most one count
        per bucket (a few hundred for latencies from a millisecond to minutes).
        """
        for stats in self.keys.values():
            if stats.elapsed:
                stats.buckets.update(_keys(stats.elapsed))
                stats.elapsed.clear()
            _flush(stats.buckets, stats.latency)
        self._count_windows()
        for window in self.windows:
            if window.pending:
                _flush(window.pending, window.latency)

    def close_second(self, at: float, gauges: dict[str, float]) -> None:
        """Turn the time since the last row into a row stamped ``at``, with gauges sampled now.

        A whole second, or the part of one a run ends in (closed by the engine at the end,
        so that the trailing part counts in the rows as it does in the totals).
        """
        ok_by: dict[str, int] = {}
        for stats in self._answering:  # first, while the marks are the last row's
            answered = stats.ok - stats.marks[4]
            if answered:
                for label in stats.labels:
                    ok_by[label] = ok_by.get(label, 0) + answered
        totals = [0, 0, 0, 0, 0, 0, 0]
        offered_by: dict[str, int] = {}
        latency: Counter[int] = Counter()
        for stats in self._offering:
            marks = (
                stats.offered,
                stats.attempts,
                stats.retries,
                stats.completed,
                stats.ok,
                stats.failed,
                stats.throttled,
            )
            if marks == stats.marks:
                continue
            last = stats.marks
            for index in range(7):
                totals[index] += marks[index] - last[index]
            offers = marks[0] - last[0]
            if offers:
                for label in stats.labels:
                    offered_by[label] = offered_by.get(label, 0) + offers
            if stats.elapsed:
                keys = _keys(stats.elapsed)
                stats.buckets.update(keys)
                latency.update(keys)
                stats.elapsed.clear()
            stats.marks = marks
        row: dict[str, float] = {
            "t": at,
            "offered": totals[0],
            "attempts": totals[1],
            "retries": totals[2],
            "completed": totals[3],
            "goodput": totals[4],
            "failed": totals[5],
            "throttled": totals[6],
            "in_flight": self._in_flight,
        }
        p50, p99 = _quantiles(latency, (0.5, 0.99))
        row["latency_p50"] = p50 or math.nan
        row["latency_p99"] = p99 or math.nan
        for code, count in self._errors.items():
            self.error_codes.add(code)
            row[f"errors.{code}"] = count
        self._errors = {}
        for label, count in offered_by.items():
            self.labels.add(label)
            row[f"offered.{label}"] = count
        for label, count in ok_by.items():
            self.labels.add(label)
            row[f"goodput.{label}"] = count
        row.update(gauges)
        self.series.append(row)

    def little(self, tolerance: float = 0.05) -> LittleCheck:
        """Little's law over the run so far (L from the area, λ and W from completions)."""
        now = self._clock()
        self.flush()
        elapsed = max(now, 1e-12)
        mean_w = self._sojourn_sum / self._completed if self._completed else 0.0
        area = self._sojourn_sum + self._in_flight * now - self._starts
        return LittleCheck(
            mean_in_system=area / elapsed,
            arrival_rate=self._completed / elapsed,
            mean_time_in_system=mean_w,
            tolerance=tolerance,
        )
