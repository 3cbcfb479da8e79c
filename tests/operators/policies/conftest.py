"""A hand-driven clock, so every policy is tested in virtual time like the SimPy model runs it."""

from __future__ import annotations

import pytest


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        """Move time forward by ``dt`` seconds."""
        assert dt >= 0, "time does not go backwards"
        self.now += dt


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
