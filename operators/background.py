"""Ending background tasks: the one way every writer, monitor, probe loop and supervisor stops
the task it started."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished unwinding, so whatever its ``finally``
    blocks close is closed when this returns. Its cancellation is absorbed; another exception
    it ends with propagates. A stop that cancels the *caller* still raises, as it must."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
