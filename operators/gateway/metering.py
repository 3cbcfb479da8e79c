"""Metering: exactly one usage event per billable call, under the call's key.

The key is the client's ``Idempotency-Key``, else one the gateway chose; the ``correlator``
column holds it (it held the ``x-correlator`` before that header was left to correlate only).
An event is committed before the call's answer leaves the gateway (group-committed with the
events of calls finishing together), together with that answer, so a client retrying under
its idempotency key gets the same answer back instead of a second, unbilled call, and together
with the call's own effects (a QoD session row, say, held through ``Database.effect``): the
effect and its event land in one transaction or neither does.

The table is also an outbox for whoever bills or settles later: ``unpublished`` and
``mark_published`` are its read side, and the key makes a republished event count once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from operators.camara import Operation
from operators.storage import Database, Effect, apply_effects


def is_billable(operation: Operation | None, status: int) -> bool:
    """Whether a call is billed (metered, invoiced, settled): a successful (2xx) answer of a
    billable operation. A business answer about the subscriber (404, 422) is not a sale.

    Live metering, the aggregator's settlement and the simulation all ask this.
    """
    return operation is not None and operation.billable and 200 <= status < 300


SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_events (
    client_id TEXT NOT NULL,
    correlator TEXT NOT NULL,
    api TEXT NOT NULL,
    operation TEXT NOT NULL,
    plan TEXT NOT NULL,
    price REAL NOT NULL,
    currency TEXT NOT NULL,
    status INTEGER NOT NULL,
    at REAL NOT NULL,
    response BLOB,
    published_at REAL,
    msisdn TEXT,
    purpose TEXT,
    request_digest TEXT,
    party TEXT,
    PRIMARY KEY (client_id, correlator)
);
CREATE INDEX IF NOT EXISTS usage_events_unpublished ON usage_events (published_at)
    WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS usage_events_answers ON usage_events (at)
    WHERE response IS NOT NULL;
CREATE TABLE IF NOT EXISTS unbilled_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    msisdn TEXT NOT NULL,
    api TEXT NOT NULL,
    operation TEXT NOT NULL,
    purpose TEXT,
    status INTEGER NOT NULL,
    at REAL NOT NULL,
    party TEXT
);
"""
SUBJECT_SCHEMA = """
CREATE INDEX IF NOT EXISTS usage_events_subject ON usage_events (msisdn, at)
    WHERE msisdn IS NOT NULL;
CREATE INDEX IF NOT EXISTS unbilled_calls_subject ON unbilled_calls (msisdn, at);
"""
_SUBJECT_COLUMNS = ("msisdn", "purpose")
"""Columns added after the first release: a database file made before them gains them."""

class CallSubjects(list[str]):
    """The subscribers one call turned out to be about, and whether it read their data."""

    __slots__ = ("read",)

    def __init__(self) -> None:
        super().__init__()
        self.read = False
        """A network function answered for the call: its subscriber's data was processed,
        whatever the call's status (a 404 or 422 of the business is an access too)."""


_call_subjects: ContextVar[CallSubjects | None] = ContextVar("ogsim_call_subjects", default=None)


class _NotedSubjects:
    """The context of :func:`noted_subjects`: a class, not a generator, as every call enters it."""

    __slots__ = ("subjects", "token")

    def __init__(self) -> None:
        self.subjects = CallSubjects()
        self.token: Token[CallSubjects | None] | None = None

    def __enter__(self) -> CallSubjects:
        self.token = _call_subjects.set(self.subjects)
        return self.subjects

    def __exit__(self, *_: object) -> None:
        if self.token is not None:
            _call_subjects.reset(self.token)


def noted_subjects() -> AbstractContextManager[CallSubjects]:
    """Collect, for one API call, the subscribers a two-legged call turned out to be about
    (its token names nobody; the integrator learns the number from the body)."""
    return _NotedSubjects()


def note_subject(msisdn: str) -> None:
    """Say that the current call processes ``msisdn``'s data (ignored outside a call)."""
    subjects = _call_subjects.get()
    if subjects is not None and msisdn not in subjects:
        subjects.append(msisdn)


def note_read() -> None:
    """Say that the current call read its subscriber's data from the network (ignored outside
    a call): the access log then shows it whatever the answer."""
    subjects = _call_subjects.get()
    if subjects is not None:
        subjects.read = True


@dataclass(frozen=True)
class UsageEvent:
    """One billable call; ``(client_id, correlator)`` is its key (``correlator``: the
    client's ``Idempotency-Key``, else one the gateway chose)."""

    client_id: str
    correlator: str
    api: str
    operation: str
    plan: str
    price: float
    currency: str
    status: int
    at: float
    msisdn: str | None = None
    """The subscriber whose data the call processed, when one is known (GDPR access log)."""
    purpose: str | None = None
    request_digest: str | None = None
    """The request's fingerprint, when the client chose the key (replays match it)."""
    party: str | None = None
    """The application the client called for, when not itself: an aggregator's call for one
    of its applications (``hub/app``). The client is billed; the subscriber's access log names
    the application their data went to."""


