"""Load shapes: a step ramp, a spike (the thundering herd) and a soak.

The locustfile exports one of them when ``OGSIM_SHAPE`` names it (``step``, ``spike`` or
``soak``; ``ogsim loadtest --shape`` sets it), since Locust uses whichever shape class a
locustfile defines. Their sizes come from ``OGSIM_SHAPE_USERS`` (the base number of users)
and the other ``OGSIM_SHAPE_*`` variables below, so one file serves a laptop and a rig.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from locust import LoadTestShape

TickResult = tuple[int, float] | None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    return float(value) if value not in (None, "") else default


class StepRamp(LoadTestShape):
    """``steps`` steps of ``users`` more users every ``step_seconds``, then stop."""

    PARAMETERS = ("users", "step_seconds", "steps", "spawn_rate")

    def __init__(
        self, users: int = 10, step_seconds: float = 30, steps: int = 5, spawn_rate: float = 5
    ) -> None:
        super().__init__()
        self.users, self.step_seconds, self.steps = users, step_seconds, steps
        self.spawn_rate = spawn_rate

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StepRamp:
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

    def tick(self) -> TickResult:
        return self.at(self.get_run_time())


class Spike(LoadTestShape):
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
        super().__init__()
        self.users, self.factor = users, factor
        self.before, self.spike_seconds, self.after = before, spike_seconds, after

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Spike:
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

    def tick(self) -> TickResult:
        return self.at(self.get_run_time())


class Soak(LoadTestShape):
    """Ramp to ``users`` over ``ramp_seconds`` and hold them for ``hold_seconds``."""

    PARAMETERS = ("users", "ramp_seconds", "hold_seconds")

    def __init__(
        self, users: int = 20, ramp_seconds: float = 60, hold_seconds: float = 3600
    ) -> None:
        super().__init__()
        self.users, self.ramp_seconds, self.hold_seconds = users, ramp_seconds, hold_seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Soak:
        return cls(
            int(_number(env, "OGSIM_SHAPE_USERS", 20)),
            _number(env, "OGSIM_SHAPE_RAMP_SECONDS", 60),
            _number(env, "OGSIM_SHAPE_HOLD_SECONDS", 3600),
        )

    def at(self, elapsed: float) -> TickResult:
        if elapsed >= self.ramp_seconds + self.hold_seconds:
            return None
        return self.users, max(1.0, self.users / max(self.ramp_seconds, 1.0))

    def tick(self) -> TickResult:
        return self.at(self.get_run_time())


SHAPES: dict[str, type[StepRamp] | type[Spike] | type[Soak]] = {
    "step": StepRamp,
    "spike": Spike,
    "soak": Soak,
}


def shape_from_env(env: Mapping[str, str] = os.environ) -> type[LoadTestShape] | None:
    """The shape class ``OGSIM_SHAPE`` names, configured from the environment; None if unset."""
    name = env.get("OGSIM_SHAPE", "").strip().lower()
    if not name:
        return None
    if name not in SHAPES:
        raise ValueError(f"OGSIM_SHAPE={name!r}: one of {', '.join(SHAPES)}")
    base = SHAPES[name]
    configured = base.from_env(env)
    params = {k: v for k, v in vars(configured).items() if k in base.PARAMETERS}

    class Selected(base):  # type: ignore[valid-type,misc]
        __doc__ = base.__doc__

        def __init__(self) -> None:
            base.__init__(self, **params)

    Selected.__name__ = Selected.__qualname__ = base.__name__
    return Selected
