"""The operator's own SQLite database: one connection, explicit transactions, durable on commit."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

_ROLLBACK = re.compile(r"^\s*ROLLBACK\b", re.IGNORECASE)
_WRITE = re.compile(
    r"^\s*(?:INSERT|UPDATE|DELETE|REPLACE)\s+(?:OR\s+\w+\s+)?(?:INTO\s+|FROM\s+)?(\w+)",
    re.IGNORECASE,
)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

VERSIONS_TABLE = "ogsim_table_versions"
"""One row per watched table of a database file, its version bumped by triggers on every
write from any connection: what :meth:`Database.version` compares across connections."""

Effect = tuple["Database", str, tuple[Any, ...]]
"""A write a call makes, held back to commit with the call's usage event."""

_call_effects: ContextVar[list[Effect] | None] = ContextVar("ogsim_call_effects", default=None)


class _HeldEffects:
    """The context of :func:`held_effects`: a class, not a generator, as every call enters it."""

    __slots__ = ("effects", "token")

    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.token: Token[list[Effect] | None] | None = None

    def __enter__(self) -> list[Effect]:
        self.token = _call_effects.set(self.effects)
        return self.effects

    def __exit__(self, *_: object) -> None:
        if self.token is not None:
            _call_effects.reset(self.token)


def held_effects() -> AbstractContextManager[list[Effect]]:
    """Hold the writes made through :meth:`Database.effect` in this context (one API call)."""
    return _HeldEffects()


_writes = [0]
"""Statements run in this process that may have changed a database (through any handle):
a stamp remembered for the rest of an event-loop turn is trusted only while this stands."""


def _wrote() -> None:
    _writes[0] += 1


def apply_effects(effects: list[Effect]) -> None:
    """Run held writes now (for a call whose answer is not metered)."""
    for db, sql, params in effects:
        db.execute(sql, params)


