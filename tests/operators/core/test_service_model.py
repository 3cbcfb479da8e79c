from __future__ import annotations

import random

import pytest

from operators.core import (
    ConstantServiceTime,
    ExponentialServiceTime,
    Faults,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    Outcome,
    ServiceModel,
)


def spec(faults: Faults = Faults()) -> NetworkFunctionSpec:
    return NetworkFunctionSpec(
        name="hlr",
        kind=NetworkFunctionKind.SIM_DATA_REGISTER,
        servers=2,
        service_time=ConstantServiceTime(value=0.01),
        faults=faults,
    )


def test_outage_fails_every_call_at_once() -> None:
    model = ServiceModel(spec(Faults(outage=True)), random.Random(1))
    draws = [model.draw() for _ in range(100)]
    assert {d.outcome for d in draws} == {Outcome.OUTAGE}
    assert {d.duration for d in draws} == {0.0}


def test_error_rate_is_honoured_statistically() -> None:
    model = ServiceModel(spec(Faults(error_rate=0.2)), random.Random(5))
    errors = sum(model.draw().outcome is Outcome.ERROR for _ in range(20_000))
    assert errors / 20_000 == pytest.approx(0.2, abs=0.01)


def test_extra_latency_is_added_to_service() -> None:
    model = ServiceModel(spec(Faults(extra_latency=0.5)), random.Random(1))
    assert model.draw().duration == pytest.approx(0.51)
    model.set_faults(Faults())
    assert model.draw().duration == pytest.approx(0.01)


def test_no_faults_means_every_call_succeeds() -> None:
    model = ServiceModel(spec(), random.Random(2))
    assert all(model.draw().outcome is Outcome.OK for _ in range(1000))


def test_faults_do_not_shift_the_random_stream_of_later_calls() -> None:
    exponential = spec().model_copy(update={"service_time": ExponentialServiceTime(mean=1.0)})
    plain = ServiceModel(exponential, random.Random(4))
    faulted = ServiceModel(exponential, random.Random(4))
    faulted.set_faults(Faults(outage=True))
    for _ in range(5):
        plain.draw()
        faulted.draw()
    faulted.set_faults(Faults())
    assert [plain.draw() for _ in range(5)] == [faulted.draw() for _ in range(5)]
