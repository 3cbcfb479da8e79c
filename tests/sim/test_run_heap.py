"""A run keeps the cycle collector's full collections off the heap it started with.

The benchmark read the protected thundering herd at 0.24 x the M/M/1 when it ran after the
unprotected variant, and 0.29 x alone: the earlier world's cyclic garbage and the built world
were walked by every full collection of the later run. A run freezes the heap it finds and
gives it back when it ends.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sim import engine
from sim.engine import World
from sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml"


@pytest.fixture
def world() -> World:
    """The shipped baseline federation, for a few seconds."""
    (scenario,) = load_scenario(SCENARIO, duration=4)
    return World(scenario)


@pytest.fixture
def thawed() -> Iterator[None]:
    """No freeze during the test; a heap frozen before it (an operator's settled heap,
    earlier in this worker) is frozen again after it, so later tests find it as they left it."""
    frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    yield
    gc.unfreeze()
    if frozen:
        gc.collect()
        gc.freeze()


def test_the_heap_built_before_the_run_is_frozen_during_it_and_given_back(
    world: World, thawed: None
) -> None:
    frozen_during: list[int] = []

    world.run(lambda _: frozen_during.append(gc.get_freeze_count()), slices=4)

    assert frozen_during and min(frozen_during) > 0
    assert gc.get_freeze_count() == 0


def test_a_freeze_the_process_made_itself_is_left_as_it_was(world: World, thawed: None) -> None:
    gc.freeze()

    world.run()

    # Still frozen: the run must not thaw what it did not freeze (objects freed during the
    # run leave the count, so the count itself may shrink).
    assert gc.get_freeze_count() > 0


def test_the_collector_settings_are_restored_after_a_failed_run(world: World, thawed: None) -> None:
    threshold = gc.get_threshold()

    def fail(_: float) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        world.run(fail, slices=2)

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


class _Garbage:
    """A cycle the reference counts alone never free."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_left_before_the_run_is_freed_rather_than_frozen(
    world: World, thawed: None
) -> None:
    garbage = _Garbage()
    freed = weakref.ref(garbage)
    del garbage

    assert _alive_during_run(world, freed) == [False, False]


def _alive_during_run(world: World, garbage: Callable[[], object]) -> list[bool]:
    """Whether ``garbage`` was still in memory at each slice of a run of ``world``; no
    collection but the run's own may free it before the run starts."""
    alive_during: list[bool] = []
    gc.disable()
    try:
        world.run(lambda _: alive_during.append(garbage() is not None), slices=2)
    finally:
        gc.enable()
    return alive_during


def _collections_at_start(world: World) -> list[int]:
    """The generations the collector walked between the run's start and its first slice."""
    seen: list[int] = []
    started = [False]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not started[0]:
            seen.append(info["generation"])

    def first_slice(_: float) -> None:
        started[0] = True

    gc.callbacks.append(observe)
    try:
        world.run(first_slice, slices=2)
    finally:
        gc.callbacks.remove(observe)
    return seen


def test_an_earlier_worlds_garbage_is_freed_before_the_run(thawed: None) -> None:
    (scenario,) = load_scenario(SCENARIO, duration=2)
    earlier = World(scenario)
    earlier.run()
    gc.collect()  # the earlier world is old now, where only a full collection reaches it
    freed = weakref.ref(earlier.env)  # a world compiled by mypyc takes no weak reference
    later = World(scenario)
    del earlier

    assert _alive_during_run(later, freed) == [False, False]


def test_a_world_alone_in_memory_is_not_made_to_walk_the_whole_heap(
    thawed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Alone by construction: a world an earlier test left in this worker is not counted.
    monkeypatch.setattr(engine, "_worlds", weakref.WeakSet())
    (scenario,) = load_scenario(SCENARIO, duration=2)
    world = World(scenario)

    walked = _collections_at_start(world)

    # The young generations are collected, for garbage dropped since the build; the old
    # one, over a hundred thousand live objects, only when another world may be garbage.
    assert walked and max(walked) < 2
