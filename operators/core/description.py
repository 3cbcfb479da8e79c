"""The network core described once: capacity, waiting room, service time and faults per function.

These models are the single description that both realisations read: the asyncio one behind
the live gateway (:mod:`operators.core.live`) and the SimPy one in virtual time
(:mod:`sim.tiers.network_function`). They are frozen and forbid unknown fields because
scenario YAML embeds them, and a typo in a scenario must name the field rather than be ignored.
"""

from __future__ import annotations

import math
import random
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import samplers
from .samplers import Sampler

__all__ = [
    "ConstantServiceTime",
    "CoreSpec",
    "EmpiricalServiceTime",
    "ExponentialServiceTime",
    "Faults",
    "LognormalServiceTime",
    "NetworkFunctionKind",
    "NetworkFunctionSpec",
    "ServiceTime",
]


class _Spec(BaseModel):
    # an infinite mean or bound is no service time (a call that never ends stalls its server)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ExponentialServiceTime(_Spec):
    """Memoryless service, the M in M/M/c: what queueing theory can check exactly."""

    distribution: Literal["exponential"] = "exponential"
    mean: float = Field(gt=0, description="mean service time in seconds")

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean)

    def sampler(self) -> Sampler:
        """:meth:`sample` with the rate divided once (the same float, so the same draws)."""
        return samplers.exponential(1.0 / self.mean)


class LognormalServiceTime(_Spec):
    """Right-skewed service with a long tail, as measured backends usually are.

    Parametrised by its ``mean`` (not the mean of the underlying normal) so that changing
    ``sigma`` changes the spread and not the offered load.
    """

    distribution: Literal["lognormal"] = "lognormal"
    mean: float = Field(gt=0, description="mean service time in seconds")
    sigma: float = Field(gt=0, le=5, description="standard deviation of log(service time)")

    def sample(self, rng: random.Random) -> float:
        mu = math.log(self.mean) - self.sigma**2 / 2
        return rng.lognormvariate(mu, self.sigma)

    def sampler(self) -> Sampler:
        """:meth:`sample` with ``mu`` worked out once (the same float, so the same draws)."""
        return samplers.lognormal(math.log(self.mean) - self.sigma**2 / 2, self.sigma)


class ConstantServiceTime(_Spec):
    """Deterministic service, the D in M/D/c."""

    distribution: Literal["constant"] = "constant"
    value: float = Field(ge=0, description="service time in seconds")

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: random.Random) -> float:
        return self.value

    def sampler(self) -> Sampler:
        """:meth:`sample` as a plain function."""
        return samplers.constant(self.value)


class EmpiricalServiceTime(_Spec):
    """Resampling of measured service times: every draw is one of ``samples``."""

    distribution: Literal["empirical"] = "empirical"
    samples: tuple[float, ...] = Field(min_length=1)

    @field_validator("samples")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (s >= 0 and math.isfinite(s)) for s in value):
            raise ValueError("empirical samples must be finite and non-negative")
        return value

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)

    def sample(self, rng: random.Random) -> float:
        return self.samples[rng.randrange(len(self.samples))]

    def sampler(self) -> Sampler:
        """:meth:`sample` as a plain function."""
        return samplers.empirical(self.samples)


ServiceTime = Annotated[
    ExponentialServiceTime | LognormalServiceTime | ConstantServiceTime | EmpiricalServiceTime,
    Field(discriminator="distribution"),
]
"""A service-time distribution, told apart by its ``distribution`` field in YAML."""


class Faults(_Spec):
    """Failure modes injected into a function; all off by default, switchable at run time."""

    extra_latency: float = Field(
        default=0.0, ge=0, description="seconds added to every service (a slowdown holds a server)"
    )
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls that fail")
    outage: bool = Field(default=False, description="the function refuses every call at once")


