"""Run CAMARA's own acceptance scenarios (``.feature`` files) against any CAMARA gateway.

The engine reads the official definitions at run time (never copies them), builds each request
from the API's YAML and the scenario's steps, and checks the answers against the same YAML.
What an implementation must provide (tokens, test numbers, fault switches) is the
:class:`Target`; ogsim's own operator provides all of it, another implementation provides what
it can and the rest is skipped with a reason.

This face imports nothing of ogsim's operator: the runner is useful against any
implementation. ogsim's own operator as an in-process target is
:mod:`loadtests.conformance.ogsim_operator`, imported only by those who want it (the
``ogsim conformance`` command, through ``loadtests.in_process_target``, and the tests).
"""

from .openapi import ApiSpec, Operation, load_spec
from .runner import (
    ConformanceReport,
    Scenario,
    ScenarioResult,
    available_apis,
    load_scenarios,
    run_conformance,
)
from .steps import StepLibrary, default_library
from .target import (
    AdminEnvironment,
    CommandTokens,
    Environment,
    Target,
    TokenNeed,
    TokenSource,
    Unsupported,
)
from .world import StepFailed, World

__all__ = [
    "AdminEnvironment",
    "ApiSpec",
    "CommandTokens",
    "ConformanceReport",
    "Environment",
    "Operation",
    "Scenario",
    "ScenarioResult",
    "StepFailed",
    "StepLibrary",
    "Target",
    "TokenNeed",
    "TokenSource",
    "Unsupported",
    "World",
    "available_apis",
    "default_library",
    "load_scenarios",
    "load_spec",
    "run_conformance",
]
