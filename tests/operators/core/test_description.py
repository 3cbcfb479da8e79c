from __future__ import annotations

import random
import statistics

import pytest
from pydantic import TypeAdapter, ValidationError

from operators.core import (
    ConstantServiceTime,
    CoreSpec,
    EmpiricalServiceTime,
    ExponentialServiceTime,
    LognormalServiceTime,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    ServiceTime,
)

SERVICE_TIME: TypeAdapter[ServiceTime] = TypeAdapter(ServiceTime)

DISTRIBUTIONS = [
    ExponentialServiceTime(mean=0.02),
    LognormalServiceTime(mean=0.05, sigma=0.8),
    ConstantServiceTime(value=0.01),
    EmpiricalServiceTime(samples=(0.01, 0.02, 0.09)),
]


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_sample_mean_matches_declared_mean(distribution: ServiceTime) -> None:
    rng = random.Random(3)
    draws = [distribution.sample(rng) for _ in range(40_000)]
    assert statistics.fmean(draws) == pytest.approx(distribution.mean, rel=0.03)
    assert min(draws) >= 0


def test_draws_are_reproducible_from_a_seed() -> None:
    spec = LognormalServiceTime(mean=1.0, sigma=1.0)
    first = [spec.sample(random.Random(9)) for _ in range(3)]
    again = [spec.sample(random.Random(9)) for _ in range(3)]
    other = [spec.sample(random.Random(10)) for _ in range(3)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_a_sampler_draws_exactly_what_sample_draws(distribution: ServiceTime) -> None:
    """The simulation's backends draw through ``sampler()`` (worked out once, written out);
    a scenario's results stay what ``sample`` and ``Random``'s own methods would give."""
    sample, reference = distribution.sampler(), random.Random(5)
    rng = random.Random(5)
    assert [sample(rng) for _ in range(2_000)] == [
        distribution.sample(reference) for _ in range(2_000)]


def test_empirical_draws_only_its_samples_and_all_of_them() -> None:
    samples = (0.5, 1.5, 4.0)
    spec = EmpiricalServiceTime(samples=samples)
    rng = random.Random(1)
    drawn = {spec.sample(rng) for _ in range(500)}
    assert drawn == set(samples)


def test_service_time_is_discriminated_by_distribution_in_yaml_shaped_data() -> None:
    parsed = SERVICE_TIME.validate_python({"distribution": "lognormal", "mean": 2, "sigma": 0.5})
    assert isinstance(parsed, LognormalServiceTime)
    with pytest.raises(ValidationError):
        SERVICE_TIME.validate_python({"distribution": "weibull", "mean": 2})
    with pytest.raises(ValidationError):
        SERVICE_TIME.validate_python({"distribution": "exponential", "mean": 2, "sigma": 1})


def test_specs_are_frozen_and_forbid_unknown_fields() -> None:
    spec = CoreSpec().sim_data_register
    with pytest.raises(ValidationError):
        spec.servers = 3
    with pytest.raises(ValidationError):
        NetworkFunctionSpec.model_validate(
            {
                "name": "x",
                "kind": "kyc_register",
                "servers": 1,
                "queue_limt": 3,
                "service_time": {"distribution": "constant", "value": 1},
            }
        )


def test_capacity_is_servers_plus_waiting_room() -> None:
    spec = NetworkFunctionSpec(
        name="x",
        kind=NetworkFunctionKind.KYC_REGISTER,
        servers=3,
        queue_limit=5,
        service_time=ConstantServiceTime(value=1),
    )
    assert spec.capacity == 8
    assert spec.model_copy(update={"queue_limit": None}).capacity is None


def test_core_spec_checks_each_slot_holds_its_kind() -> None:
    core = CoreSpec()
    assert [s.kind.value for s in core.functions().values()] == list(core.functions())
    with pytest.raises(ValidationError, match="kyc_register"):
        CoreSpec(kyc_register=core.sim_data_register)


def test_a_scaled_core_has_more_servers_and_room_and_the_same_service_times() -> None:
    core = CoreSpec()
    pooled = core.scaled(3)
    for slot, function in core.functions().items():
        grown = pooled.functions()[slot]
        assert grown.servers == 3 * function.servers
        assert grown.queue_limit == (
            None if function.queue_limit is None else 3 * function.queue_limit
        )
        assert (
            grown.model_copy(
                update={"servers": function.servers, "queue_limit": function.queue_limit}
            )
            == function
        )
    unbounded = core.model_copy(
        update={"kyc_register": core.kyc_register.model_copy(update={"queue_limit": None})}
    )
    assert unbounded.scaled(2).kyc_register.queue_limit is None
    assert core.scaled(1) == core
    with pytest.raises(ValueError, match="at least 1"):
        core.scaled(0)
