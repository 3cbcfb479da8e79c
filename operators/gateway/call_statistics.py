"""Call statistics: how many calls each application made to each API per UTC day, how they
were answered and how long they took, for the developer portal's usage pages.

This is not metering. Metering (:mod:`operators.gateway.metering`) keeps one event per
*billable* call, exactly once, committed before the answer leaves. Statistics count *every*
call that reached an identified application (its token verified, so its ``client_id`` is
known), refused ones included: a 401 for a disabled client, 403, 404, 422, 429, 5xx. They are
aggregates, not events, so the hot path pays one dictionary update per call and the database
sees them later, in batches, off the event loop:

* per call, :meth:`CallStatistics.record` adds one to the tally of
  ``(client_id, api, UTC day, status, code, counted)`` in memory and one to that tally's
  latency histogram;
* every ``interval`` seconds the pending tallies are swapped out on the event loop and
  upserted (counts added) in one transaction in a worker thread;
* at stop, whatever is pending is written; a failed write puts its tallies back.

``counted`` says whether the call passed the throttle (the plan's quota counted it): the
portal's reading of quota used. The day comes from the epoch clock the gateway meters with.

Latencies go into a :class:`LatencyHistogram`: DDSketch's logarithmic bins (``ddsketch``'s
:class:`~ddsketch.mapping.LogarithmicMapping`), sparse, so histograms of different days,
replicas or statuses merge by adding counts and any quantile of the merge is within
:data:`RELATIVE_ACCURACY` of the exact one. Replicas sharing one database file add into the
same rows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ddsketch.mapping import LogarithmicMapping

from operators.analytics.batch_writer import BatchWriter
from operators.storage import Database
from operators.types import Clock

__all__ = [
    "CALLER",
    "RELATIVE_ACCURACY",
    "CallStatistics",
    "CallTally",
    "LatencyHistogram",
    "day_of",
]

RELATIVE_ACCURACY = 0.01
"""Every quantile read from a histogram is within 1 % of the exact value at its rank."""
MIN_LATENCY = 1e-6
"""Latencies below a microsecond are counted as one (the logarithmic bins need a value > 0)."""
CALLER = "caller"
"""The request-state key under which the gateway notes ``(client_id, api)`` once the token is
verified; a call without it is not an identified application's and is not counted."""
_COUNTED = "call"
"""The request-state key the gateway sets once the throttle admitted the call (its quota
counted it): :class:`~operators.gateway.gateway.MeteredCall`."""
_MAX_ERROR_BODY = 16 * 1024
_MAX_CODE = 64
_DAY = 86_400
_EPOCH = date(1970, 1, 1).toordinal()
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


SCHEMA = """
CREATE TABLE IF NOT EXISTS call_statistics (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    day TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    counted INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (client_id, api, day, status, code, counted)
);
CREATE TABLE IF NOT EXISTS call_latency_bins (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    day TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    counted INTEGER NOT NULL,
    bin INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (client_id, api, day, status, code, counted, bin)
);
"""

_ADD_CALLS = (
    "INSERT INTO call_statistics (client_id, api, day, status, code, counted, calls)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id, api, day, status, code, counted)"
    " DO UPDATE SET calls = calls + excluded.calls"
)
_ADD_BIN = (
    "INSERT INTO call_latency_bins (client_id, api, day, status, code, counted, bin, calls)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id, api, day, status, code, counted, bin)"
    " DO UPDATE SET calls = calls + excluded.calls"
)

Key = tuple[str, str, int, int, str, bool]
"""``(client_id, api, epoch day number, status, code, counted)``."""

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def day_of(epoch_seconds: float) -> date:
    """The UTC calendar day of an epoch instant."""
    return datetime.fromtimestamp(epoch_seconds, UTC).date()


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH


def _day_text(number: int) -> str:
    return date.fromordinal(_EPOCH + number).isoformat()


