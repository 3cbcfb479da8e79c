"""Virtual time only: the SimPy world, its scenarios and the research tools; and the CLI.

``sim.tiers`` realises an operator and the aggregator in virtual time (the operators' network
functions in ``sim.tiers.network_function``); ``sim.scenario`` and ``sim.engine`` run
scenario files into :class:`RunResult` records (``sim.results``), judged by
``sim.expectations``; ``sim.replications``, ``sim.sweep``, ``sim.report`` and ``sim.compare``
are the research tools; ``sim.queueing`` and ``sim.validate`` hold the theory. ``sim``
imports ``operators`` and ``federation`` (neither imports ``sim``) and not ``loadtests``;
``sim.cli``, the ``ogsim`` command, is the one part that imports every package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators import lazy_face

if TYPE_CHECKING:
    from sim.engine import World, run_scenario
    from sim.replications import (
        Interval,
        RunDigest,
        VariantSummary,
        execute,
        interval,
        plan_replications,
        summarise,
    )
    from sim.results import RunResult, StationLittle, Verdict
    from sim.scenario import Scenario, load_scenario, scenario_json_schema
    from sim.student_t import student_t_quantile
    from sim.validate import ValidationRow, run_validation

__all__ = [
    "Interval",
    "RunDigest",
    "RunResult",
    "Scenario",
    "StationLittle",
    "ValidationRow",
    "VariantSummary",
    "Verdict",
    "World",
    "execute",
    "interval",
    "load_scenario",
    "plan_replications",
    "run_scenario",
    "run_validation",
    "scenario_json_schema",
    "student_t_quantile",
    "summarise",
]

_HOMES = {
    "World": "sim.engine",
    "run_scenario": "sim.engine",
    "Interval": "sim.replications",
    "RunDigest": "sim.replications",
    "VariantSummary": "sim.replications",
    "execute": "sim.replications",
    "interval": "sim.replications",
    "plan_replications": "sim.replications",
    "summarise": "sim.replications",
    "RunResult": "sim.results",
    "StationLittle": "sim.results",
    "Verdict": "sim.results",
    "Scenario": "sim.scenario",
    "load_scenario": "sim.scenario",
    "scenario_json_schema": "sim.scenario",
    "student_t_quantile": "sim.student_t",
    "ValidationRow": "sim.validate",
    "run_validation": "sim.validate",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
