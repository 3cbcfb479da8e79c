"""What every test shares: a key-encryption key for operators served on a database file.

``ogsim serve --storage FILE`` (and each party process) refuses to start without
``OGSIM_KEY_ENCRYPTION_KEY``, since the file keeps the operator's signing keys sealed at rest;
the suite sets one random key for the whole session, children included. A test that checks
the refusal removes it with ``monkeypatch.delenv``.

And a bound on every async test (:data:`HUNG_TEST_BOUND`), reporting where a hung one waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from operators.identity import KeySealing

os.environ.setdefault(KeySealing.ENV, KeySealing.generate())


HUNG_TEST_BOUND = float(os.environ.get("OGSIM_HUNG_TEST_BOUND", "600"))
"""Seconds an async test may wait before it is cancelled and reported where it was waiting.

Far beyond any test's need on a loaded machine: it turns a hang (an await that nothing will
ever complete) into a failure whose traceback names the await, instead of a CI job that runs
until its own limit and says nothing."""


def _bounded(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.ensure_future(test(*args, **kwargs))
        done, _ = await asyncio.wait({task}, timeout=HUNG_TEST_BOUND)
        if task in done:
            return task.result()
        where = _awaiting(task)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise TimeoutError(
            f"{test.__name__} still waiting after {HUNG_TEST_BOUND:.0f} s at:\n{where}"
        )

    return bounded


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where the test's coroutine chain is suspended, innermost last."""
    lines: list[str] = []
    frame_owner: Any = task.get_coro()
    while frame_owner is not None:
        frame = getattr(frame_owner, "cr_frame", None) or getattr(frame_owner, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame_owner = getattr(frame_owner, "cr_await", None) or getattr(
            frame_owner, "gi_yieldfrom", None)
    return "\n".join(lines) or "(no frame)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj)
