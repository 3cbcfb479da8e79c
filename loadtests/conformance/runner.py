"""Run CAMARA's ``.feature`` files against a target and collect one result per scenario.

Features are read with the official Gherkin parser and compiled to pickles, so Backgrounds are
prepended and each row of a Scenario Outline becomes its own scenario, exactly as any Cucumber
runner counts them. Each feature is paired with the YAML in its folder whose name prefixes the
feature's file name (``qos-profiles-getQosProfile.feature`` → ``qos-profiles.yaml``).

Outcomes: ``passed``; ``failed`` (a Then step saw a different response); ``skipped`` (the
target cannot set up what the scenario assumes: :class:`~operators.conformance.target.Unsupported`);
``deviates`` (failed where the scenario contradicts its own YAML:
:data:`~loadtests.conformance.deviations.KNOWN_DEVIATIONS`; neither passed nor failed);
``error`` (an undefined step or an exception in the engine: never expected, counted as failed).
"""

from __future__ import annotations

import re
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler

from .deviations import deviation_of
from .openapi import ApiSpec, load_spec
from .steps import StepLibrary, default_library
from .target import Target, Unsupported
from .world import ApiUnderTest, StepFailed, World

__all__ = [
    "ConformanceReport",
    "Scenario",
    "ScenarioResult",
    "available_apis",
    "load_scenarios",
    "run_conformance",
]

OUTCOMES = ("passed", "failed", "skipped", "deviates", "error")
_ASSERTION = re.compile(
    r"^(the (value of )?response|if the response|each item|in all items)", re.IGNORECASE
)
"""An ``And`` after ``When`` is typed Action by Gherkin, yet these sentences check the answer."""


@dataclass(frozen=True)
class Scenario:
    """One executable scenario (a pickle): its API, name, tags and step texts."""

    api: str
    feature: str
    name: str
    tags: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    """(type, text): type is Context, Action or Outcome as the Gherkin compiler says."""
    operation_id: str | None

    @property
    def tag(self) -> str:
        return self.tags[-1] if self.tags else self.name


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    outcome: str
    reason: str = ""
    log: tuple[str, ...] = ()


@dataclass
class ConformanceReport:
    """Every scenario's result, with per-API counts and the one-line summary."""

    results: list[ScenarioResult] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)
    """APIs with definitions whose scenarios were not run: the target does not serve them."""

    def count(self, outcome: str, api: str | None = None) -> int:
        return sum(
            1
            for r in self.results
            if r.outcome == outcome and (api is None or r.scenario.api == api)
        )

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        """Failures and engine errors alike: both mean the scenario did not pass."""
        return self.count("failed") + self.count("error")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def deviates(self) -> int:
        """Failed where the scenario contradicts its own YAML (see ``deviations``)."""
        return self.count("deviates")

    @property
    def apis(self) -> list[str]:
        return list(dict.fromkeys(r.scenario.api for r in self.results))

    def per_api(self) -> list[tuple[str, int, int, int, int, int]]:
        """(api, run, passed, failed, skipped, deviates) for each API in run order."""
        rows = []
        for api in self.apis:
            counts = Counter(r.outcome for r in self.results if r.scenario.api == api)
            rows.append(
                (
                    api,
                    sum(counts.values()),
                    counts["passed"],
                    counts["failed"] + counts["error"],
                    counts["skipped"],
                    counts["deviates"],
                )
            )
        return rows

    @property
    def pass_rate(self) -> float:
        """Passed over executed (skips and known deviations excluded); 0 when nothing ran."""
        executed = self.passed + self.failed
        return self.passed / executed if executed else 0.0

    def summary(self) -> str:
        line = f"conformance: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        if self.deviates:
            line += f", {self.deviates} contradict their YAML"
        return f"{line} (not served: {', '.join(self.unserved)})" if self.unserved else line


def _feature_specs(camara_dir: Path) -> Iterable[tuple[Path, Path]]:
    """(feature, yaml) pairs: the YAML in the same folder whose stem prefixes the feature's."""
    for feature in sorted(camara_dir.glob("*/*.feature")):
        yamls = sorted(feature.parent.glob("*.yaml"), key=lambda p: -len(p.stem))
        for candidate in yamls:
            if feature.stem.startswith(candidate.stem):
                yield feature, candidate
                break


