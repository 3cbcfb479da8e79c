"""The throttle's counters in Redis, shared by gateway replicas in several processes.

Each update is one Lua script run with ``EVALSHA`` (redis-py's ``Script`` sends the source once
when the server does not know it yet), so a check-and-take on a bucket or a quota is atomic
across every replica. The script does the same arithmetic, in the same order, on the same IEEE
doubles as :class:`~operators.policies.token_bucket.TokenBucket` and
:class:`~operators.policies.quota.QuotaCounter`, and numbers cross the wire as ``%.17g``
strings (which round-trip a double exactly), so the two stores decide alike to the last bit.

Time is passed in by the policy (``now``, ``calendar_now``), never read from Redis, so the
decisions are deterministic; Redis's own clock only expires keys (``PEXPIRE``) once they can no
longer change a decision: a bucket once it would have refilled, a fixed quota window once it has
ended, a sliding one once it has stopped weighing on the next window, each plus
:data:`EXPIRY_SLACK` for clocks that disagree. Quota windows are numbered here in Python
(:func:`~operators.policies.quota.window_index`, calendar months included) and the script finds
their bounds from the number, so both stores cut windows at the same instants.

A bucket is a hash ``<prefix>{<key>}:b`` (tokens, last refill, rate, burst); a quota is a hash
``<prefix>{<key>}:q`` (window number, count in it and in the one before, terms). The braces are
a Redis Cluster hash tag: both hashes of a key live on one node, as a script needs.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from operators.config import Quota, QuotaPeriod
from operators.policies.counter_store import (
    ALLOW,
    QUOTA_EXCEEDED,
    TOO_MANY_REQUESTS,
    CounterDecision,
    InMemoryCounterStore,
    Limits,
    ThrottleDecision,
)
from operators.policies.quota import window_index

if TYPE_CHECKING:
    import redis

__all__ = ["EXPIRY_SLACK", "PROBE_INTERVAL", "RedisCounterStore"]

EXPIRY_SLACK: Final = 60.0
"""Seconds a key outlives the moment it stops mattering (replicas' clocks need not agree)."""

PROBE_INTERVAL: Final = 1.0
"""Wall-clock seconds between a probe's pings while Redis cannot be reached.

The client is synchronous and the gateway calls it on its event loop: asking a Redis that
stopped answering would stall the loop for the whole socket timeout. So the call that finds
Redis gone pays the timeout once; from then on every call is decided at once by the process's
own counters, and a thread of the store's (not the loop) pings Redis until it answers."""

_PERIOD_SECONDS: Final = {
    QuotaPeriod.MINUTE: "60",
    QuotaPeriod.HOUR: "3600",
    QuotaPeriod.DAY: "86400",
    QuotaPeriod.MONTH: "0",  # calendar months: the script computes their bounds
}

# KEYS[1] bucket hash, KEYS[2] quota hash.
# ARGV: mode ("bucket", "quota" or "admit"), slack seconds,
#       bucket: now, rate, burst,
#       quota: calendar now, window number, limit, period seconds (0: month), window kind.
# Returns {allowed 0/1, refused by (0 none, 1 bucket, 2 quota), retry-after, remaining}.
_SCRIPT: Final = """
local mode = ARGV[1]
local slack = tonumber(ARGV[2])

local function num(x) return string.format('%.17g', x) end

local function month_start(index)
  -- Seconds from 1970 to the first of month ``index`` (months since year 0), UTC.
  local y = math.floor(index / 12)
  local m = index - y * 12 + 1
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400
end

local function bounds(index, seconds)
  if seconds == 0 then return month_start(index), month_start(index + 1) end
  return index * seconds, (index + 1) * seconds
end

-- The bucket, refilled to now.
local b = {}
local function bucket_load()
  b.now = tonumber(ARGV[3])
  b.rate_s = ARGV[4]
  b.rate = tonumber(ARGV[4])
  b.burst = tonumber(ARGV[5])
  local s = redis.call('HMGET', KEYS[1], 't', 'l', 'r', 'b')
  if s[1] and s[3] == ARGV[4] and s[4] == ARGV[5] then
    b.tokens = tonumber(s[1])
    b.last = tonumber(s[2])
  else
    b.tokens = b.burst
    b.last = b.now
  end
  if b.now > b.last then
    b.tokens = math.min(b.burst, b.tokens + (b.now - b.last) * b.rate)
    b.last = b.now
  end
end
local function bucket_retry_after()
  if b.tokens >= 1 then return 0.0 end
  return (1 - b.tokens) / b.rate
end
local function bucket_save()
  redis.call('HSET', KEYS[1], 't', num(b.tokens), 'l', num(b.last), 'r', b.rate_s, 'b', ARGV[5])
  local full_in = (b.burst - b.tokens) / b.rate
  redis.call('PEXPIRE', KEYS[1], math.ceil((full_in + slack) * 1000))
end

-- The quota, rolled to the window holding now.
local q = {}
local function quota_load()
  q.now = tonumber(ARGV[6])
  local index = tonumber(ARGV[7])
  q.limit = tonumber(ARGV[8])
  q.seconds = tonumber(ARGV[9])
  q.window = ARGV[10]
  q.terms = ARGV[8] .. '/' .. ARGV[9] .. '/' .. ARGV[10]
  local s = redis.call('HMGET', KEYS[2], 'i', 'c', 'p', 'k')
  if s[1] and s[4] == q.terms then
    q.index = tonumber(s[1])
    q.current = tonumber(s[2])
    q.previous = tonumber(s[3])
  else
    q.index = index
    q.current = 0
    q.previous = 0
  end
  if index > q.index then
    -- a later window; an earlier one is a clock that stepped back: keep counting where we are
    if index == q.index + 1 then q.previous = q.current else q.previous = 0 end
    q.current = 0
    q.index = index
  end
  q.start, q.finish = bounds(q.index, q.seconds)
end
local function quota_used()
  if q.window == 'fixed' or q.previous == 0 then return q.current end
  local weight = math.min(1.0, math.max(0.0, (q.finish - q.now) / (q.finish - q.start)))
  return q.previous * weight + q.current
end
local function quota_retry_after()
  if quota_used() + 1 <= q.limit then return 0.0 end
  if q.window == 'fixed' then return q.finish - q.now end
  local room = q.limit - 1 - q.current
  if room >= 0 and q.previous > 0 then
    local moment = q.finish - room * (q.finish - q.start) / q.previous
    return math.max(0.0, moment - q.now)
  end
  local next_start, next_end = bounds(q.index + 1, q.seconds)
  local moment = next_end - (q.limit - 1) * (next_end - next_start) / q.current
  return math.max(next_start, moment) - q.now
end
local function quota_save()
  redis.call('HSET', KEYS[2], 'i', q.index, 'c', q.current, 'p', q.previous, 'k', q.terms)
  local matters_until = q.finish
  if q.window == 'sliding' then
    local _, next_end = bounds(q.index + 1, q.seconds)
    matters_until = next_end
  end
  redis.call('PEXPIRE', KEYS[2], math.ceil((matters_until - q.now + slack) * 1000))
end
local function quota_remaining()
  return math.max(0, math.floor(q.limit - quota_used()))
end

if mode == 'bucket' then
  bucket_load()
  local allowed = 0
  local retry = 0.0
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    allowed = 1
  else
    retry = bucket_retry_after()
  end
  bucket_save()
  return {allowed, 0, num(retry), num(b.tokens)}
end

if mode == 'quota' then
  quota_load()
  local allowed = 0
  local retry = 0.0
  if quota_used() + 1 <= q.limit then
    q.current = q.current + 1
    allowed = 1
  else
    retry = quota_retry_after()
  end
  quota_save()
  return {allowed, 0, num(retry), num(quota_remaining())}
end

-- admit: the bucket must hold a token, then the quota must count the call, then take it.
bucket_load()
if b.tokens < 1 then
  local retry = bucket_retry_after()
  bucket_save()
  return {0, 1, num(retry), num(b.tokens)}
end
if ARGV[6] then
  quota_load()
  if quota_used() + 1 > q.limit then
    local retry = quota_retry_after()
    bucket_save()
    quota_save()
    return {0, 2, num(retry), num(quota_remaining())}
  end
  q.current = q.current + 1
  quota_save()
end
b.tokens = b.tokens - 1
bucket_save()
return {1, 0, num(0.0), num(b.tokens)}
"""


def _num(value: float) -> str:
    """A number as the script reads it back exactly (``repr`` is the shortest round trip)."""
    return repr(float(value))


class RedisCounterStore:
    """Token buckets and quota windows in one Redis, atomic per call, shared by processes.

    When Redis cannot be reached, :meth:`admit` (the gateway's call) fails open to counters of
    this process's own until a probe thread's ping gets an answer (every
    :data:`PROBE_INTERVAL` seconds), and :attr:`failures` counts each call so decided:
    refusing every call for want of the shared counter would turn a counter outage into an API
    outage, and admitting every call would let one application flood the backends. Each
    replica then enforces the plan by itself, so the replicas together admit up to their
    number times it. ``fail_open=False`` raises instead.
    :meth:`take_token` and :meth:`count_call` always raise ``redis.RedisError``.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = "ogsim:", fail_open: bool = True,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        import redis

        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_SCRIPT)
        self._slack = _num(EXPIRY_SLACK)
        self._fail_open = fail_open
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.failures = 0
        """Calls decided by this process's own counters because Redis could not be reached."""
        self._fallback = InMemoryCounterStore()
        self._probe_interval = probe_interval
        self._outage_lock = threading.Lock()
        self._probe: threading.Thread | None = None
        """The thread pinging Redis while it is out; None while Redis answers."""
        self._closed = threading.Event()

    @property
    def in_outage(self) -> bool:
        """Whether calls are decided by this process's counters (Redis could not be reached
        and has not answered a ping since)."""
        return self._probe is not None or self._closed.is_set()

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "ogsim:", timeout: float = 0.5, fail_open: bool = True
    ) -> RedisCounterStore:
        """A store on the server at ``url`` (``redis://127.0.0.1:6379/0``).

        ``timeout`` bounds connecting and each reply (seconds): the gateway calls the store on
        its request path, so a Redis that hangs must not hang the gateway with it.
        """
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, fail_open=fail_open)

    @property
    def client(self) -> redis.Redis:
        """The Redis connection (pool) this store talks through."""
        return self._client

    def _keys(self, key: str) -> list[str]:
        base = f"{self._prefix}{{{key}}}"
        return [base + ":b", base + ":q"]

    def _open_client(self) -> redis.Redis:
        """The client, unless the store is closed: redis-py would quietly reconnect."""
        if self._closed.is_set():
            import redis

            raise redis.ConnectionError("the counter store is closed")
        return self._client

    def _run(self, key: str, args: list[str]) -> tuple[bool, int, float, float]:
        self._open_client()
        reply: Any = self._script(keys=self._keys(key), args=args)
        allowed, refused_by, retry_after, remaining = reply
        return bool(allowed), int(refused_by), float(retry_after), float(remaining)

    @staticmethod
    def _quota_args(quota: Quota, now: float) -> list[str]:
        period = QuotaPeriod(quota.period)
        return [
            _num(now),
            str(window_index(period, now)),
            str(quota.limit),
            _PERIOD_SECONDS[period],
            quota.window,
        ]

    def take_token(self, key: str, rate: float, burst: int, now: float) -> CounterDecision:
        """Take one token from bucket ``key`` at ``now`` if there is one."""
        allowed, _, retry_after, remaining = self._run(
            key, ["bucket", self._slack, _num(now), _num(rate), str(burst)]
        )
        return CounterDecision(allowed, retry_after, remaining)

    def count_call(self, key: str, quota: Quota, now: float) -> CounterDecision:
        """Count one call in quota ``key`` at (calendar time) ``now`` if it fits."""
        args = ["quota", self._slack, "", "", "", *self._quota_args(quota, now)]
        allowed, _, retry_after, remaining = self._run(key, args)
        return CounterDecision(allowed, retry_after, remaining)

    def admit(self, key: str, limits: Limits, now: float, calendar_now: float) -> ThrottleDecision:
        """The throttle's decision: bucket has a token, then quota counts, then token taken."""
        args = ["admit", self._slack, _num(now), _num(limits.rate), str(limits.burst)]
        if limits.quota is not None:
            args += self._quota_args(limits.quota, calendar_now)
        if self._probe is not None or self._closed.is_set():
            self.failures += 1
            return self._fallback.admit(key, limits, now, calendar_now)
        try:
            allowed, refused_by, retry_after, _ = self._run(key, args)
        except self._errors:
            if not self._fail_open:
                raise
            self.failures += 1
            self._start_probe()
            return self._fallback.admit(key, limits, now, calendar_now)
        if allowed:
            return ALLOW
        code = TOO_MANY_REQUESTS if refused_by == 1 else QUOTA_EXCEEDED
        return ThrottleDecision(False, code, retry_after)

    def _start_probe(self) -> None:
        with self._outage_lock:
            if self._probe is None and not self._closed.is_set():
                self._probe = threading.Thread(target=self._ping_until_answered, daemon=True,
                                               name="redis-counters-probe")
                self._probe.start()

    def _ping_until_answered(self) -> None:
        """Ping Redis every interval; once it answers, calls go to it again."""
        while not self._closed.wait(self._probe_interval):
            try:
                self._client.ping()
            except self._errors:
                continue
            with self._outage_lock:
                self._probe = None
            return
        # closed during the outage: it is not over, and the closed client is not asked again

    def close(self) -> None:
        """Stop the probe (if Redis is out) and close the connections; calls after it are
        decided by the process's own counters."""
        self._closed.set()
        probe = self._probe
        if probe is not None:
            probe.join()
        self._client.close()

    def _scan(self, pattern: str) -> list[bytes]:
        return list(self._open_client().scan_iter(match=pattern, count=1000))

    def forget(self, prefix: str) -> None:
        """Drop every counter whose key starts with ``prefix``."""
        names = self._scan(f"{_glob_escape(self._prefix + '{' + prefix)}*")
        if names:
            self._open_client().delete(*names)

    @property
    def tracked(self) -> int:
        """Number of keys with a bucket or a quota (a scan: for tests and tools, not per call)."""
        names = self._scan(f"{_glob_escape(self._prefix + '{')}*")
        return len({name.rsplit(b":", 1)[0] for name in names})


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
