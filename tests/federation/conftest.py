"""Fixtures: the default federation, a hand-driven clock, operators built fresh per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from federation.config import FederationConfig, default_federation
from federation.federation import Federation, quick_consent, start_federation
from operators.operator import Operator


class FakeClock:
    """Seconds that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        assert dt >= 0
        self.now += dt


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def federation() -> FederationConfig:
    return default_federation()


@pytest.fixture
def operators(federation: FederationConfig) -> Iterator[dict[str, Operator]]:
    """Every member operator of the default federation, in memory, with the configured ports."""
    from federation.portability import apply_ports

    built = {o.id: Operator.from_config(o) for o in federation.operators}
    apply_ports(federation.ports, federation, built)
    yield built
    for operator in built.values():
        operator.close()


@pytest.fixture
async def quick_federation(
    federation: FederationConfig, tmp_path: Path
) -> AsyncIterator[Federation]:
    """The default federation started in process, CIBA answering at once, no health probes."""
    started = await start_federation(quick_consent(federation), tmp_path, probes=False)
    yield started
    await started.stop()
