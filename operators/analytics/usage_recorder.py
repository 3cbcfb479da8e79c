"""Usage buckets: every identified call folded into its application's, API's and time's bucket.

The gateway hands each call it answered for an identified application (where the call
statistics count it) to :meth:`UsageRecorder.record`: one dictionary lookup and one
:meth:`~operators.analytics.records.UsageBucket.add_call` on the event loop. The bucket
keeps how many calls there were and how they were answered, which subscribers they were about
and where they came from:

* the subscriber is a keyed hash (HMAC-SHA256, 64 bits shown) of the number, never the
  number: the detectors only compare keys. Replicas and restarts must hash alike (one
  subscriber counts once in a bucket whichever replica served them), so the key is either
  the operator's ``analytics.subscriber_key`` or, without one, drawn once and kept in the
  same database (``analytics_keys``). Either way the keys are pseudonyms, not anonymous:
  phone numbers are few enough to hash them all, so whoever holds the key can tell whose
  rows these are. What the hash protects is the buckets read without the key: an export of
  the table, the pages and CSVs built from it name no number. With the key kept in the
  database, a copy of the whole file carries the key too; a configured key keeps it out;
* the source is the caller's network: the /24 of an IPv4 address (an IPv4-mapped IPv6
  address, ``::ffff:a.b.c.d``, counts as its IPv4 one), the /64 of any other IPv6 one.

Every ``interval`` seconds a worker thread adds the pending buckets to the table in one
transaction: a bucket already there (an earlier batch's part, another replica's) is read and
merged, so counts add, distinct subscribers union (exactly, up to
:data:`~operators.analytics.records.MAX_DISTINCT`) and sources add. A failed write puts the
batch back; at stop whatever is pending is written.

Housekeeping drops a bucket's subscriber keys (``[]``) once no part of it is expected any
more (:mod:`operators.housekeeping`), keeping the count: such a row reads back with that many
stand-in keys, so its count is what it was, and a part still merged in after that adds its
subscribers without the union's dedup (a count a little high rather than lost).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from operators.storage import Database
from operators.types import Clock

from .batch_writer import BatchWriter
from .records import HOUR, MAX_DISTINCT, DistinctCounter, UsageBucket

__all__ = ["UsageRecorder", "source_of"]


SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics_usage_buckets (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    seconds REAL NOT NULL,
    start REAL NOT NULL,
    calls INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    throttled INTEGER NOT NULL,
    subscribers INTEGER NOT NULL,
    subscriber_keys TEXT NOT NULL,
    saturated INTEGER NOT NULL,
    sources TEXT NOT NULL,
    PRIMARY KEY (client_id, api, seconds, start)
);
CREATE INDEX IF NOT EXISTS analytics_usage_buckets_start
    ON analytics_usage_buckets (seconds, start);
CREATE INDEX IF NOT EXISTS analytics_usage_buckets_age ON analytics_usage_buckets (start);
CREATE INDEX IF NOT EXISTS analytics_usage_buckets_keyed ON analytics_usage_buckets (start)
    WHERE subscriber_keys != '[]';
CREATE TABLE IF NOT EXISTS analytics_keys (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
"""

_COLUMNS = (
    "client_id, api, seconds, start, calls, successes, errors, throttled, subscribers,"
    " subscriber_keys, saturated, sources"
)
_UPSERT = (
    f"INSERT INTO analytics_usage_buckets ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id, api, seconds, start) DO UPDATE SET"
    " calls = excluded.calls, successes = excluded.successes, errors = excluded.errors,"
    " throttled = excluded.throttled, subscribers = excluded.subscribers,"
    " subscriber_keys = excluded.subscriber_keys, saturated = excluded.saturated,"
    " sources = excluded.sources"
)
_SATURATED = "(saturated)"
"""Added to a full counter read back from the table so it counts as saturated again."""
_CACHE = 65_536
"""Entries each memo (hashed numbers, source labels) holds before it starts afresh."""

BucketKey = tuple[str, str, float]
"""``(client_id, api, bucket start)``."""


