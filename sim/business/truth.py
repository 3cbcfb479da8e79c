"""What really happened in a simulated business: the answers the analytics is scored against.

The analytics never reads these records; only :mod:`sim.business.scoring` does, after the
run. Times are epoch seconds on the scenario's calendar, as the analytics' own records are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.business.scenario import AbuseKind

__all__ = ["AbuseCase", "DeveloperTruth", "GroundTruth"]


@dataclass(slots=True)
class AbuseCase:
    """One abuse: its kind, the application (or, for quota farming, the developer) abused,
    and when it started and ended.

    ``entity`` is what the scoring counts: the client id for credential theft and
    enumeration, the developer id for quota farming (the abuse is the developer's, and the
    detector names the developer). ``clients`` lists the applications involved.
    """

    kind: AbuseKind
    entity: str
    developer_id: str
    clients: tuple[str, ...]
    start: float
    end: float


@dataclass(slots=True)
class DeveloperTruth:
    """One developer's true milestones (None: never happened within the run)."""

    developer_id: str
    org_id: str
    signed_up: float
    role: str = "normal"
    first_token: float | None = None
    integration_delay: float | None = None
    """Seconds from sign-up to the first token (drawn; also for those who never get one)."""
    first_success: dict[str, float] = field(default_factory=dict)
    """API -> the first 2xx on it, over every application of the developer."""
    churn_started: float | None = None
    churned: float | None = None
    """When the traffic stopped after a decline (deactivated)."""


@dataclass(slots=True)
class GroundTruth:
    """Every developer's truth and every abuse case, filled in while the run goes."""

    developers: dict[str, DeveloperTruth] = field(default_factory=dict)
    abuse: list[AbuseCase] = field(default_factory=list)

    def cases(self, kind: AbuseKind) -> list[AbuseCase]:
        return [case for case in self.abuse if case.kind == kind]

    def abusive_clients(self) -> set[str]:
        """Every application involved in any abuse (victims of theft included)."""
        return {client for case in self.abuse for client in case.clients}

    def abusive_developers(self) -> set[str]:
        """Developers who abuse on purpose (theft victims are not among them)."""
        return {case.developer_id for case in self.abuse if case.kind != "credential_theft"}
