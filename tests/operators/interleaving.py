"""Deterministic interleaving of two replicas' operations on one database file.

Replicas of a gateway or identity server are separate processes over one SQLite file. A race
between them is an operation of one running between two statements of another's; these
helpers make that happen at a chosen statement, without threads or timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operators.storage import Database

STATEMENTS = frozenset({"one", "all", "execute", "insert", "returning"})
"""The :class:`Database` methods that run a statement."""


class Interleaved:
    """A :class:`Database` that runs ``between`` once, right after its ``after``-th statement
    (1: the first) of the operation under test: another replica's whole operation, say."""

    def __init__(self, db: Database, between: Callable[[], object], *, after: int = 1) -> None:
        self._db = db
        self._between = between
        self._left = after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._db, name)
        if name not in STATEMENTS:
            return attribute

        def statement(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            self._left -= 1
            if self._left == 0:
                self._between()
            return result

        return statement