class LatencyHistogram:
    """Latencies in logarithmic bins of relative width :data:`RELATIVE_ACCURACY` (seconds)."""

    __slots__ = ("bins",)

    def __init__(self, bins: dict[int, int] | None = None) -> None:
        self.bins: dict[int, int] = bins if bins is not None else {}

    def add(self, seconds: float, calls: int = 1) -> None:
        key = _MAPPING.key(seconds if seconds > MIN_LATENCY else MIN_LATENCY)
        self.bins[key] = self.bins.get(key, 0) + calls

    def merge(self, other: LatencyHistogram) -> None:
        for key, calls in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + calls

    @property
    def count(self) -> int:
        return sum(self.bins.values())

    def quantile(self, q: float) -> float | None:
        """The latency at quantile ``q`` (0..1), within the relative accuracy of the value of
        rank ``floor(q * (count - 1))`` among the sorted latencies; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile is between 0 and 1, got {q!r}")
        count = self.count
        if count == 0:
            return None
        rank = q * (count - 1)
        running = 0
        key = 0
        for key in sorted(self.bins):
            running += self.bins[key]
            if running > rank:
                break
        return float(_MAPPING.value(key))


@dataclass(frozen=True)
class CallTally:
    """Calls of one application to one API on one UTC day that got one status and code."""

    client_id: str
    api: str
    day: date
    status: int
    code: str
    """The CAMARA error code of a 4xx/5xx answer; empty for a success."""
    counted: bool
    """Whether the throttle admitted these calls, so the plan's quota counted them."""
    calls: int
    latency: LatencyHistogram


