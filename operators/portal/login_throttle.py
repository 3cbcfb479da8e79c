"""Login throttling: too many failed sign-ins per email or per client address wait a while.

A sliding window on a clock (a callable returning seconds): after ``limit`` failures within
``window`` seconds for the same email, or for the same client address, sign-in is refused
until the oldest of them leaves the window; the answer says how long (``Retry-After``). A
success clears the email's failures (not the address's: one address guessing many accounts
stays slow). Counting per email stops guessing one account from many addresses; counting per
address stops one address guessing many accounts. Kept in memory, per process: a restart
forgets it, which only ever lets a patient attacker start again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..types import Clock

MAX_KEYS = 100_000
"""Bounds the memory an attacker can make it use with many emails."""


@dataclass
class LoginThrottle:
    """Failures per email and per address in a sliding window."""

    clock: Clock
    limit: int = 5
    window: float = 15 * 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)

    def retry_after(self, email: str, address: str | None) -> float | None:
        """Seconds to wait before another attempt is heard, or None when one may try now."""
        now = self.clock()
        waits = [self._wait(key, now) for key in self._keys(email, address)]
        return max((w for w in waits if w is not None), default=None)

    def failed(self, email: str, address: str | None) -> None:
        now = self.clock()
        if len(self._failures) >= MAX_KEYS:
            self._forget_old(now)
        for key in self._keys(email, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str) -> None:
        self._failures.pop(_email_key(email), None)

    def _wait(self, key: str, now: float) -> float | None:
        times = self._failures.get(key)
        if not times:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < self.limit:
            return None
        return max(1.0, times[-self.limit] + self.window - now)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
            del self._failures[key]
        if len(self._failures) >= MAX_KEYS:
            self._failures.clear()

    @staticmethod
    def _keys(email: str, address: str | None) -> list[str]:
        keys = [_email_key(email)]
        if address:
            keys.append(f"address:{address}")
        return keys


def _email_key(email: str) -> str:
    return f"email:{email.strip().lower()}"