class NetworkFunctionKind(StrEnum):
    """Which record format a function speaks; the five backends behind the CAMARA APIs."""

    SIM_DATA_REGISTER = "sim_data_register"  # HLR/HSS: SIM swap, reachability, roaming
    LOCATION_SERVER = "location_server"  # GMLC-like: position estimates
    POLICY_FUNCTION = "policy_function"  # PCF: QoS sessions
    KYC_REGISTER = "kyc_register"  # verified identity records
    NV_AUTHENTICATOR = "nv_authenticator"  # device IP address -> MSISDN


class NetworkFunctionSpec(_Spec):
    """One backend as a queueing station: ``servers`` in parallel and a bounded waiting room."""

    name: str = Field(min_length=1)
    kind: NetworkFunctionKind
    servers: int = Field(default=1, ge=1)
    queue_limit: int | None = Field(
        default=None, ge=0, description="waiting places beyond the servers; None = unbounded"
    )
    service_time: ServiceTime
    faults: Faults = Faults()

    @property
    def capacity(self) -> int | None:
        """K of M/M/c/K: most calls in the function at once (in service plus waiting)."""
        return None if self.queue_limit is None else self.servers + self.queue_limit


def _exp(mean: float) -> ExponentialServiceTime:
    return ExponentialServiceTime(mean=mean)


class CoreSpec(_Spec):
    """The five network functions of one operator, with defaults sized for a small operator."""

    sim_data_register: NetworkFunctionSpec = NetworkFunctionSpec(
        name="hlr",
        kind=NetworkFunctionKind.SIM_DATA_REGISTER,
        servers=8,
        queue_limit=64,
        service_time=_exp(0.008),
    )
    location_server: NetworkFunctionSpec = NetworkFunctionSpec(
        name="gmlc",
        kind=NetworkFunctionKind.LOCATION_SERVER,
        servers=4,
        queue_limit=32,
        service_time=LognormalServiceTime(mean=0.120, sigma=0.6),
    )
    policy_function: NetworkFunctionSpec = NetworkFunctionSpec(
        name="pcf",
        kind=NetworkFunctionKind.POLICY_FUNCTION,
        servers=4,
        queue_limit=32,
        service_time=_exp(0.030),
    )
    kyc_register: NetworkFunctionSpec = NetworkFunctionSpec(
        name="kyc",
        kind=NetworkFunctionKind.KYC_REGISTER,
        servers=2,
        queue_limit=16,
        service_time=LognormalServiceTime(mean=0.050, sigma=0.4),
    )
    nv_authenticator: NetworkFunctionSpec = NetworkFunctionSpec(
        name="nv",
        kind=NetworkFunctionKind.NV_AUTHENTICATOR,
        servers=4,
        queue_limit=32,
        service_time=_exp(0.015),
    )

    @model_validator(mode="after")
    def _kinds_match_slots(self) -> CoreSpec:
        for slot, spec in self.functions().items():
            if spec.kind.value != slot:
                raise ValueError(f"{slot} must have kind {slot!r}, not {spec.kind.value!r}")
        return self

    def functions(self) -> dict[str, NetworkFunctionSpec]:
        """Every function by its slot name, in a fixed order."""
        return {
            "sim_data_register": self.sim_data_register,
            "location_server": self.location_server,
            "policy_function": self.policy_function,
            "kyc_register": self.kyc_register,
            "nv_authenticator": self.nv_authenticator,
        }

    def scaled(self, factor: int) -> CoreSpec:
        """This core with ``factor`` times the servers and waiting room of every function,
        service times unchanged: several replicas' cores pooled as one (the calibration), or
        a core too big for its queues to set a benchmark's capacity."""
        if factor < 1:
            raise ValueError(f"a core is scaled by a whole factor of at least 1, not {factor}")
        return self.model_copy(
            update={
                slot: function.model_copy(
                    update={
                        "servers": function.servers * factor,
                        "queue_limit": None
                        if function.queue_limit is None
                        else function.queue_limit * factor,
                    }
                )
                for slot, function in self.functions().items()
            }
        )
