"""Per-application, per-plan throttling: a token bucket for bursts, then the plan's quota.

The bucket runs on ``clock`` (monotonic live); quotas run on ``calendar_clock`` (default
``clock``) because quota periods are calendar periods and need an epoch clock such as
``time.time`` live. A call the bucket refuses consumes no quota, and a call the quota refuses
consumes no token, so a client locked out by its quota is not also pushed into rate limiting.

The counters live in a :class:`~operators.policies.counter_store.CounterStore`: this process's
memory by default, or Redis when gateway replicas run as several processes (then give every
replica the same store URL, and a ``clock`` the processes share: ``time.monotonic`` on one
host, ``time.time`` across hosts).
"""

from __future__ import annotations

from typing import Protocol

from operators.config import Plan
from operators.policies.counter_store import (
    ALLOW,
    QUOTA_EXCEEDED,
    TOO_MANY_REQUESTS,
    CounterStore,
    InMemoryCounterStore,
    Limits,
    ThrottleDecision,
    counter_store,
)
from operators.types import Clock

__all__ = [
    "QUOTA_EXCEEDED",
    "TOO_MANY_REQUESTS",
    "NoThrottle",
    "Throttle",
    "ThrottleDecision",
    "ThrottlePolicy",
    "gateway_throttle",
]

_SEPARATOR = "#"
"""Between application and plan name in a counter key; ``forget`` drops keys by prefix."""


class ThrottlePolicy(Protocol):
    """What the gateway needs from a throttle, so ``NoThrottle`` can stand in for ``Throttle``."""

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Decide one call of ``application`` under ``plan``."""
        ...


class Throttle:
    """One bucket and one quota counter per (application, plan name), kept in ``store``."""

    def __init__(
        self,
        clock: Clock,
        *,
        calendar_clock: Clock | None = None,
        store: CounterStore | None = None,
    ) -> None:
        self._clock = clock
        self._calendar_clock = calendar_clock if calendar_clock is not None else clock
        self._store: CounterStore = store if store is not None else InMemoryCounterStore()
        # Per (application, plan name): the plan last seen, the store key and its Limits, so a
        # call reads no plan field but its name (pydantic attributes are slow to read).
        self._keys: dict[tuple[str, str], tuple[Plan, str, Limits]] = {}
        # Per application: the very plan object of its last call and that plan's entry, so
        # the usual call (same application, same plan object) builds and hashes no tuple.
        self._last: dict[str, tuple[Plan, str, Limits]] = {}

    @property
    def store(self) -> CounterStore:
        """Where the buckets and quotas are kept."""
        return self._store

    def close(self) -> None:
        """Close the store (a Redis store's connections and outage probe)."""
        self._store.close()

    # Not ``__len__``: an empty throttle must stay truthy, or ``throttle or NoThrottle()`` drops it.
    @property
    def tracked(self) -> int:
        """Number of (application, plan) pairs with counters."""
        return self._store.tracked

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Admit the call and consume a token and a quota unit, or refuse it with a reason."""
        known = self._last.get(application)
        if known is None or known[0] is not plan:
            known = self._last[application] = self._entry(application, plan)
        limits = known[2]
        now = self._clock()
        calendar_now = now if limits.quota is None else self._calendar_clock()
        return self._store.admit(known[1], limits, now, calendar_now)

    def _entry(self, application: str, plan: Plan) -> tuple[Plan, str, Limits]:
        """``plan`` (this very object), the store key and the Limits of its terms."""
        name = (application, plan.name)
        known = self._keys.get(name)
        if known is None or (known[0] is not plan and known[0] != plan):
            # First call, or the plan's terms changed under the same name: the store compares.
            limits = Limits(plan.rate_per_second, plan.burst, plan.quota)
            known = self._keys[name] = (plan, application + _SEPARATOR + plan.name, limits)
        return (plan, known[1], known[2])

    def forget(self, application: str) -> None:
        """Drop the counters of an application (deleted, or moved to another plan)."""
        self._last.pop(application, None)
        for name in [name for name in self._keys if name[0] == application]:
            del self._keys[name]
        self._store.forget(application + _SEPARATOR)


class NoThrottle:
    """Admits everything; the default where a gateway is built without throttling."""

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        """Always allow."""
        return ALLOW


def gateway_throttle(
    redis_url: str | None, *, monotonic: Clock, calendar: Clock, namespace: str
) -> Throttle:
    """An operator gateway's throttle: counters in memory, or in Redis when a URL is given.

    In Redis the keys go under ``ogsim:<namespace>:`` (operators may share a server) and the
    buckets run on ``calendar`` too: replicas on other hosts share no monotonic clock.
    """
    if not redis_url:
        return Throttle(monotonic, calendar_clock=calendar)
    store = counter_store(redis_url, prefix=f"ogsim:{namespace}:")
    return Throttle(calendar, calendar_clock=calendar, store=store)
