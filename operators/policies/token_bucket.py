"""A token bucket: bursts up to ``burst`` calls, then a sustained ``rate`` per second.

Refill is lazy (computed from the clock at each call), so the bucket costs nothing while idle
and decides the same under ``time.monotonic`` and under ``lambda: env.now``. Over any interval
``[t0, t1]`` it admits at most ``burst + rate * (t1 - t0)`` tokens.
"""

from __future__ import annotations

import math

from operators.types import Clock

__all__ = ["TokenBucket"]


class TokenBucket:
    """Admits work while tokens remain; tokens come back at ``rate`` per second up to ``burst``."""

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be positive and finite, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self._rate = float(rate)
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """Capacity of the bucket, the largest burst admitted at once."""
        return self._burst

    def _refill(self) -> None:
        now = self._clock()
        if now > self._last:
            self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._rate)
            self._last = now

    def available(self) -> float:
        """Tokens in the bucket now (fractional while refilling)."""
        self._refill()
        return self._tokens

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` tokens if they are all there; never takes part of them."""
        if n < 0:
            raise ValueError(f"cannot acquire a negative number of tokens: {n}")
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens would be available; ``inf`` if ``n`` exceeds the burst."""
        if n > self._burst:
            return math.inf
        self._refill()
        if self._tokens >= n:
            return 0.0
        return (n - self._tokens) / self._rate
