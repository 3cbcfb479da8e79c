"""History per key in fixed rings, and the robust score against it.

Every key (one application calling one API) owns a row in a few matrices whose columns are a
ring over periods: buckets for the detectors (``season_buckets * season_weeks`` of them, 672
hours by default), days and weeks for the timeline, segments and cohorts. Memory is rows x
columns, whatever the number of calls or buckets fed; a period that passes without calls is
a zero, written for every row at once when the ring rolls past it (one step for any gap,
capped at the ring's length).

The baseline of a bucket is the same hour of the week in the previous weeks (at most
``season_weeks`` values) once ``season_min_weeks`` of them exist, else the last
``recent_buckets`` buckets; only periods since the key's first call count. Medians are taken
over those few values row-wise with numpy, so a bucket of thousands of keys costs a handful
of vector operations, not a sort per key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from .settings import DAY, DetectorSettings

__all__ = [
    "MAD_SCALE",
    "Baseline",
    "PeriodRings",
    "count_scale",
    "day_of",
    "lagged",
    "median_mad",
    "robust_score",
    "week_of",
    "week_start",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

WEEK = 7 * DAY
MONDAY = 4 * DAY
"""1970-01-05, a Monday: weeks are ISO weeks, starting on Mondays at 00:00 UTC."""
MAD_SCALE = 1.4826
"""MAD times this estimates a normal distribution's standard deviation."""


def day_of(at: float) -> int:
    """The UTC day ``at`` falls in, counted from the epoch."""
    return math.floor(at / DAY)


def week_of(at: float) -> int:
    """The ISO week ``at`` falls in, counted from the first Monday after the epoch."""
    return math.floor((at - MONDAY) / WEEK)


def week_start(week: int) -> float:
    return MONDAY + week * WEEK


class PeriodRings:
    """Named matrices of rows x ``length`` periods, the column of period ``p`` at
    ``p % length``; :meth:`roll_to` zeroes the columns of periods the ring moves past."""

    def __init__(self, length: int, names: Iterable[str], dtype: type = np.float32) -> None:
        self.length = length
        self.current: int | None = None
        """The newest period the ring holds (None until the first roll)."""
        self._dtype = dtype
        self.matrices: dict[str, npt.NDArray[np.floating]] = {
            name: np.zeros((0, length), dtype=dtype) for name in names
        }

    @property
    def rows(self) -> int:
        return next(iter(self.matrices.values())).shape[0]

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for m in self.matrices.values())

    def grow(self, rows: int) -> None:
        """Room for at least ``rows`` rows (capacity doubles, new rows are zeros)."""
        if rows <= self.rows:
            return
        capacity = max(rows, 2 * self.rows, 16)
        for name, matrix in self.matrices.items():
            grown: npt.NDArray[np.floating] = np.zeros((capacity, self.length), dtype=self._dtype)
            grown[: matrix.shape[0]] = matrix
            self.matrices[name] = grown

    def roll_to(self, period: int) -> None:
        """Make ``period`` the newest: the periods after the current one up to it start at 0."""
        if self.current is None:
            for matrix in self.matrices.values():
                matrix[:] = 0
        elif period > self.current:
            passed = min(period - self.current, self.length)
            columns = [(period - k) % self.length for k in range(passed)]
            for matrix in self.matrices.values():
                matrix[:, columns] = 0
        else:
            return
        self.current = period

    def holds(self, period: int) -> bool:
        return self.current is not None and self.current - self.length < period <= self.current

    def add(self, name: str, rows: Ints, period: int, values: npt.ArrayLike) -> None:
        """Add to ``period``'s column (rolled to first); ``rows`` are distinct. A period
        already out of the ring is dropped."""
        self.roll_to(period)
        if self.holds(period):
            self.matrices[name][rows, period % self.length] += values

    def window(self, name: str, rows: Ints, last: int, count: int) -> Floats:
        """``count`` periods ending with ``last`` (oldest first), 0 where the ring holds none."""
        periods = np.arange(last - count + 1, last + 1)
        values = self.matrices[name][np.ix_(rows, periods % self.length)].astype(np.float64)
        if self.current is None:
            return np.zeros_like(values)
        held = (periods > self.current - self.length) & (periods <= self.current)
        values[:, ~held] = 0.0
        return values