@dataclass(frozen=True)
class StoredAnswer:
    """A billed call's answer, kept for a client that sends its idempotency key again."""

    status: int
    body: bytes | None
    """None once housekeeping dropped it (past the replay window): the key stays taken."""
    operation: str
    msisdn: str | None
    digest: str | None
    """The fingerprint of the request answered (None for answers stored before there was one):
    only the same request replays it."""


@dataclass(frozen=True)
class UnbilledCall:
    """A call about a known subscriber that was not billed: refused (401, 403, 429...), a
    business answer (404, 422) or a free operation. Kept so a subscriber sees every attempt
    on their data, not only the ones an application paid for."""

    client_id: str
    msisdn: str
    api: str
    operation: str
    purpose: str | None
    status: int
    at: float
    party: str | None = None
    """As :attr:`UsageEvent.party`: the application an aggregator called for."""


class UsageLedger:
    """The operator's usage events, stored in its own database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        for column in _SUBJECT_COLUMNS:
            db.ensure_column("usage_events", column, "TEXT")
        db.ensure_column("usage_events", "request_digest", "TEXT")
        db.ensure_column("usage_events", "party", "TEXT")
        db.ensure_column("unbilled_calls", "party", "TEXT")
        db.ensure_schema(SUBJECT_SCHEMA)

    _INSERT = (
        "INSERT OR IGNORE INTO usage_events (client_id, correlator, api, operation, plan,"
        " price, currency, status, at, msisdn, purpose, request_digest, party, response)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def record_unbilled(self, call: UnbilledCall) -> None:
        """Keep a call that was not billed but touched (or tried to touch) a subscriber."""
        self.db.execute(
            "INSERT INTO unbilled_calls (client_id, msisdn, api, operation, purpose, status, at,"
            " party) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call.client_id,
                call.msisdn,
                call.api,
                call.operation,
                call.purpose,
                call.status,
                call.at,
                call.party,
            ),
        )

    def about(self, msisdn: str) -> tuple[list[UsageEvent], list[UnbilledCall]]:
        """Every recorded call about ``msisdn``: billed events, then unbilled calls, by time."""
        billed = [
            _event(row)
            for row in self.db.all(
                "SELECT * FROM usage_events WHERE msisdn = ? ORDER BY at, correlator", (msisdn,)
            )
        ]
        unbilled = [
            UnbilledCall(
                r["client_id"],
                r["msisdn"],
                r["api"],
                r["operation"],
                r["purpose"],
                r["status"],
                r["at"],
                r["party"],
            )
            for r in self.db.all(
                "SELECT * FROM unbilled_calls WHERE msisdn = ? ORDER BY at, id", (msisdn,)
            )
        ]
        return billed, unbilled

    def record(self, event: UsageEvent, response: bytes = b"") -> bool:
        """Store the event (and the answer given) unless its key is known; True when new."""
        return self.db.execute(self._INSERT, (*_row(event), response)) == 1

    def record_many(
        self, events: list[tuple[UsageEvent, bytes, list[Effect]]]
    ) -> list[bool | Exception]:
        """Store several calls in one transaction (one commit): each call's held effects and
        its event together, in a savepoint of its own, so one call's failure (a conflicting
        write) undoes that call alone. True for a new event, False for a known key, or the
        error that undid the call."""
        outcomes: list[bool | Exception] = []
        with self.db.transaction():
            for event, response, effects in events:
                if not effects:  # one statement: SQLite undoes a failed one by itself
                    try:
                        outcomes.append(
                            self.db.execute(self._INSERT, (*_row(event), response)) == 1
                        )
                    except sqlite3.Error as error:
                        if not self.db.in_transaction:
                            raise  # SQLite undid the whole batch: as in the savepoint case
                        outcomes.append(error)
                    continue
                self.db.execute("SAVEPOINT call")
                try:
                    apply_effects(effects)
                    counted = self.db.execute(self._INSERT, (*_row(event), response)) == 1
                    if not counted:  # a key already taken: the call's writes go with it
                        self.db.execute("ROLLBACK TO call")
                except sqlite3.Error as error:
                    if not self.db.in_transaction:
                        # SQLite undid the whole transaction by itself (a full disk, an I/O
                        # error): the calls before this one are undone too, and the ones
                        # after would commit one by one outside it, so the batch fails whole
                        raise
                    self.db.execute("ROLLBACK TO call")
                    outcomes.append(error)
                else:
                    outcomes.append(counted)
                self.db.execute("RELEASE call")
        return outcomes

    def replay(self, client_id: str, correlator: str) -> StoredAnswer | None:
        """The billed call already made under this key, if any: with its answer while it is
        kept, without it once housekeeping dropped it past the replay window (the event, and
        so the key, stays: a call run under it again could not be billed)."""
        row = self.db.one(
            "SELECT status, response, operation, msisdn, request_digest FROM usage_events"
            " WHERE client_id = ? AND correlator = ?",
            (client_id, correlator),
        )
        if row is None:
            return None
        response = row["response"]
        return StoredAnswer(int(row["status"]), None if response is None else bytes(response),
                            row["operation"], row["msisdn"], row["request_digest"])

    def events(self, client_id: str | None = None, *, since: float | None = None,
               until: float | None = None) -> list[UsageEvent]:
        """The events (of ``client_id``), in call order; ``since``/``until`` keep those whose
        time is in ``[since, until)``: a month's invoice reads its month, not the ledger."""
        conditions: list[str] = []
        params: list[str | float] = []
        for condition, value in (("client_id = ?", client_id), ("at >= ?", since),
                                 ("at < ?", until)):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        sql = "SELECT * FROM usage_events"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        return [_event(row) for row in self.db.all(sql + " ORDER BY at, correlator", params)]

    def first_at(self) -> float | None:
        """When the oldest event was admitted (None for an empty ledger): where billing begins."""
        row = self.db.one("SELECT MIN(at) AS first FROM usage_events")
        return None if row is None or row["first"] is None else float(row["first"])

    def totals(self) -> dict[tuple[str, str], int]:
        """Billable calls per (client, api): what reconciliation compares with the clients."""
        rows = self.db.all(
            "SELECT client_id, api, COUNT(*) AS n FROM usage_events GROUP BY client_id, api"
        )
        return {(r["client_id"], r["api"]): int(r["n"]) for r in rows}

    def unpublished(self, limit: int = 500) -> list[UsageEvent]:
        rows = self.db.all(
            "SELECT * FROM usage_events WHERE published_at IS NULL ORDER BY at, rowid LIMIT ?",
            (limit,),
        )
        return [_event(row) for row in rows]

    def mark_published(self, events: list[UsageEvent], at: float) -> None:
        with self.db.transaction():
            for event in events:
                self.db.execute(
                    "UPDATE usage_events SET published_at = ?"
                    " WHERE client_id = ? AND correlator = ?",
                    (at, event.client_id, event.correlator),
                )