class Database:
    """A thread-safe SQLite handle; each store declares its own tables through ``ensure_schema``.

    One connection guarded by a lock keeps ``:memory:`` databases whole and serialises
    writers, which is what SQLite does anyway; file databases use WAL so readers in other
    processes (``ogsim reconcile``) never block the operator.
    """

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        self._table_versions: dict[str, int] = {}
        self._turn: tuple[asyncio.AbstractEventLoop, int, int] | None = None
        """``(loop, writes, data_version)``: the other connections' stamp read this turn."""
        self._watched: set[str] = set()
        """Tables whose writes by any connection bump their row in :data:`VERSIONS_TABLE`."""
        self._shared: tuple[int, dict[str, int]] = (-1, {})
        """``(data_version, versions)``: that table as read when ``data_version`` was so."""
        self._schema: int | None = None
        """The schema's version when the triggers were last known to be in place."""
        self.committed: Callable[[], None] | None = None
        """Called after each commit on this connection, the lock still held (the WAL
        checkpointer counts them, so that it needs no timer)."""
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE}"
                " (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        self._conn.execute("PRAGMA foreign_keys=ON")

    @classmethod
    def snapshot_of(cls, path: str) -> Database:
        """An in-memory copy of the database file at ``path``, read without a write or a
        write lock on it: what a report on a live operator's file works on (the stores'
        schema steps then run on the copy). The copy is whole; a report reading every row
        would hold them all anyway."""
        copy = cls()
        source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            with copy._lock:
                source.backup(copy._conn)
        finally:
            source.close()
        return copy

    def ensure_schema(self, ddl: str) -> None:
        with self._lock:
            self._conn.executescript(ddl)
            _wrote()

    def ensure_column(self, table: str, column: str, ddl: str) -> None:
        """Add ``column`` (declared by ``ddl``) to a ``table`` written before it existed; a
        data centre sharing the file may add it first."""
        if column in {row["name"] for row in self.all(f"PRAGMA table_info({table})")}:
            return
        try:
            self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):
                raise

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """All statements inside commit together or not at all; nesting joins the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._undo()
                raise
            self._depth -= 1
            if outer:
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._undo()
                    raise
                _wrote()
                hook = self.committed  # read once: a dying checkpointer may clear it
                if hook is not None:
                    hook()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open: False inside :meth:`transaction` once SQLite has
        undone it by itself (a full disk, an I/O error, ``INSERT OR ROLLBACK``)."""
        return self._conn.in_transaction

    def _undo(self) -> None:
        """Roll back what SQLite has not undone already, and move the stamps either way."""
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._rolled_back()

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """Run one statement; returns the number of rows changed."""
        with self._lock:
            try:
                changed = self._conn.execute(sql, params).rowcount
            except sqlite3.Error:
                self._check_undone()
                raise
            self._note_write(sql)
            return changed

    def returning(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[sqlite3.Row]:
        """Run one writing statement with a ``RETURNING`` clause; the rows it changed.

        What lets a store check and change a row in one statement, so that another process
        sharing the file cannot act between the check and the change (a single-use secret
        spent twice, a try beyond the limit). Every row is fetched before the lock is let go:
        outside a transaction SQLite commits the statement only once it has run to its end.
        """
        with self._lock:
            try:
                rows = list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error:
                self._check_undone()
                raise
            self._note_write(sql)
            return rows

    def effect(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """A write that is an API call's effect: held while a gateway meters the call (so it
        commits in the same transaction as the usage event), run at once otherwise."""
        held = _call_effects.get()
        if held is None:
            self.execute(sql, params)
        else:
            held.append((self, sql, params))

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; returns the new row id."""
        with self._lock:
            try:
                row_id = self._conn.execute(sql, params).lastrowid
            except sqlite3.Error:
                self._check_undone()
                raise
            self._note_write(sql)
            return int(row_id or 0)

    def _check_undone(self) -> None:
        """After a failed statement inside :meth:`transaction`: if SQLite undid the whole
        transaction by itself, what was read since its first write never was."""
        if self._depth and not self._conn.in_transaction:
            self._rolled_back()

    def _note_write(self, sql: str) -> None:
        _wrote()  # a COMMIT or RELEASE too: what another handle here reads may have moved
        match = _WRITE.match(sql)
        if match is not None:
            table = match.group(1).lower()
            self._table_versions[table] = self._table_versions.get(table, 0) + 1
        elif _ROLLBACK.match(sql) is not None:
            self._rolled_back()
        hook = self.committed
        if self._depth == 0 and hook is not None:
            hook()  # a statement on its own, or a COMMIT written out

    def _rolled_back(self) -> None:
        """A transaction or savepoint was undone. A read between its writes and the undo saw
        rows that never were, under a stamp that counted those writes: each table this handle
        wrote gets a new stamp, and the shared versions (which the undone triggers bumped,
        if they were read meanwhile) are read again."""
        for table in self._table_versions:
            self._table_versions[table] += 1
        self._shared = (-1, {})
        _wrote()

    def version(self, *tables: str) -> tuple[int, ...]:
        """A stamp that changes whenever one of ``tables`` may have changed.

        Writes through this handle bump a per-table counter. Writes through other
        connections (another data centre's replica or another process sharing the file) bump
        the table's row in :data:`VERSIONS_TABLE`, kept by triggers this handle installs on
        the tables it is asked about; that table is read again only when ``PRAGMA
        data_version`` says another connection committed. Before, any such commit moved
        every stamp: with two active-active data centres over one file, each call's usage
        event emptied the other site's token, subscriber and plan caches, so nearly every
        call read them all again. Read caches compare stamps, so they never serve a row that
        a revocation has since changed.

        On an event loop's thread, ``data_version`` is read once per turn of the loop and
        reused until the turn ends or any handle in this process writes: the several caches
        one call consults (token, subscriber, plan) each asked it, ~10 µs a time, about 8 %
        of the gateway's time. Another process's commit is then seen from the next turn, the
        one in which a request sent after it can first be read, as if it had landed a few
        microseconds later; a write in this process is seen at once, as before.
        """
        local = [self._table_versions.get(t, 0) for t in tables]
        if self.path == ":memory:":  # one connection: its own counters are the whole story
            return (0, *local)
        watched = self._watched.issuperset(tables) or self._watch(tables)
        external = self._external()
        if not watched:
            return (-1 - external, *local)  # not watched yet: any commit elsewhere counts
        if self._shared[0] != external:
            self._shared = (external, self._read_shared())
            schema = self._shared[1][""]
            if schema != self._schema:
                # a table dropped, renamed or made again may have lost its triggers: they
                # are checked again at the next ask (the schema's version is part of the
                # stamp, so nothing read before is trusted meanwhile)
                self._watched.clear()
                self._schema = schema
        shared = self._shared[1]
        return (shared[""] + sum(shared.get(t, 0) for t in tables), *local)

    def _watch(self, tables: Sequence[str]) -> bool:
        """Install the version triggers on ``tables`` (once per handle; the file keeps them
        for every connection). False inside a transaction, which could roll them back, or
        when a table does not exist (now): the caller's own read will say so."""
        with self._lock:
            if self._conn.in_transaction:
                return False
            for table in tables:
                if table in self._watched:
                    continue
                if _NAME.fullmatch(table) is None:
                    raise ValueError(f"not a table name: {table!r}")
                try:
                    for event in ("INSERT", "UPDATE", "DELETE"):
                        self._install(table, event)
                except sqlite3.OperationalError:
                    return False
                self._watched.add(table)
            if self._schema is None:
                self._schema = int(self._conn.execute("PRAGMA schema_version").fetchone()[0])
            return True

    def _install(self, table: str, event: str) -> None:
        """One trigger, made again when a rename left it on another table (a table renamed
        away takes its triggers along; the one made under the old name would have none)."""
        name = f"{VERSIONS_TABLE}_{table}_{event.lower()}"
        row = self._conn.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ?", (name,)
        ).fetchone()
        if row is not None and row[0] == table:
            return
        _wrote()
        if row is not None:
            self._conn.execute(f"DROP TRIGGER {name}")
        self._conn.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN"
            f" INSERT INTO {VERSIONS_TABLE} (name, version) VALUES ('{table}', 1)"
            " ON CONFLICT (name) DO UPDATE SET version = version + 1; END"
        )

    def _read_shared(self) -> dict[str, int]:
        """Each watched table's version, and the schema's under ``""``: a table renamed,
        dropped or made again by another connection moves every stamp."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT name, version FROM {VERSIONS_TABLE}"
                " UNION ALL SELECT '', schema_version FROM pragma_schema_version()"
            ).fetchall()
        return {name: version for name, version in rows}

    def _external(self) -> int:
        """``PRAGMA data_version``: what other connections committed (0 for ``:memory:``)."""
        if self.path == ":memory:":
            return 0
        loop = asyncio._get_running_loop()
        turn = self._turn
        if loop is not None and turn is not None and turn[0] is loop and turn[1] == _writes[0]:
            return turn[2]
        # the write count before the read: a write by another thread while the PRAGMA runs
        # then leaves the stamp unused, instead of pairing an old version with a new count
        writes = _writes[0]
        with self._lock:
            value = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if loop is not None:
            if turn is None or turn[0] is not loop:
                loop.call_soon(self._end_turn)
            self._turn = (loop, writes, value)
        return value

    def _end_turn(self) -> None:
        self._turn = None

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def set_autocheckpoint(self, pages: int) -> int:
        """Let this connection's commits checkpoint the WAL once it holds ``pages`` pages
        (0: never); the threshold it had before. A
        :class:`~operators.wal_checkpointer.WalCheckpointer` raises it while it runs."""
        if self.path == ":memory:":
            return pages
        with self._lock:
            before = int(self._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            self._conn.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
            return before

    def rows_written(self) -> int:
        """Rows this connection has inserted, updated or deleted since it opened (triggers'
        too; a 32-bit count that wraps). Read without the lock, so a thread asking (the WAL
        checkpointer) never waits for a commit to end: SQLite reads its counter without a
        mutex, so a read during another thread's statement may be a few rows stale, which a
        threshold of hundreds of rows does not mind."""
        return self._conn.total_changes

    def close(self) -> None:
        with self._lock:
            self._conn.close()
