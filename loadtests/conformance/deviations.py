"""Scenarios whose own feature file contradicts the YAML beside it.

CAMARA publishes each API's OpenAPI definition and its acceptance scenarios separately, and a
few scenarios ask for something their YAML rules out. ogsim follows the YAML, so those
scenarios fail against it, and against any implementation that does. Each is listed here with
the contradiction, checked by hand against the definitions in ``shared/camara`` of 2026-12;
a listed scenario that fails at the step the contradiction is about is reported as
``deviates`` (with the reason), not as a failure. One that fails anywhere else still fails,
and one that passes is reported as passed: the list names where a failure is expected, it
excuses nothing else (against another implementation with ``--base-url`` too).
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
    """Where a scenario and its YAML disagree: ``step`` is a text of the step that asks what
    the YAML rules out (for an outline, it also picks the rows concerned)."""

    tag: str
    reason: str
    step: str

    def explains(self, scenario: _Scenario, failed_step: str) -> bool:
        return self.tag in scenario.tags and self.step in failed_step


KNOWN_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "@location_retrieval_C01.08_device_identifiers_mismatch",
        "wants 422 IDENTIFIER_MISMATCH, which location-retrieval.yaml does not define: it asks"
        " that identifiers of different devices get no error, so that no API consumer can"
        " correlate them",
        "the response status code is 422",
    ),
    Deviation(
        "@qos_profiles_getQosProfile_01_generic_success_scenario",
        "checks each item of a response array, but qos-profiles.yaml answers getQosProfile "
        "with one QosProfile object (and the same scenario reads $.name off it)",
        "each item of the response array",
    ),
    Deviation(
        "@quality_on_demand_deleteSession_01_delete_existing_qod_session",
        "wants Content-Type application/json on a 204, which quality-on-demand.yaml defines "
        "without content",
        'the response header "Content-Type" is "application/json"',
    ),
    Deviation(
        "@quality_on_demand_createSession_400.9_invalid_duration",
        "wants INVALID_ARGUMENT, where quality-on-demand.yaml names "
        "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE for a duration out of the profile's range",
        '"$.code" is "INVALID_ARGUMENT"',
    ),
    Deviation(
        "@KYC_Match_3_success_specific_property_score",
        "reads $.idDocumentMatchScore, which KYC_MatchResponse in kyc-match.yaml does not "
        "define",
        '"$.idDocumentMatchScore"',
    ),
    Deviation(
        "@KYC_Match_3_success_specific_property_score",
        "reads $.birthdateMatchScore, which KYC_MatchResponse in kyc-match.yaml does not "
        "define",
        '"$.birthdateMatchScore"',
    ),
)


def deviation_of(
    scenario: _Scenario, failed_step: str, known: Iterable[Deviation] = KNOWN_DEVIATIONS
) -> Deviation | None:
    """The listed contradiction that explains ``scenario`` failing at ``failed_step``."""
    return next((d for d in known if d.explains(scenario, failed_step)), None)
