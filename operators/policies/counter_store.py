"""Where the throttle keeps its counters: token buckets and quota windows, by key.

A gateway whose replicas run in one process shares one :class:`InMemoryCounterStore` (the
default, and what the simulation uses). Replicas in several processes must share their
counters, or an operator with N processes would grant N times its limits and forget its monthly
quotas on every restart: :class:`~operators.policies.redis_counters.RedisCounterStore` keeps
them in Redis and makes the same decisions for the same sequence of calls (a contract test runs
one script against both).

The store is handed the time (``now`` for buckets, ``calendar_now`` for quotas) by the policy
that owns the clocks, so a store never reads a clock and both stores decide alike under a fake
clock. :meth:`CounterStore.admit` is the throttle's one call: bucket check, quota count, token
take, as one atomic step, so a call refused by one counter consumes nothing from the other even
when replicas race.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from operators.config import Quota
from operators.policies.quota import QuotaCounter
from operators.policies.token_bucket import TokenBucket

__all__ = [
    "QUOTA_EXCEEDED",
    "TOO_MANY_REQUESTS",
    "CounterDecision",
    "CounterStore",
    "InMemoryCounterStore",
    "Limits",
    "ThrottleDecision",
    "counter_store",
]

TOO_MANY_REQUESTS: Final = "TOO_MANY_REQUESTS"
QUOTA_EXCEEDED: Final = "QUOTA_EXCEEDED"


class ThrottleDecision(NamedTuple):
    """Whether one call may pass; when refused, the CAMARA 429 code and a Retry-After hint.

    A named tuple, not a frozen dataclass: every refused call makes one, and a frozen
    dataclass's constructor (one ``object.__setattr__`` per field) costs several times more.
    It stays immutable, equal by value, and prints the same.
    """

    allowed: bool
    code: str | None = None
    retry_after: float = 0.0


ALLOW: Final = ThrottleDecision(allowed=True)


class CounterDecision(NamedTuple):
    """One counter's answer: admitted or not, seconds until it would be, what is left after.

    ``remaining`` is tokens left in a bucket (fractional while refilling) or calls left in a
    quota window (whole). A named tuple, as :class:`ThrottleDecision` is, and for its reason.
    """

    allowed: bool
    retry_after: float
    remaining: float


@dataclass(frozen=True, slots=True)
class Limits:
    """A plan's terms as the counters need them: the bucket's rate and burst, and the quota.

    The throttle builds one per (application, plan) and passes the same object on every call,
    so a store can tell unchanged terms by identity, at no cost.
    """

    rate: float
    burst: int
    quota: Quota | None = None


class CounterStore(Protocol):
    """Atomic updates of named token buckets and quota windows, at times the caller gives.

    A bucket or quota is created full on its first use at that time; one whose terms (rate and
    burst, or limit, period and window) differ from the stored ones starts afresh, as a plan
    whose terms changed under the same name does.
    """

    def take_token(self, key: str, rate: float, burst: int, now: float) -> CounterDecision:
        """Take one token from bucket ``key`` at ``now`` if there is one."""
        ...

    def count_call(self, key: str, quota: Quota, now: float) -> CounterDecision:
        """Count one call in quota ``key`` at (calendar time) ``now`` if it fits."""
        ...

    def admit(self, key: str, limits: Limits, now: float, calendar_now: float) -> ThrottleDecision:
        """The throttle's decision: bucket has a token, then quota counts, then token taken.

        A call the bucket refuses consumes no quota; a call the quota refuses takes no token.
        The bucket runs on ``now``, the quota on ``calendar_now``.
        """
        ...

    def forget(self, prefix: str) -> None:
        """Drop every counter whose key starts with ``prefix``."""
        ...

    def close(self) -> None:
        """Release what the store holds outside the process's memory (connections, threads)."""
        ...

    @property
    def tracked(self) -> int:
        """Number of keys with a bucket or a quota."""
        ...


