"""Answers a backend built from a subscriber record, handed out again while nothing changed.

A backend's record (the HLR's, the KYC register's) is a pure function of the subscriber record
(frozen) and the operator's configuration. The simulation's subscriber base memoises its
subscribers, so it hands out the very same object until a change replaces it: then the record
built from it last time is the answer again, and building it per call (a dataclass of eight
to fifteen fields) is wasted work. Live, each lookup builds a new subscriber: every call
misses and the record is built as before. The subscriber is held weakly, so the memo keeps
no subscriber alive and a dead one never matches.
"""

from __future__ import annotations

import weakref
from typing import Any, Generic, TypeVar

__all__ = ["RecordMemo"]

R = TypeVar("R")


class RecordMemo(Generic[R]):
    """Per number: the subscriber object and the context a record was built from, and it."""

    __slots__ = ("_bound", "_entries")

    def __init__(self, bound: int = 65_536) -> None:
        self._bound = bound
        self._entries: dict[str, tuple[weakref.ref[Any], object, R]] = {}

    def get(self, number: str, subscriber: object, context: object = None) -> R | None:
        """The record built from this very ``subscriber`` and ``context``, if there is one."""
        seen = self._entries.get(number)
        if seen is not None and seen[0]() is subscriber and seen[1] is context:
            return seen[2]
        return None

    def put(self, number: str, subscriber: object, context: object, record: R) -> R:
        """Remember ``record`` as built from ``subscriber`` and ``context``; returns it."""
        if len(self._entries) >= self._bound:
            self._entries.clear()
        self._entries[number] = (weakref.ref(subscriber), context, record)
        return record