def _row(event: UsageEvent) -> tuple[object, ...]:
    """The INSERT's parameters (``dataclasses.astuple`` deep-copies: too slow per call)."""
    return (
        event.client_id,
        event.correlator,
        event.api,
        event.operation,
        event.plan,
        event.price,
        event.currency,
        event.status,
        event.at,
        event.msisdn,
        event.purpose,
        event.request_digest,
        event.party,
    )


def _event(row: sqlite3.Row) -> UsageEvent:
    return UsageEvent(
        client_id=row["client_id"],
        correlator=row["correlator"],
        api=row["api"],
        operation=row["operation"],
        plan=row["plan"],
        price=row["price"],
        currency=row["currency"],
        status=row["status"],
        at=row["at"],
        msisdn=row["msisdn"],
        purpose=row["purpose"],
        party=row["party"],
    )


LONG_COMMIT = 0.002
"""A group commit this long held the event loop for more than a few calls' worth of time."""


@dataclass
class CommitTiming:
    """What the group commits cost the event loop they run on: how many, how many events,
    the seconds spent, the slowest, and how many took long (a WAL checkpoint's fsyncs, when
    a commit runs one, make it ten times as long as the others)."""

    batches: int = 0
    events: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    long: int = 0
    """Batches of :data:`LONG_COMMIT` or more."""

    def add(self, events: int, seconds: float) -> None:
        self.batches += 1
        self.events += events
        self.seconds += seconds
        self.slowest = max(self.slowest, seconds)
        if seconds >= LONG_COMMIT:
            self.long += 1


class GroupCommit:
    """Batches the usage events of calls finishing together into one transaction.

    Each caller awaits its own event's commit, so a response still leaves only after its
    event is durable; what changes is that the calls answered in one turn of the event loop
    share one commit instead of paying one each.
    """

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self._pending: list[tuple[UsageEvent, bytes, list[Effect], asyncio.Future[bool]]] = []
        self.timing = CommitTiming()

    async def record(
        self, event: UsageEvent, response: bytes = b"", effects: list[Effect] | None = None
    ) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((event, response, effects or [], future))
        return await future

    def flush(self) -> None:
        """Commit whatever is waiting now (at shutdown, so no answered call loses its event)."""
        if self._pending:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:  # already flushed by :meth:`flush`
            return
        batch, self._pending = self._pending, []
        started = time.perf_counter()
        try:
            outcomes = self.ledger.record_many(
                [(event, body, effects) for event, body, effects, _ in batch]
            )
        except Exception as error:  # the database failed: every waiter learns it
            for *_, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        finally:
            self.timing.add(len(batch), time.perf_counter() - started)
        for (*_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