class _Counters:
    """The bucket and quota counter of one key, and the terms they were made for."""

    __slots__ = ("bucket", "counter", "limits", "quota")

    def __init__(self) -> None:
        self.limits: Limits | None = None
        self.bucket: TokenBucket | None = None
        self.quota: Quota | None = None
        self.counter: QuotaCounter | None = None

    def bucket_for(self, rate: float, burst: int, now: float) -> TokenBucket:
        bucket = self.bucket
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self.bucket = TokenBucket(rate, burst, start=now)
            self.limits = None  # whatever terms admit() knew, the bucket is not theirs now
        return bucket

    def counter_for(self, quota: Quota, now: float) -> QuotaCounter:
        counter = self.counter
        if counter is None or (self.quota is not quota and self.quota != quota):
            counter = QuotaCounter(quota.limit, quota.period, quota.window, start=now)
            self.counter = counter
        self.quota = quota
        return counter


class InMemoryCounterStore:
    """The counters of one process, in a dictionary: today's behaviour and speed."""

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: dict[str, _Counters] = {}

    @property
    def tracked(self) -> int:
        """Number of keys with a bucket or a quota."""
        return len(self._counters)

    def _at(self, key: str) -> _Counters:
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = _Counters()
        return counters

    def take_token(self, key: str, rate: float, burst: int, now: float) -> CounterDecision:
        """Take one token from bucket ``key`` at ``now`` if there is one."""
        bucket = self._at(key).bucket_for(rate, burst, now)
        if bucket.try_acquire_at(now):
            return CounterDecision(True, 0.0, bucket.available_at(now))
        return CounterDecision(False, bucket.retry_after_at(now), bucket.available_at(now))

    def count_call(self, key: str, quota: Quota, now: float) -> CounterDecision:
        """Count one call in quota ``key`` at (calendar time) ``now`` if it fits."""
        counter = self._at(key).counter_for(quota, now)
        allowed = counter.try_acquire_at(now)
        retry_after = 0.0 if allowed else counter.retry_after_at(now)
        return CounterDecision(allowed, retry_after, counter.remaining_at(now))

    def admit(self, key: str, limits: Limits, now: float, calendar_now: float) -> ThrottleDecision:
        """The throttle's decision: bucket has a token, then quota counts, then token taken."""
        counters = self._counters.get(key)
        if counters is None or counters.limits is not limits:
            counters = self._renew(key, limits, now)
        bucket = counters.bucket
        assert bucket is not None  # made by _renew
        quota = limits.quota
        if quota is None:
            # No quota between the bucket's check and its take: one step does both.
            if bucket.take_one_at(now):
                return ALLOW
            return ThrottleDecision(False, TOO_MANY_REQUESTS, bucket.retry_after_at(now))
        if bucket.available_at(now) < 1:
            return ThrottleDecision(False, TOO_MANY_REQUESTS, bucket.retry_after_at(now))
        counter = counters.counter_for(quota, calendar_now)
        if not counter.try_acquire_at(calendar_now):
            return ThrottleDecision(False, QUOTA_EXCEEDED, counter.retry_after_at(calendar_now))
        bucket.try_acquire_at(now)  # cannot fail: the bucket had a token at this same instant
        return ALLOW

    def _renew(self, key: str, limits: Limits, now: float) -> _Counters:
        """Counters for new terms: kept where the terms did not change, fresh where they did."""
        counters = self._at(key)
        counters.bucket_for(limits.rate, limits.burst, now)
        counters.limits = limits
        return counters

    def close(self) -> None:
        """Nothing to release: the counters are the process's own."""

    def forget(self, prefix: str) -> None:
        """Drop every counter whose key starts with ``prefix``."""
        for key in [key for key in self._counters if key.startswith(prefix)]:
            del self._counters[key]


def counter_store(redis_url: str | None = None, *, prefix: str = "ogsim:") -> CounterStore:
    """The in-memory store, or the Redis one at ``redis_url`` (``redis://host:port/db``).

    Redis is imported only when a URL is given, so a gateway without it never loads the client.
    """
    if not redis_url:
        return InMemoryCounterStore()
    from operators.policies.redis_counters import RedisCounterStore

    return RedisCounterStore.from_url(redis_url, prefix=prefix)
