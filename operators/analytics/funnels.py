"""Funnels: how many developers pass each ordered step within a conversion window.

The window runs from the developer's FIRST step; step ``k`` counts when its first time is at
or after step ``k - 1``'s and within the window (and not after ``now``). A developer who
reached step ``k`` and not ``k + 1`` is *stuck* at ``k`` once the window has elapsed, and *in
progress* while it has not (so a fresh sign-up is never counted as a failure).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .records import ACTIVITY_KINDS
from .timeline import DeveloperInfo, step_key

__all__ = ["FunnelReport", "FunnelStep", "StepResult", "funnel"]


@dataclass(frozen=True)
class FunnelStep:
    """A milestone kind (e.g. ``"first_success"``), optionally of one API."""

    kind: str
    api: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ACTIVITY_KINDS:
            raise ValueError(
                f"funnel step kind {self.kind!r} is not one of {', '.join(ACTIVITY_KINDS)}"
            )

    @property
    def name(self) -> str:
        return step_key(self.kind, self.api)


@dataclass(frozen=True)
class StepResult:
    name: str
    entered: int
    """Developers who reached this step (in order, within the window)."""
    conversion: float | None
    """Share of the previous step's developers who reached this one (None: none to share)."""
    overall: float | None
    """Share of the first step's developers who reached this one."""


@dataclass(frozen=True)
class FunnelReport:
    steps: tuple[StepResult, ...]
    window: float
    stuck: dict[str, list[str]] = field(default_factory=dict)
    """Per step (but the last), developers who reached it and not the next within the
    window, once the window has elapsed."""
    in_progress: dict[str, list[str]] = field(default_factory=dict)
    """Per step (but the last), developers who are there and whose window is still open."""


def funnel(
    developers: Iterable[DeveloperInfo], steps: Sequence[FunnelStep], *, window: float, now: float
) -> FunnelReport:
    if not steps:
        raise ValueError("a funnel needs at least one step")
    if not window > 0:
        raise ValueError(f"window must be > 0 seconds (it is {window!r})")
    names = [s.name for s in steps]
    entered = [0] * len(steps)
    stuck: dict[str, list[str]] = {name: [] for name in names[:-1]}
    waiting: dict[str, list[str]] = {name: [] for name in names[:-1]}
    for developer in sorted(developers, key=lambda d: d.developer_id):
        reached = _reached(developer, names, window, now)
        for k in range(reached):
            entered[k] += 1
        if 0 < reached < len(steps):
            start = developer.firsts[names[0]]
            target = stuck if now >= start + window else waiting
            target[names[reached - 1]].append(developer.developer_id)
    results = tuple(
        StepResult(
            name,
            entered[k],
            _share(entered[k], entered[k - 1] if k else entered[0]),
            _share(entered[k], entered[0]),
        )
        for k, name in enumerate(names)
    )
    return FunnelReport(results, window, stuck, waiting)


def _reached(developer: DeveloperInfo, names: Sequence[str], window: float, now: float) -> int:
    """How many steps, from the first, the developer passed in order within the window."""
    start = developer.firsts.get(names[0])
    if start is None or start > now:
        return 0
    previous = start
    for k, name in enumerate(names[1:], start=1):
        at = developer.firsts.get(name)
        if at is None or at < previous or at > start + window or at > now:
            return k
        previous = at
    return len(names)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
