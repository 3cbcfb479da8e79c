"""An operator as a process runs it: its config plus the size and protection of its core.

The modelled network functions and the integrator's guards in front of them are what a load
test meets first once calls crowd, so a QA engineer sizing a run must be able to set them in
the same file as the operator's identity and plans. They are not fields of
:class:`~operators.config.OperatorConfig`, which the identity server, the gateway and the
billing read and which ``operators.core`` and ``operators.policies`` themselves import: the
config would then import its own importers. This subclass sits above all three; ``ogsim serve``
reads it, and the federation's operators (:class:`federation.config.FederatedOperator`)
extend it, so one operator file means the same alone and in a federation.
"""

from __future__ import annotations

from pydantic import Field

from operators.config import OperatorConfig
from operators.core import CoreSpec
from operators.integrator import GuardSettings

__all__ = ["ServedOperatorConfig"]


class ServedOperatorConfig(OperatorConfig):
    """An operator's config with its modelled network core and the guards in front of it."""

    core: CoreSpec = Field(
        default_factory=CoreSpec,
        description="the modelled network functions behind the gateway: servers, waiting"
        " room, service time and faults of each (in a federation, each data centre's replica"
        " has its own); a function named here replaces its whole default entry, so give its"
        " name, kind and service_time too",
    )
    protection: GuardSettings = Field(
        default_factory=GuardSettings,
        description="how the integrator protects each of those functions: request buffer"
        " (calls at once, waiting room, longest wait), call timeout, load shedding and circuit"
        " breaker; what a scenario's operators[].policies gives the simulation. A breaker"
        " given here replaces the default one whole: fields left out take resilience4j's"
        " defaults (window 100, minimum 100 calls, 60 s open), not 50/20/10 s",
    )

    def operator_config(self) -> OperatorConfig:
        """The plain operator config, for code that must not see these fields."""
        return OperatorConfig.model_validate(self.model_dump(exclude=self._process_only()))

    @classmethod
    def _process_only(cls) -> set[str]:
        """The fields a plain :class:`OperatorConfig` does not have."""
        return set(cls.model_fields) - set(OperatorConfig.model_fields)
