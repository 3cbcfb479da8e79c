"""Load shapes: a step ramp, a spike (the thundering herd) and a soak.

The locustfile exports one of them when ``OGSIM_SHAPE`` names it (``step``, ``spike`` or
``soak``; ``ogsim loadtest --shape`` sets it), since Locust uses whichever shape class a
locustfile defines. Their sizes come from ``OGSIM_SHAPE_USERS`` (the base number of users)
and the other ``OGSIM_SHAPE_*`` variables of :mod:`loadtests.shape_plans`, so one file
serves a laptop and a rig.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from locust import LoadTestShape

from .shape_plans import SoakPlan, SpikePlan, StepRampPlan, TickResult, plan_from_env


class _PlannedShape(LoadTestShape):
    abstract = True
    plan: StepRampPlan | SpikePlan | SoakPlan

    def tick(self) -> TickResult:
        return self.plan.at(self.get_run_time())


def shape_from_env(env: Mapping[str, str] = os.environ) -> type[LoadTestShape] | None:
    """A shape class following the plan ``OGSIM_SHAPE`` names; None when unset."""
    plan = plan_from_env(env)
    if plan is None:
        return None
    name = type(plan).__name__.removesuffix("Plan")
    doc = type(plan).__doc__
    return type(name, (_PlannedShape,), {"plan": plan, "__doc__": doc, "abstract": False})
