"""Scenarios whose own feature file contradicts the YAML beside it.

CAMARA publishes each API's OpenAPI definition and its acceptance scenarios separately, and a
few scenarios ask for something their YAML rules out. ogsim follows the YAML, so those
scenarios fail against it, and against any implementation that does. Each is listed here with
the contradiction, checked by hand against the definitions in ``shared/camara`` of 2026-12;
a listed scenario that fails is reported as ``deviates`` (with the reason), not as a failure.
One that passes is reported as passed: the list names where a failure is expected, it
excuses nothing else. A scenario outline is narrowed to its failing rows by a text of one of
their steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["KNOWN_DEVIATIONS", "Deviation", "deviation_of"]


class _Scenario(Protocol):
    @property
    def tags(self) -> tuple[str, ...]: ...

    @property
    def steps(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True)
class Deviation:
    """Where a scenario and its YAML disagree; ``step_contains`` narrows an outline's rows."""

    tag: str
    reason: str
    step_contains: str | None = None

    def covers(self, scenario: _Scenario) -> bool:
        if self.tag not in scenario.tags:
            return False
        return self.step_contains is None or any(
            self.step_contains in text for _, text in scenario.steps
        )


KNOWN_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "@qos_profiles_getQosProfile_01_generic_success_scenario",
        "checks each item of a response array, but qos-profiles.yaml answers getQosProfile "
        "with one QosProfile object (and the same scenario reads $.name off it)",
    ),
    Deviation(
        "@quality_on_demand_deleteSession_01_delete_existing_qod_session",
        "wants Content-Type application/json on a 204, which quality-on-demand.yaml defines "
        "without content",
    ),
    Deviation(
        "@quality_on_demand_createSession_400.9_invalid_duration",
        "wants INVALID_ARGUMENT, where quality-on-demand.yaml names "
        "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE for a duration out of the profile's range",
    ),
    Deviation(
        "@KYC_Match_3_success_specific_property_score",
        "reads $.idDocumentMatchScore, which KYC_MatchResponse in kyc-match.yaml does not "
        "define",
        step_contains="$.idDocumentMatchScore",
    ),
    Deviation(
        "@KYC_Match_3_success_specific_property_score",
        "reads $.birthdateMatchScore, which KYC_MatchResponse in kyc-match.yaml does not "
        "define",
        step_contains="$.birthdateMatchScore",
    ),
)


def deviation_of(
    scenario: _Scenario, known: Iterable[Deviation] = KNOWN_DEVIATIONS
) -> Deviation | None:
    """The listed contradiction a scenario runs into, or None."""
    return next((d for d in known if d.covers(scenario)), None)
