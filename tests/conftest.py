"""What every test shares: a key-encryption key for operators served on a database file.

``ogsim serve --storage FILE`` (and each party process) refuses to start without
``OGSIM_KEY_ENCRYPTION_KEY``, since the file keeps the operator's signing keys sealed at rest;
the suite sets one random key for the whole session, children included. A test that checks
the refusal removes it with ``monkeypatch.delenv``.

And a bound on every async test (:data:`HUNG_TEST_BOUND`), reporting where a hung one waits;
and a throwaway Debian ``redis-server`` on loopback for the shared-counter tests (``redis_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from federation.ports import free_port
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


REDIS_SERVER = "/usr/bin/redis-server"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Debian ``redis-server`` on loopback, its URL; skips where it is not installed.

    No persistence (``--save ''``, ``--appendonly no``), a free port, its own directory; stopped
    (SIGTERM, then SIGKILL) when the session ends. Tests share it, so each uses its own keys
    (a fresh ``prefix``) or flushes what it wrote.
    """
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip(f"{REDIS_SERVER} is absent: install Debian's redis-server (.ci/run does)")
    port = free_port()  # outside the ephemeral range: redis binds it only once it has started
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
         "no", "--dir", str(workdir), "--protected-mode", "yes", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10.0
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
