"""Per-application, per-plan throttling: a token bucket for bursts, then the plan's quota.

The bucket runs on ``clock`` (monotonic live); quotas run on ``calendar_clock`` (default
``clock``) because quota periods are calendar periods and need an epoch clock such as
``time.time`` live. A call the bucket refuses consumes no quota, and a call the quota refuses
consumes no token, so a client locked out by its quota is not also pushed into rate limiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from operators.config import Plan
from operators.policies.quota import QuotaCounter
from operators.policies.token_bucket import TokenBucket
from operators.types import Clock

__all__ = [
    "QUOTA_EXCEEDED",
    "TOO_MANY_REQUESTS",
    "NoThrottle",
    "Throttle",
    "ThrottleDecision",
    "ThrottlePolicy",
]

TOO_MANY_REQUESTS: Final = "TOO_MANY_REQUESTS"
QUOTA_EXCEEDED: Final = "QUOTA_EXCEEDED"


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    """Whether one call may pass; when refused, the CAMARA 429 code and a Retry-After hint."""

    allowed: bool
    code: str | None = None
    retry_after: float = 0.0


_ALLOW: Final = ThrottleDecision(allowed=True)


class ThrottlePolicy(Protocol):
    """What the gateway needs from a throttle, so ``NoThrottle`` can stand in for ``Throttle``."""

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Decide one call of ``application`` under ``plan``."""
        ...


@dataclass(slots=True)
class _Limits:
    plan: Plan
    bucket: TokenBucket
    quota: QuotaCounter | None


class Throttle:
    """Keeps one bucket and one quota counter per (application, plan name)."""

    def __init__(self, clock: Clock, *, calendar_clock: Clock | None = None) -> None:
        self._clock = clock
        self._calendar_clock = calendar_clock if calendar_clock is not None else clock
        self._limits: dict[tuple[str, str], _Limits] = {}

    # Not ``__len__``: an empty throttle must stay truthy, or ``throttle or NoThrottle()`` drops it.
    @property
    def tracked(self) -> int:
        """Number of (application, plan) pairs with counters."""
        return len(self._limits)

    def _limits_for(self, application: str, plan: Plan) -> _Limits:
        key = (application, plan.name)
        limits = self._limits.get(key)
        if limits is None or (limits.plan is not plan and limits.plan != plan):
            # First call, or the plan's terms changed under the same name: start afresh.
            quota = None
            if plan.quota is not None:
                quota = QuotaCounter(
                    plan.quota.limit, plan.quota.period, plan.quota.window, self._calendar_clock
                )
            bucket = TokenBucket(plan.rate_per_second, plan.burst, self._clock)
            limits = _Limits(plan, bucket, quota)
            self._limits[key] = limits
        return limits

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Admit the call and consume a token and a quota unit, or refuse it with a reason."""
        limits = self._limits_for(application, plan)
        if limits.bucket.available() < 1:
            return ThrottleDecision(False, TOO_MANY_REQUESTS, limits.bucket.retry_after())
        if limits.quota is not None and not limits.quota.try_acquire():
            return ThrottleDecision(False, QUOTA_EXCEEDED, limits.quota.retry_after())
        limits.bucket.try_acquire()  # cannot fail: tokens only grow since the check above
        return _ALLOW

    def forget(self, application: str) -> None:
        """Drop the counters of an application (deleted, or moved to another plan)."""
        for key in [key for key in self._limits if key[0] == application]:
            del self._limits[key]


class NoThrottle:
    """Admits everything; the default where a gateway is built without throttling."""

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Always allow."""
        return _ALLOW
