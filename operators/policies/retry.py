"""Retries that cannot sustain an overload: capped exponential backoff, full jitter, a budget.

One ``RetryPolicy`` models both kinds of client: ``backoff(...)`` with a ``RetryBudget`` is the
well-behaved one (AWS's full jitter, Finagle's and gRPC's budget); ``immediate(...)`` is the
harmful one that retries at once, without a budget, and turns a slowdown into a retry storm.
"""

from __future__ import annotations

import math
import random
from typing import Literal

from operators.types import Clock

__all__ = ["Jitter", "RetryBudget", "RetryPolicy"]

Jitter = Literal["full", "none"]


class RetryBudget:
    """Retries allowed: ``ratio`` of the calls in the last ``window`` seconds plus a floor.

    Finagle's ``RetryBudget``: each original call deposits ``ratio`` of a retry, and a reserve of
    ``min_per_second * window`` retries lets a quiet client still retry. Counts are kept in
    ``slices`` sub-windows (Finagle's ``WindowedAdder``), so a call is forgotten between
    ``window - window / slices`` and ``window`` seconds after it happened.
    """

    __slots__ = (
        "_calls",
        "_calls_total",
        "_clock",
        "_floor",
        "_head",
        "_min",
        "_ratio",
        "_retries",
        "_retries_total",
        "_slice",
        "_slices",
        "_window",
    )

    def __init__(
        self,
        ratio: float,
        min_per_second: float,
        window: float,
        clock: Clock,
        *,
        slices: int = 10,
    ) -> None:
        if ratio < 0:
            raise ValueError(f"ratio must not be negative, got {ratio!r}")
        if min_per_second < 0:
            raise ValueError(f"min_per_second must not be negative, got {min_per_second!r}")
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        if slices < 1:
            raise ValueError(f"slices must be at least 1, got {slices!r}")
        self._ratio = ratio
        self._min = min_per_second
        self._window = window
        self._slice = window / slices
        self._clock = clock
        self._slices = slices
        self._floor = min_per_second * window
        self._calls = [0] * slices
        self._retries = [0] * slices
        # Running sums of the two rings (integers, so always exactly their sum()).
        self._calls_total = 0
        self._retries_total = 0
        self._head = math.floor(clock() / self._slice)

    def _move(self) -> int:
        index = math.floor(self._clock() / self._slice)
        head = self._head
        if index > head:
            slices = self._slices
            calls, retries = self._calls, self._retries
            for step in range(1, min(index - head, slices) + 1):
                at = (head + step) % slices
                self._calls_total -= calls[at]
                self._retries_total -= retries[at]
                calls[at] = 0
                retries[at] = 0
            self._head = head = index
        return head % self._slices

    def record_call(self) -> None:
        """Count one original call (not a retry); it earns ``ratio`` of a retry."""
        self._calls[self._move()] += 1
        self._calls_total += 1

    def balance(self) -> float:
        """Retries that may still be spent now."""
        self._move()
        earned = self._ratio * self._calls_total + self._floor
        return earned - self._retries_total

    def try_spend(self) -> bool:
        """Spend one retry if the budget has one; a refused retry should be given up."""
        # balance() inlined, on one clock read: the retry lands in the slice it was judged in.
        head = self._move()
        earned = self._ratio * self._calls_total + self._floor
        if earned - self._retries_total >= 1:
            self._retries[head] += 1
            self._retries_total += 1
            return True
        return False


class RetryPolicy:
    """When to retry: ``max_attempts`` calls in all, capped exponential backoff, maybe a budget."""

    __slots__ = ("_base", "_budget", "_jitter", "_max_attempts", "_max_delay", "_rng")

    def __init__(
        self,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        jitter: Jitter,
        rng: random.Random,
        budget: RetryBudget | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts includes the first call, must be >= 1: {max_attempts}")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        if jitter not in ("full", "none"):
            raise ValueError(f"jitter must be 'full' or 'none', got {jitter!r}")
        self._max_attempts = max_attempts
        self._base = base_delay
        self._max_delay = max_delay
        self._jitter = jitter
        self._rng = rng
        self._budget = budget

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry."""
        return cls(1, 0.0, 0.0, "none", random.Random(0))

    @classmethod
    def immediate(cls, max_attempts: int, rng: random.Random) -> RetryPolicy:
        """The harmful client: retry at once, up to ``max_attempts`` calls, with no budget."""
        return cls(max_attempts, 0.0, 0.0, "none", rng)

    @classmethod
    def backoff(
        cls,
        rng: random.Random,
        max_attempts: int = 3,
        base_delay: float = 0.1,
        max_delay: float = 10.0,
        *,
        budget: RetryBudget | None = None,
        jitter: Jitter = "full",
    ) -> RetryPolicy:
        """The well-behaved client: capped exponential backoff, full jitter, ideally a budget.

        ``rng`` comes first: mypyc's text signature for a keyword-only argument without a
        default after defaulted ones fails to build (``benchmarks/build_compiled.py`` compiles
        this module)."""
        return cls(max_attempts, base_delay, max_delay, jitter, rng, budget)

    @property
    def max_attempts(self) -> int:
        """Calls in all, the first one included (resilience4j's and gRPC's meaning)."""
        return self._max_attempts

    @property
    def budget(self) -> RetryBudget | None:
        """The shared budget retries are spent from, if any."""
        return self._budget

    def record_call(self) -> None:
        """Tell the budget an original call was made (does nothing without a budget)."""
        if self._budget is not None:
            self._budget.record_call()

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number ``attempt``: min(max_delay, base * 2**attempt)."""
        return min(self._max_delay, self._base * 2.0 ** min(attempt, 1000))

    def next_delay(self, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt`` (from 1), or None to give up."""
        if attempt < 1:
            raise ValueError(f"attempt counts retries from 1, got {attempt}")
        if attempt >= self._max_attempts:
            return None
        if self._budget is not None and not self._budget.try_spend():
            return None
        ceiling = self.ceiling(attempt)
        if self._jitter == "full":
            return self._rng.uniform(0.0, ceiling)
        return ceiling
