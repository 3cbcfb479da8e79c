"""The operator's log of developers' milestones, the :class:`Activity` records analytics reads.

The portal, the token endpoint and the gateway note milestones as they happen; the log keeps
them, append-only, in the operator's database. Noting one is as cheap as the call statistics'
tally: :meth:`ActivityLog.record` appends to a list (under a lock: the portal notes sign-ups
from its password threads), and a worker thread writes the pending ones in one transaction
every ``interval`` seconds (and at stop; a failed write keeps them pending).

"First" milestones (``first_token`` per application, ``first_success`` per application and
API) are kept once, whoever notes them first: each carries a key the table holds UNIQUE
(NULL for every other kind), and the insert ignores a second one, so a restart or another
replica sharing the file noting the same milestone again changes nothing. A process also
remembers the firsts it has already noted, so repeats cost a set lookup, not a write.

A milestone noted without its developer (the token endpoint and the gateway know only the
client id) gets its owner from ``owner_of`` when it is written, off the event loop; a client no
portal application owns (registered over the admin API) keeps empty developer and
organisation ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from operators.storage import Database
from operators.types import Clock

from .batch_writer import BatchWriter
from .records import Activity, ActivityKind

__all__ = ["FIRST_KINDS", "ActivityLog", "OwnerOf", "once_key"]

FIRST_KINDS: frozenset[ActivityKind] = frozenset({"first_token", "first_success"})
"""Kinds kept once per application (``first_token``) or application and API."""

OwnerOf = Callable[[str], tuple[str, str] | None]
"""``client_id -> (developer_id, org_id)`` of the portal application, None when there is none."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics_activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    developer_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    detail TEXT NOT NULL,
    once_key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS analytics_activities_at ON analytics_activities (at);
"""

_INSERT = (
    "INSERT OR IGNORE INTO analytics_activities"
    " (at, kind, developer_id, org_id, client_id, api, detail, once_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, at, kind, developer_id, org_id, client_id, api, detail"


def once_key(activity: Activity) -> str | None:
    """The key that keeps a "first" milestone once; None for every other kind."""
    if activity.kind == "first_token":
        return f"first_token|{activity.client_id}"
    if activity.kind == "first_success":
        return f"first_success|{activity.client_id}|{activity.api}"
    return None


class ActivityLog(BatchWriter[list[Activity]]):
    """Developers' milestones, noted on the event loop and appended to the database in batches.

    ``clock`` dates the milestones noted through :meth:`note` (the operator's epoch clock).
    Writing is :class:`~operators.analytics.batch_writer.BatchWriter`'s (start, stop, flush).
    """

    noun = "activities"
    logger = logging.getLogger("ogsim.analytics")

    def __init__(
        self,
        db: Database,
        clock: Clock = time.time,
        *,
        interval: float = 2.0,
        owner_of: OwnerOf | None = None,
    ) -> None:
        super().__init__(interval)
        db.ensure_schema(SCHEMA)
        self.db = db
        self.clock = clock
        self.owner_of = owner_of
        self._pending: list[Activity] = []
        self._firsts: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        """Milestones are noted on the event loop and in the portal's password threads (a
        sign-up), and taken for writing on the loop: an append must not land in a batch
        already taken, nor a first be noted twice."""

    # -- noting ---------------------------------------------------------------------------

    def record(self, activity: Activity) -> None:
        """Keep one milestone (appended to the pending list; nothing is written here)."""
        with self._lock:
            if activity.kind in FIRST_KINDS:
                seen = (activity.kind, activity.client_id, activity.api)
                if seen in self._firsts:
                    return
                self._firsts.add(seen)
            self._pending.append(activity)

    def note(
        self,
        kind: ActivityKind,
        *,
        developer_id: str = "",
        org_id: str = "",
        client_id: str = "",
        api: str = "",
        detail: str = "",
    ) -> None:
        """:meth:`record` a milestone happening now."""
        self.record(Activity(self.clock(), kind, developer_id, org_id, client_id, api, detail))

    def first_token(self, client_id: str) -> None:
        """The token endpoint issued ``client_id`` a token (kept for the first one only)."""
        if ("first_token", client_id, "") not in self._firsts:
            self.note("first_token", client_id=client_id)

    def first_success(self, client_id: str, api: str) -> None:
        """``client_id`` got a 2xx from ``api`` (kept for the first one only)."""
        if ("first_success", client_id, api) not in self._firsts:
            self.note("first_success", client_id=client_id, api=api)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- writing --------------------------------------------------------------------------

    def _owned(self, activity: Activity) -> Activity:
        if activity.developer_id or not activity.client_id or self.owner_of is None:
            return activity
        owner = self.owner_of(activity.client_id)
        if owner is None:
            return activity
        return replace(activity, developer_id=owner[0], org_id=owner[1])

    def _write(self, batch: list[Activity]) -> None:
        """Append one batch in one transaction (all of it or none of it)."""
        rows = []
        for activity in map(self._owned, batch):
            rows.append(
                (
                    activity.at,
                    activity.kind,
                    activity.developer_id,
                    activity.org_id,
                    activity.client_id,
                    activity.api,
                    activity.detail,
                    once_key(activity),
                )
            )
        with self.db.transaction():
            for row in rows:
                self.db.execute(_INSERT, row)

    def _take(self) -> list[Activity]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def _put_back(self, batch: list[Activity]) -> None:
        with self._lock:
            self._pending[:0] = batch

    def _count(self, batch: list[Activity]) -> int:
        return len(batch)

    # -- reading --------------------------------------------------------------------------

    def read(
        self, since: float | None = None, until: float | None = None, *, after_id: int = 0
    ) -> list[Activity]:
        """The milestones written with ``since <= at < until`` (either bound open when None),
        in the order they were written; ``after_id`` skips those up to that row id."""
        return [activity for _, activity in self.read_rows(since, until, after_id=after_id)]

    def read_rows(
        self, since: float | None = None, until: float | None = None, *, after_id: int = 0
    ) -> list[tuple[int, Activity]]:
        """As :meth:`read`, each with its row id (the monitor follows the log by id)."""
        where: list[str] = ["id > ?"]
        params: list[object] = [after_id]
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM analytics_activities WHERE {' AND '.join(where)} ORDER BY id",
            params,
        )
        return [(int(row["id"]), _activity(row)) for row in rows]

    def developer_activities(self, developer_id: str) -> list[Activity]:
        """One developer's milestones, oldest first (a timeline page's rows)."""
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM analytics_activities WHERE developer_id = ? ORDER BY at, id",
            (developer_id,),
        )
        return [_activity(row) for row in rows]


def _activity(row: Any) -> Activity:
    return Activity(
        float(row["at"]),
        row["kind"],
        row["developer_id"],
        row["org_id"],
        row["client_id"],
        row["api"],
        row["detail"],
    )
