"""An asyncio event loop on virtual time, to run the live code beside SimPy on the same clock.

When the loop has nothing ready it would sleep until its next timer; here it jumps its clock
there instead. ``asyncio.sleep``, ``asyncio.timeout`` and ``wait_for`` then take no wall time
and end at the very instants SimPy would give, so the live asyncio realisations and drivers
can be compared with the SimPy ones call by call. A loop with nothing scheduled and nothing
ready is a deadlock, and raises instead of sleeping forever.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_in_virtual_time"]

T = TypeVar("T")


class _JumpingSelector(selectors.SelectSelector):
    """Polls without blocking; a wait for a timer moves the loop's clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("virtual-time loop deadlocked: nothing ready, no timer")
            self.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` starts at 0 and jumps from timer to timer."""

    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now


def run_in_virtual_time(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
