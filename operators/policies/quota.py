"""A quota: at most ``limit`` calls per minute, hour, day or calendar month.

Windows:

* **fixed** — minute, hour and day windows are aligned on multiples of the period counted from
  clock 0 (with an epoch clock such as ``time.time`` that is UTC midnight for days); month
  windows are the calendar month of ``datetime.fromtimestamp(clock(), UTC)``, so **months
  need an epoch clock** (``time.time`` live, ``lambda: epoch + env.now`` in SimPy); with
  ``time.monotonic`` every call would fall into January 1970. A fixed window never admits more
  than ``limit``, but twice ``limit`` may pass in one period straddling a boundary.
* **sliding** — the sliding-window *counter* of Cloudflare and nginx: the estimate is
  ``previous * (time left in current window / window length) + current`` and a call is admitted
  while the estimate stays within ``limit``. Memory is O(1). Error bound: it is never more
  permissive than the fixed window (the current window's own count stays ``<= limit``); the
  estimate is exact when the previous window's calls were spread evenly; in the adversarial
  worst case (all of the previous window's calls at its very end) a period-long span can still
  hold just under ``2 * limit`` calls. For months the weight uses the current month's length.

Every method has an ``_at(now)`` twin that takes the time instead of reading the clock, for the
counter stores (:mod:`operators.policies.counter_store`), which are handed the time by the
throttle; :func:`window_index` and :func:`window_bounds` name the windows for the shared store,
which keeps its counts in Redis but must cut windows exactly where this counter does.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from operators.config import QuotaPeriod
from operators.types import Clock

__all__ = ["QuotaCounter", "QuotaWindow", "window_bounds", "window_index"]

QuotaWindow = Literal["fixed", "sliding"]

_PERIOD_SECONDS = {
    QuotaPeriod.MINUTE: 60.0,
    QuotaPeriod.HOUR: 3600.0,
    QuotaPeriod.DAY: 86400.0,
}


def _month_start(index: int) -> float:
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC).timestamp()


def window_index(period: QuotaPeriod, now: float) -> int:
    """The number of the quota window holding ``now``: months since year 0, or periods since 0.

    Always agrees with :func:`window_bounds` (``start <= now < end``), even within a rounding
    step of a boundary, where division or ``datetime``'s microseconds alone could disagree.
    """
    if period is QuotaPeriod.MONTH:
        moment = datetime.fromtimestamp(now, UTC)
        index = moment.year * 12 + moment.month - 1
    else:
        index = math.floor(now / _PERIOD_SECONDS[period])
    start, end = window_bounds(period, index)
    if now < start:
        return index - 1
    if now >= end:
        return index + 1
    return index


def window_bounds(period: QuotaPeriod, index: int) -> tuple[float, float]:
    """Start and end of window ``index`` (end excluded), in the clock's seconds."""
    if period is QuotaPeriod.MONTH:
        return _month_start(index), _month_start(index + 1)
    seconds = _PERIOD_SECONDS[period]
    return index * seconds, (index + 1) * seconds


class QuotaCounter:
    """Counts calls per quota window and refuses the call that would exceed ``limit``."""

    __slots__ = (
        "_clock",
        "_current",
        "_end",
        "_index",
        "_limit",
        "_period",
        "_previous",
        "_start",
        "_window",
    )

    def __init__(
        self,
        limit: int,
        period: QuotaPeriod,
        window: QuotaWindow,
        clock: Clock | None = None,
        *,
        start: float | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if window not in ("fixed", "sliding"):
            raise ValueError(f"window must be 'fixed' or 'sliding', got {window!r}")
        if start is None:
            if clock is None:
                raise ValueError("a quota counter needs a clock or a start time")
            start = clock()
        self._limit = limit
        self._period = QuotaPeriod(period)
        self._window = window
        self._clock = clock
        self._index = window_index(self._period, start)
        self._start, self._end = window_bounds(self._period, self._index)
        self._current = 0
        self._previous = 0

    @property
    def limit(self) -> int:
        """Calls allowed per window."""
        return self._limit

    @property
    def period(self) -> QuotaPeriod:
        """The length of a window: minute, hour, day or calendar month."""
        return self._period

    @property
    def window(self) -> QuotaWindow:
        """Fixed or sliding."""
        return self._window

    def _now(self) -> float:
        if self._clock is None:
            raise TypeError("this quota counter has no clock: call the *_at(now) methods")
        return self._clock()

    def _roll(self, now: float) -> None:
        if self._start <= now < self._end:
            return  # still in the window (the common case, and no calendar arithmetic)
        index = window_index(self._period, now)
        if index <= self._index:
            return  # a clock that stepped back: keep counting where we are
        self._previous = self._current if index == self._index + 1 else 0
        self._current = 0
        self._index = index
        self._start, self._end = window_bounds(self._period, index)

    def _used(self, now: float) -> float:
        if self._window == "fixed" or self._previous == 0:
            return float(self._current)
        start, end = self._start, self._end
        weight = min(1.0, max(0.0, (end - now) / (end - start)))
        return self._previous * weight + self._current

    def try_acquire_at(self, now: float, n: int = 1) -> bool:
        """Count ``n`` calls at ``now`` if they fit in the quota, else count nothing and refuse."""
        if n < 0:
            raise ValueError(f"cannot acquire a negative number of calls: {n}")
        self._roll(now)
        if self._used(now) + n <= self._limit:
            self._current += n
            return True
        return False

    def remaining_at(self, now: float) -> int:
        """Calls that would be admitted at ``now``."""
        self._roll(now)
        return max(0, math.floor(self._limit - self._used(now)))

    def retry_after_at(self, now: float) -> float:
        """Seconds from ``now`` until one more call fits: 0 now, else when capacity frees."""
        self._roll(now)
        if self._used(now) + 1 <= self._limit:
            return 0.0
        start, end = self._start, self._end
        if self._window == "fixed":
            return end - now
        # Sliding: previous * (end - t) / length + current <= limit - 1 inside this window ...
        room = self._limit - 1 - self._current
        if room >= 0 and self._previous > 0:
            moment = end - room * (end - start) / self._previous
            return max(0.0, moment - now)
        # ... or, when this window alone is full, in the next one, where it becomes "previous".
        next_start, next_end = window_bounds(self._period, self._index + 1)
        moment = next_end - (self._limit - 1) * (next_end - next_start) / self._current
        return max(next_start, moment) - now

    def try_acquire(self, n: int = 1) -> bool:
        """Count ``n`` calls if they fit in the quota, else count nothing and refuse."""
        return self.try_acquire_at(self._now(), n)

    def remaining(self) -> int:
        """Calls that would be admitted right now."""
        return self.remaining_at(self._now())

    def retry_after(self) -> float:
        """Seconds until one more call fits: 0 now, else when the window frees capacity."""
        return self.retry_after_at(self._now())
