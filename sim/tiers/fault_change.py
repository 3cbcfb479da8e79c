"""One step of a network function's fault timeline, as a scenario's faults section gives it.

Apart from :mod:`sim.tiers.network_function` so that the function itself defines no pydantic
model and mypyc can compile it (``benchmarks/build_compiled.py``: every backend call of a run
passes through it). The network function module re-exports the name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from operators.core import Faults

__all__ = ["FaultChange"]


class FaultChange(BaseModel):
    """From virtual time ``at`` on, the function has ``faults`` (a scenario's fault timeline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(ge=0)
    faults: Faults