def source_of(host: str) -> str:
    """The network a caller's address belongs to: ``a.b.c.0/24`` for IPv4 (also when written
    as an IPv4-mapped IPv6 address, as a dual-stack socket reports it), the /64 for IPv6 (the
    address itself when it is neither)."""
    if ":" not in host:
        head, dot, _ = host.rpartition(".")
        return f"{head}.0/24" if dot and head.count(".") == 2 else host
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return source_of(str(address.ipv4_mapped))
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def _subscriber_secret(db: Database) -> bytes:
    """The database's key for hashing numbers, drawn by whoever needs it first (used when
    the operator configures none)."""
    db.execute(
        "INSERT OR IGNORE INTO analytics_keys (name, secret) VALUES ('subscriber', ?)",
        (secrets.token_bytes(32),),
    )
    row = db.one("SELECT secret FROM analytics_keys WHERE name = 'subscriber'")
    assert row is not None
    return bytes(row["secret"])


class UsageRecorder(BatchWriter[dict[BucketKey, UsageBucket]]):
    """Folds identified calls into :class:`UsageBucket` s in memory; adds them to the database
    in batches (:class:`~operators.analytics.batch_writer.BatchWriter`: start, stop, flush).

    ``clock`` is the gateway's epoch clock (a bucket's start is a multiple of
    ``bucket_seconds`` since the epoch). :meth:`record` runs on the event loop only, as does
    the swap of the pending buckets, so a call recorded while a batch is written lands in the
    next batch. ``on_first_success(client_id, api)`` is told when a pending bucket sees its
    first 2xx (the activity log keeps the application's first success per API from it).
    ``subscriber_key`` is the key numbers are hashed with; None: the database's own.
    """

    noun = "usage buckets"
    logger = logging.getLogger("ogsim.analytics")

    def __init__(
        self,
        db: Database,
        clock: Clock = time.time,
        *,
        bucket_seconds: float = HOUR,
        interval: float = 2.0,
        on_first_success: Callable[[str, str], None] | None = None,
        subscriber_key: str | None = None,
    ) -> None:
        if bucket_seconds <= 0:
            raise ValueError(f"bucket_seconds must be positive, got {bucket_seconds!r}")
        super().__init__(interval)
        db.ensure_schema(SCHEMA)
        self.db = db
        self.clock = clock
        self.seconds = float(bucket_seconds)
        self.on_first_success = on_first_success
        self._secret = _subscriber_secret(db) if subscriber_key is None else subscriber_key.encode()
        self._pending: dict[BucketKey, UsageBucket] = {}
        self._keys: dict[str, str] = {}
        self._sources: dict[str, str] = {}

    # -- the hot path ---------------------------------------------------------------------

    def record(
        self,
        client_id: str,
        api: str,
        status: int,
        *,
        subscriber: str | None = None,
        host: str | None = None,
    ) -> None:
        """Fold one answered call in: ``subscriber`` the number it was about (hashed here),
        ``host`` the caller's address (its network kept)."""
        seconds = self.seconds
        key = (client_id, api, self.clock() // seconds * seconds)
        bucket = self._pending.get(key)
        if bucket is None:
            bucket = self._pending[key] = UsageBucket(client_id, api, key[2])
        bucket.add_call(
            status,
            subscriber=None if subscriber is None else self.subscriber_key(subscriber),
            source=None if host is None else self._source(host),
        )
        if bucket.successes == 1 and 200 <= status < 300 and self.on_first_success is not None:
            self.on_first_success(client_id, api)

    def subscriber_key(self, number: str) -> str:
        """The keyed hash a bucket counts ``number`` by (the same in every replica)."""
        key = self._keys.get(number)
        if key is None:
            if len(self._keys) >= _CACHE:
                self._keys.clear()
            digest = hmac.new(self._secret, number.encode(), hashlib.sha256).hexdigest()
            key = self._keys[number] = digest[:16]
        return key

    def _source(self, host: str) -> str:
        label = self._sources.get(host)
        if label is None:
            if len(self._sources) >= _CACHE:
                self._sources.clear()
            label = self._sources[host] = source_of(host)
        return label

    @property
    def pending_calls(self) -> int:
        """Calls recorded and not yet written."""
        return sum(bucket.calls for bucket in self._pending.values())

    def pending_buckets(self) -> list[UsageBucket]:
        """Copies of the buckets recorded and not yet written (run on the event loop)."""
        copies = []
        for bucket in self._pending.values():
            copy = UsageBucket(bucket.client_id, bucket.api, bucket.start)
            copy.merge(bucket)
            copies.append(copy)
        return copies

    # -- writing --------------------------------------------------------------------------

    def _take(self) -> dict[BucketKey, UsageBucket]:
        batch, self._pending = self._pending, {}
        return batch

    def _put_back(self, batch: dict[BucketKey, UsageBucket]) -> None:
        for key, bucket in batch.items():
            mine = self._pending.get(key)
            if mine is None:
                self._pending[key] = bucket
            else:
                bucket.merge(mine)
                self._pending[key] = bucket

    def _count(self, batch: dict[BucketKey, UsageBucket]) -> int:
        return sum(bucket.calls for bucket in batch.values())

    def _write(self, batch: dict[BucketKey, UsageBucket]) -> None:
        """Merge one batch into the table in one transaction (all of it or none of it)."""
        with self.db.transaction():
            for bucket in batch.values():
                row = self.db.one(
                    f"SELECT {_COLUMNS} FROM analytics_usage_buckets"
                    " WHERE client_id = ? AND api = ? AND seconds = ? AND start = ?",
                    (bucket.client_id, bucket.api, self.seconds, bucket.start),
                )
                merged = bucket
                if row is not None:
                    merged = _bucket(row)
                    merged.merge(bucket)
                self.db.execute(_UPSERT, _row(merged, self.seconds))

    # -- reading --------------------------------------------------------------------------

    def read_buckets(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        client_ids: Iterable[str] | None = None,
        seconds: float | None = None,
    ) -> list[UsageBucket]:
        """The written buckets starting in ``[since, until)`` (either bound open when None)
        of ``bucket_seconds`` (or ``seconds``) length, oldest first, optionally of some
        applications only. Safe from any thread."""
        where: list[str] = ["seconds = ?"]
        params: list[object] = [self.seconds if seconds is None else float(seconds)]
        if since is not None:
            where.append("start >= ?")
            params.append(since)
        if until is not None:
            where.append("start < ?")
            params.append(until)
        if client_ids is not None:
            ids = sorted(set(client_ids))
            if not ids:
                return []
            where.append(f"client_id IN ({','.join('?' for _ in ids)})")
            params.extend(ids)
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM analytics_usage_buckets WHERE {' AND '.join(where)}"
            " ORDER BY start, client_id, api",
            params,
        )
        return [_bucket(row) for row in rows]