def available_apis(camara_dir: Path) -> list[str]:
    """The APIs (YAML names) with scenarios in ``camara_dir``, sorted: what ``apis`` may name
    (a name outside them selects nothing, so callers check it first)."""
    return sorted({yaml_path.stem for _, yaml_path in _feature_specs(camara_dir)})


def load_scenarios(
    camara_dir: Path, apis: Iterable[str] | None = None
) -> tuple[list[Scenario], dict[str, ApiSpec]]:
    """Every scenario of every feature (optionally only of ``apis``), with the specs they need."""
    wanted = set(apis) if apis else None
    common = camara_dir / "commonalities" / "CAMARA_common.yaml"
    specs: dict[str, ApiSpec] = {}
    scenarios: list[Scenario] = []
    for feature, yaml_path in _feature_specs(camara_dir):
        key = yaml_path.stem
        if wanted is not None and key not in wanted:
            continue
        if key not in specs:
            specs[key] = load_spec(yaml_path, common)
        parsed = Parser().parse(feature.read_text(encoding="utf-8"))
        document: Any = {**parsed, "uri": str(feature)}
        title = document["feature"]["name"]
        found = re.search(r"Operation\s+(\S+)", title)
        operation_id = found.group(1) if found else None
        for pickle in Compiler().compile(document):
            scenarios.append(
                Scenario(
                    api=key,
                    feature=feature.name,
                    name=pickle["name"],
                    tags=tuple(t["name"] for t in pickle.get("tags", [])),
                    steps=tuple((s.get("type", "Unknown"), s["text"]) for s in pickle["steps"]),
                    operation_id=operation_id,
                )
            )
    return scenarios, specs


async def run_scenario(
    scenario: Scenario,
    spec: ApiSpec,
    target: Target,
    library: StepLibrary,
    run_cache: dict[str, Any],
) -> ScenarioResult:
    """Run one scenario's steps; send lazily before the first Then; always clean up."""
    world = World(ApiUnderTest(scenario.api, spec, scenario.operation_id), target, run_cache)
    outcome, reason = "passed", ""
    text = ""  # the step under way: a failure is that step's
    try:
        for kind, text in scenario.steps:
            checks = kind == "Outcome" or (world.send_requested and _ASSERTION.match(text))
            if checks and world.response is None:
                await world.send()
            if not await library.run(world, text):
                outcome, reason = "error", f"undefined step: {text}"
                break
        else:
            if world.response is None and world.send_requested:
                await world.send()
    except Unsupported as why:
        outcome, reason = "skipped", str(why)
    except StepFailed as failure:
        outcome, reason = "failed", str(failure)
        known = deviation_of(scenario, text)
        if known is not None:
            outcome, reason = "deviates", f"the scenario {known.reason} ({reason})"
    except Exception as error:  # an engine bug or a transport failure: report, do not stop
        outcome = "error"
        reason = f"{type(error).__name__}: {error} " + "".join(
            traceback.format_tb(error.__traceback__)[-2:]
        )
    finally:
        for cleanup in reversed(world.cleanups):
            try:
                await cleanup()
            except Exception as error:  # cleanup must not hide the scenario's outcome
                world.log.append(f"cleanup failed: {error}")
    return ScenarioResult(scenario, outcome, reason, tuple(world.log))


async def run_conformance(
    target: Target,
    camara_dir: Path,
    apis: Iterable[str] | None = None,
    *,
    library: StepLibrary | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> ConformanceReport:
    """Run every scenario of the chosen APIs against ``target``; never raises for a scenario."""
    scenarios, specs = load_scenarios(camara_dir, apis)
    library = library or default_library()
    report = ConformanceReport()
    if apis is None and target.apis is not None:
        report.unserved = sorted({s.api for s in scenarios} - target.apis)
        scenarios = [s for s in scenarios if s.api in target.apis]
    run_cache: dict[str, Any] = {}
    for scenario in scenarios:
        result = await run_scenario(scenario, specs[scenario.api], target, library, run_cache)
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report
