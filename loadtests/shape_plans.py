"""The plans behind the load shapes (:mod:`loadtests.shapes`): how many users at which
second, free of Locust so that tests need not import it (Locust monkey-patches on import).

``OGSIM_SHAPE`` names the plan; ``OGSIM_SHAPE_USERS`` and the other ``OGSIM_SHAPE_*``
variables read by each plan's ``from_env`` size it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TickResult = tuple[int, float] | None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    return float(value) if value not in (None, "") else default


class StepRampPlan:
    """``steps`` steps of ``users`` more users every ``step_seconds``, then stop."""

    PARAMETERS = ("users", "step_seconds", "steps", "spawn_rate")

    def __init__(
        self, users: int = 10, step_seconds: float = 30, steps: int = 5, spawn_rate: float = 5
    ) -> None:
        self.users, self.step_seconds, self.steps = users, step_seconds, steps
        self.spawn_rate = spawn_rate

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StepRampPlan:
        users = int(_number(env, "OGSIM_SHAPE_USERS", 10))
        return cls(
            users,
            _number(env, "OGSIM_SHAPE_STEP_SECONDS", 30),
            int(_number(env, "OGSIM_SHAPE_STEPS", 5)),
            _number(env, "OGSIM_SHAPE_SPAWN_RATE", max(1.0, users / 2)),
        )

    def at(self, elapsed: float) -> TickResult:
        step = int(elapsed // self.step_seconds)
        if step >= self.steps:
            return None
        return (step + 1) * self.users, self.spawn_rate


class SpikePlan:
    """``users`` users, then ``factor`` times as many at once for ``spike_seconds``, back down.

    The herd arrives in one second (spawn rate = the whole surge), as when a broadcast makes
    every client call at the same moment.
    """

    PARAMETERS = ("users", "factor", "before", "spike_seconds", "after")

    def __init__(
        self,
        users: int = 5,
        factor: int = 20,
        before: float = 30,
        spike_seconds: float = 60,
        after: float = 60,
    ) -> None:
        self.users, self.factor = users, factor
        self.before, self.spike_seconds, self.after = before, spike_seconds, after

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SpikePlan:
        return cls(
            int(_number(env, "OGSIM_SHAPE_USERS", 5)),
            int(_number(env, "OGSIM_SHAPE_SPIKE_FACTOR", 20)),
            _number(env, "OGSIM_SHAPE_BEFORE_SECONDS", 30),
            _number(env, "OGSIM_SHAPE_SPIKE_SECONDS", 60),
            _number(env, "OGSIM_SHAPE_AFTER_SECONDS", 60),
        )

    def at(self, elapsed: float) -> TickResult:
        peak = self.users * self.factor
        if elapsed < self.before:
            return self.users, float(self.users)
        if elapsed < self.before + self.spike_seconds:
            return peak, float(peak)
        if elapsed < self.before + self.spike_seconds + self.after:
            return self.users, float(peak)
        return None


class SoakPlan:
    """Ramp to ``users`` over ``ramp_seconds`` and hold them for ``hold_seconds``."""

    PARAMETERS = ("users", "ramp_seconds", "hold_seconds")

    def __init__(
        self, users: int = 20, ramp_seconds: float = 60, hold_seconds: float = 3600
    ) -> None:
        self.users, self.ramp_seconds, self.hold_seconds = users, ramp_seconds, hold_seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SoakPlan:
        return cls(
            int(_number(env, "OGSIM_SHAPE_USERS", 20)),
            _number(env, "OGSIM_SHAPE_RAMP_SECONDS", 60),
            _number(env, "OGSIM_SHAPE_HOLD_SECONDS", 3600),
        )

    def at(self, elapsed: float) -> TickResult:
        if elapsed >= self.ramp_seconds + self.hold_seconds:
            return None
        return self.users, max(1.0, self.users / max(self.ramp_seconds, 1.0))


PLANS: dict[str, type[StepRampPlan] | type[SpikePlan] | type[SoakPlan]] = {
    "step": StepRampPlan,
    "spike": SpikePlan,
    "soak": SoakPlan,
}


def plan_from_env(
    env: Mapping[str, str] = os.environ,
) -> StepRampPlan | SpikePlan | SoakPlan | None:
    """The plan ``OGSIM_SHAPE`` names, sized from the environment; None when unset."""
    name = env.get("OGSIM_SHAPE", "").strip().lower()
    if not name:
        return None
    if name not in PLANS:
        raise ValueError(f"OGSIM_SHAPE={name!r}: one of {', '.join(PLANS)}")
    return PLANS[name].from_env(env)
