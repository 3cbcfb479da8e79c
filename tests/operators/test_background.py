"""Ending a background task: cancelled, unwound, its own failure not swallowed."""

from __future__ import annotations

import asyncio

import pytest

from operators import cancel_and_wait


async def test_the_task_has_unwound_when_cancel_and_wait_returns() -> None:
    closed: list[str] = []
    started = asyncio.Event()

    async def loop() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # unwinding that itself awaits
            closed.append("closed")

    task = asyncio.get_running_loop().create_task(loop())
    await started.wait()
    await cancel_and_wait(task)
    assert closed == ["closed"]
    assert task.cancelled()


async def test_a_failure_while_unwinding_propagates_and_none_is_nothing() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("flush failed")

    task = asyncio.get_running_loop().create_task(loop())
    await started.wait()
    with pytest.raises(RuntimeError, match="flush failed"):
        await cancel_and_wait(task)
    await cancel_and_wait(None)
