"""A token bucket: bursts up to ``burst`` calls, then a sustained ``rate`` per second.

Refill is lazy (computed from the clock at each call), so the bucket costs nothing while idle
and decides the same under ``time.monotonic`` and under ``lambda: env.now``. Over any interval
``[t0, t1]`` it admits at most ``burst + rate * (t1 - t0)`` tokens.

Every method has an ``_at(now)`` twin that takes the time instead of reading the clock: a
counter store (:mod:`operators.policies.counter_store`) keeps buckets for many keys and is
handed the time by the throttle, so that the in-memory store and the shared (Redis) one see
the same instant and reach the same decision.
"""

from __future__ import annotations

import math

from operators.types import Clock

__all__ = ["TokenBucket"]


class TokenBucket:
    """Admits work while tokens remain; tokens come back at ``rate`` per second up to ``burst``."""

    __slots__ = ("_burst", "_capacity", "_clock", "_last", "_rate", "_tokens")

    def __init__(
        self, rate: float, burst: int, clock: Clock | None = None, *, start: float | None = None
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be positive and finite, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        if start is None:
            if clock is None:
                raise ValueError("a token bucket needs a clock or a start time")
            start = clock()
        self._rate = float(rate)
        self._burst = burst
        self._capacity = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = start

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """Capacity of the bucket, the largest burst admitted at once."""
        return self._burst

    def _now(self) -> float:
        if self._clock is None:
            raise TypeError("this bucket has no clock: call the *_at(now) methods")
        return self._clock()

    def _refill(self, now: float) -> None:
        last = self._last
        if now > last:
            tokens = self._tokens + (now - last) * self._rate
            capacity = self._capacity
            self._tokens = capacity if capacity <= tokens else tokens  # min(), without the call
            self._last = now

    def available_at(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (fractional while refilling)."""
        self._refill(now)
        return self._tokens

    def try_acquire_at(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens at ``now`` if they are all there; never takes part of them."""
        if n < 0:
            raise ValueError(f"cannot acquire a negative number of tokens: {n}")
        self._refill(now)
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def take_one_at(self, now: float) -> bool:
        """:meth:`try_acquire_at` for one token, without its argument checks: the throttle's
        every call."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def retry_after_at(self, now: float, n: int = 1) -> float:
        """Seconds from ``now`` until ``n`` tokens would be there; ``inf`` beyond the burst."""
        if n > self._burst:
            return math.inf
        self._refill(now)
        if self._tokens >= n:
            return 0.0
        return (n - self._tokens) / self._rate

    def available(self) -> float:
        """Tokens in the bucket now (fractional while refilling)."""
        return self.available_at(self._now())

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they are all there; never takes part of them."""
        return self.try_acquire_at(self._now(), n)

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens would be available; ``inf`` if ``n`` exceeds the burst."""
        return self.retry_after_at(self._now(), n)