def _row(bucket: UsageBucket, seconds: float) -> tuple[object, ...]:
    counter = bucket.subscribers
    saturated = counter.count >= MAX_DISTINCT
    return (
        bucket.client_id,
        bucket.api,
        seconds,
        bucket.start,
        bucket.calls,
        bucket.successes,
        bucket.errors,
        bucket.throttled,
        counter.count,
        json.dumps(sorted(counter.keys), separators=(",", ":")),
        int(saturated),
        json.dumps(bucket.sources, separators=(",", ":"), sort_keys=True),
    )


@functools.cache
def _stand_ins() -> tuple[str, ...]:
    """Keys standing for the subscribers of a bucket whose keys were dropped."""
    return tuple(f"(dropped){n}" for n in range(MAX_DISTINCT))


def _bucket(row: Any) -> UsageBucket:
    keys: list[str] | tuple[str, ...] = json.loads(row["subscriber_keys"])
    if not keys and row["subscribers"]:
        keys = _stand_ins()[: int(row["subscribers"])]  # dropped by housekeeping: the count
    counter = DistinctCounter(keys)
    if row["saturated"]:
        counter.add(_SATURATED)  # a full set: the one more key marks it saturated again
    sources = {str(k): int(v) for k, v in json.loads(row["sources"]).items()}
    return UsageBucket(
        client_id=str(row["client_id"]),
        api=str(row["api"]),
        start=float(row["start"]),
        calls=int(row["calls"]),
        successes=int(row["successes"]),
        errors=int(row["errors"]),
        throttled=int(row["throttled"]),
        subscribers=counter,
        sources=sources,
    )