def median_mad(values: Floats) -> tuple[Floats, Floats]:
    """Row-wise median and median absolute deviation, NaN entries left out (NaN for a row
    with no value)."""
    if values.shape[1] == 0:
        empty = np.full(values.shape[0], np.nan)
        return empty, empty.copy()
    median = _nanmedian_rows(values)
    return median, _nanmedian_rows(np.abs(values - median[:, None]))


def _nanmedian_rows(values: Floats) -> Floats:
    ordered = np.sort(values, axis=1)  # NaN sorts last
    count = np.count_nonzero(~np.isnan(values), axis=1)
    lower = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    upper = np.take_along_axis(ordered, (count // 2).clip(max=values.shape[1] - 1)[:, None], 1)
    median = (lower + upper[:, 0]) / 2
    median[count == 0] = np.nan
    return median


def count_scale(median: Floats, mad: Floats, relative_floor: float, observed: Floats) -> Floats:
    """The score's denominator for counts: ``max(1.4826 * MAD, relative_floor * median,
    sqrt(max(median, observed)), 1)``.

    The MAD of two to four same-hour values can be 0, or small, by luck. ``sqrt`` of the
    larger of the usual and the observed count is a Poisson count's own noise at either
    level (so three quiet weeks and a busy one do not make a spike of noise, while a tenfold
    rise still scores about ``3 * sqrt(median)``); ``relative_floor * median`` keeps growth
    below a multiple of the usual level from scoring, and 1 keeps a silent history from
    dividing by zero.
    """
    base = np.maximum(np.nan_to_num(median), 0.0)
    level = np.maximum(base, np.maximum(observed, 0.0))
    return np.maximum.reduce(
        [MAD_SCALE * np.nan_to_num(mad), relative_floor * base, np.sqrt(level), np.ones_like(base)]
    )


def robust_score(observed: Floats, median: Floats, scale: Floats) -> Floats:
    return (observed - np.nan_to_num(median)) / scale


History = Callable[[Ints, Ints, Ints], Floats]
"""``history(rows, lags, ages)``: one row per key, one column per lag, NaN where invalid."""


class Baseline:
    """Which past buckets a bucket is compared with: its season, or the recent window."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.recent_lags: Ints = np.arange(1, settings.recent_buckets + 1, dtype=np.int64)
        season = settings.season_buckets
        self.season_lags: Ints | None = (
            None
            if season is None
            else season * np.arange(1, settings.season_weeks + 1, dtype=np.int64)
        )
        day = round(86_400.0 / settings.bucket_seconds)
        self.day_lags: Ints | None = (
            None
            if season is None or day < 1 or season % day or season // day < 2
            else day * np.arange(1, season // day, dtype=np.int64)
        )
        """The same hour on the previous days of the week (off-hours' "lately quiet")."""

    def seasonal(self, ages: Ints) -> npt.NDArray[np.bool_]:
        """Rows whose season has enough weeks of history (``ages``: buckets since the first
        call)."""
        season = self.settings.season_buckets
        if season is None:
            return np.zeros(ages.shape, dtype=bool)
        return ages // season >= self.settings.season_min_weeks

    def stats(self, history: History, rows: Ints, ages: Ints) -> tuple[Floats, Floats]:
        """Median and MAD per row of its baseline values."""
        median = np.full(len(rows), np.nan)
        mad = np.full(len(rows), np.nan)
        seasonal = self.seasonal(ages)
        for chosen, lags in ((seasonal, self.season_lags), (~seasonal, self.recent_lags)):
            if lags is None or not chosen.any():
                continue
            median[chosen], mad[chosen] = median_mad(history(rows[chosen], lags, ages[chosen]))
        return median, mad


def lagged(
    matrix: npt.NDArray[np.floating], rows: Ints, bucket: int, lags: Ints, ages: Ints
) -> Floats:
    """``matrix``'s values ``lags`` buckets before ``bucket``, NaN before each row's first
    call (``ages``: buckets since it)."""
    columns = (bucket - lags) % matrix.shape[1]
    values = matrix[np.ix_(rows, columns)].astype(np.float64)
    values[lags[None, :] > ages[:, None]] = np.nan
    return values