class _Tally:
    __slots__ = ("calls", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.latency = LatencyHistogram()


class CallStatistics(BatchWriter[dict[Key, _Tally]]):
    """Records every identified call in memory and adds the tallies to the database in batches.

    ``clock`` is the epoch clock the day is read from (the gateway's calendar). ``record`` runs
    on the event loop only; the swap of the pending tallies happens there too, so a call
    recorded while a batch is being written lands in the next batch, never in a written one
    (:class:`~operators.analytics.batch_writer.BatchWriter`: start, stop, flush).
    """

    noun = "call statistics"
    logger = logging.getLogger("ogsim.gateway")

    def __init__(self, db: Database, clock: Clock = time.time, *, interval: float = 2.0) -> None:
        super().__init__(interval)
        db.ensure_schema(SCHEMA)
        self.db = db
        self.clock = clock
        self._pending: dict[Key, _Tally] = {}

    # -- the hot path ---------------------------------------------------------------------

    def record(
        self,
        client_id: str,
        api: str,
        status: int,
        code: str,
        seconds: float,
        *,
        counted: bool,
    ) -> None:
        """Count one answered call (a dictionary update; nothing is written here)."""
        key = (client_id, api, int(self.clock() // _DAY), status, code, counted)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        tally.calls += 1
        tally.latency.add(seconds)

    def observe(self, send: Send, state: MutableMapping[str, Any], started: float) -> Send:
        """Wrap an ASGI ``send`` so the answer actually sent is recorded once it is complete:
        the status of its head, the error code of its body, the latency at its head."""
        return _Observer(self, send, state, started)

    @property
    def pending_calls(self) -> int:
        """Calls recorded and not yet written."""
        return sum(tally.calls for tally in self._pending.values())

    # -- writing --------------------------------------------------------------------------

    def _take(self) -> dict[Key, _Tally]:
        batch, self._pending = self._pending, {}
        return batch

    def _put_back(self, batch: dict[Key, _Tally]) -> None:
        for key, tally in batch.items():
            mine = self._pending.get(key)
            if mine is None:
                self._pending[key] = tally
            else:
                mine.calls += tally.calls
                mine.latency.merge(tally.latency)

    def _count(self, batch: dict[Key, _Tally]) -> int:
        return sum(tally.calls for tally in batch.values())

    def _write(self, batch: dict[Key, _Tally]) -> None:
        """Add one batch to the tables in one transaction (all of it or none of it)."""
        calls: list[tuple[object, ...]] = []
        bins: list[tuple[object, ...]] = []
        for (client_id, api, day, status, code, counted), tally in batch.items():
            row = (client_id, api, _day_text(day), status, code, int(counted))
            calls.append((*row, tally.calls))
            bins.extend((*row, key, n) for key, n in tally.latency.bins.items())
        with self.db.transaction():
            for params in calls:
                self.db.execute(_ADD_CALLS, params)
            for params in bins:
                self.db.execute(_ADD_BIN, params)

    # -- reading --------------------------------------------------------------------------

    def tallies(
        self,
        client_ids: Collection[str],
        first: date,
        last: date,
        *,
        latency: bool = True,
        pending: bool = True,
    ) -> list[CallTally]:
        """The tallies of these applications from ``first`` to ``last`` (UTC days, inclusive),
        with the calls not yet written unless ``pending`` is False; run on the event loop
        (the pending tallies are the loop's). ``latency=False`` skips the histograms."""
        if not client_ids or first > last:
            return []
        ids = sorted(set(client_ids))
        marks = ",".join("?" for _ in ids)
        params = (*ids, first.isoformat(), last.isoformat())
        where = f"client_id IN ({marks}) AND day BETWEEN ? AND ?"
        found: dict[Key, _Tally] = {}
        for row in self.db.all(
            "SELECT client_id, api, day, status, code, counted, calls FROM call_statistics"
            f" WHERE {where}",
            params,
        ):
            key = _key(row)
            found.setdefault(key, _Tally()).calls += int(row["calls"])
        if latency:
            for row in self.db.all(
                "SELECT client_id, api, day, status, code, counted, bin, calls"
                f" FROM call_latency_bins WHERE {where}",
                params,
            ):
                histogram = found.setdefault(_key(row), _Tally()).latency
                histogram.bins[int(row["bin"])] = int(row["calls"])
        if pending:
            low, high, wanted = _day_number(first), _day_number(last), set(ids)
            for key, tally in list(self._pending.items()):
                if key[0] in wanted and low <= key[2] <= high:
                    mine = found.setdefault(key, _Tally())
                    mine.calls += tally.calls
                    if latency:
                        mine.latency.merge(tally.latency)
        return [
            CallTally(
                client_id, api, date.fromordinal(_EPOCH + day), status, code, counted,
                tally.calls, tally.latency,
            )
            for (client_id, api, day, status, code, counted), tally in sorted(found.items())
        ]


def _key(row: Any) -> Key:
    return (
        str(row["client_id"]),
        str(row["api"]),
        _day_number(date.fromisoformat(row["day"])),
        int(row["status"]),
        str(row["code"]),
        bool(row["counted"]),
    )


def _error_code(chunks: Iterable[bytes]) -> str:
    """The ``code`` of a CAMARA error body, or empty when the body is not one."""
    try:
        body = json.loads(b"".join(chunks))
    except ValueError:
        return ""
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and len(code) <= _MAX_CODE else ""


class _Observer:
    """One call's ``send``: passes every message on, and records the answer it saw."""

    __slots__ = ("_chunks", "_head", "_send", "_size", "_started", "_state", "_statistics")

    def __init__(
        self,
        statistics: CallStatistics,
        send: Send,
        state: MutableMapping[str, Any],
        started: float,
    ) -> None:
        self._statistics = statistics
        self._send = send
        self._state = state
        self._started = started
        self._head: tuple[str, str, int, float] | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            caller = self._state.get(CALLER)
            if caller is not None:
                client_id, api = caller
                seconds = time.perf_counter() - self._started
                self._head = (client_id, api, int(message["status"]), seconds)
        elif kind == "http.response.body" and self._head is not None:
            client_id, api, status, seconds = self._head
            if status >= 400 and self._size <= _MAX_ERROR_BODY:
                chunk = bytes(message.get("body", b""))
                self._chunks.append(chunk)
                self._size += len(chunk)
            if not message.get("more_body", False):
                self._head = None
                code = _error_code(self._chunks) if status >= 400 else ""
                self._statistics.record(
                    client_id, api, status, code, seconds,
                    counted=self._state.get(_COUNTED) is not None,
                )
        await self._send(message)
