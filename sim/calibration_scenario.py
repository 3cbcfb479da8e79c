"""The calibrated scenario: the live federation's operators as the simulation's stations.

Each live operator is one uvicorn process, one event loop: whatever its data centres, its
gateway and identity server share one core, so it becomes one data centre with one gateway
replica of one worker whose service time is the CPU the process spent per CAMARA call (grants
included, as they take the same core) with the spread fitted to its latency histogram at
the lightest load. The backends are the operators' default network functions, the same
specification the live emulated backends sleep by. Traffic is one Poisson application per
operator at the rate and API mix the operator served in the step (the calls that begin a
unit of work; a QoD session's reads and extensions are counted only in its CPU).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from operators.core import LognormalServiceTime
from sim.calibration_fit import Fit, Histogram, fit_histogram
from sim.calibration_live import LiveStep, OperatorStep, api_name
from sim.scenario import Scenario, load_scenario

__all__ = ["calibrated_document", "fit_tiers", "with_rates", "write"]

PURPOSE = "dpv:RequestedServiceProvision"
"""Under contract: no consent or objection decides the calls, as for the live demo app."""


class TierModel:
    """The fitted tiers of one operator: gateway (CPU per call) and identity (grants)."""

    def __init__(self, operator: str, gateway: Fit, cpu_per_call: float, grants: Fit | None):
        self.operator = operator
        self.shape = gateway
        self.cpu_per_call = cpu_per_call
        self.grants = grants

    def gateway_service(self) -> dict[str, Any]:
        """One worker's service time: mean CPU per call, the fitted latency's spread."""
        mean = self.cpu_per_call if math.isfinite(self.cpu_per_call) else self.shape.mean
        sigma = self.shape.service_time()
        spread = sigma.sigma if isinstance(sigma, LognormalServiceTime) else 1.0
        return {"distribution": "lognormal", "mean": max(mean, 1e-6), "sigma": min(spread, 2.0)}

    def identity_service(self) -> dict[str, Any]:
        if self.grants is None:
            return {"distribution": "exponential", "mean": 0.005}
        return self.grants.service_time().model_dump(mode="json")

    def as_json(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "latency_fit": self.shape.describe(),
            "cpu_per_call_ms": self.cpu_per_call * 1000,
            "gateway_service_time": self.gateway_service(),
            "identity_fit": self.grants.describe() if self.grants else None,
        }


def _fitted(histogram: Histogram | None, least: int) -> Fit | None:
    """The histogram's fit, or None when it holds too few observations to say anything."""
    if histogram is None or histogram.count < least or not histogram.total > 0:
        return None
    return fit_histogram(histogram)


def _operator_model(step: OperatorStep) -> TierModel | None:
    latency = _fitted(step.all_calls(), 1)
    if latency is None:
        return None
    return TierModel(step.operator, latency, step.cpu_per_call, _fitted(step.grants, 5))


def fit_tiers(lightest: LiveStep, busiest: LiveStep | None = None) -> dict[str, TierModel]:
    """Each operator's tiers: the spread from the lightest step (latency close to service),
    the CPU per call from the busiest one (most calls, least noise from idle work)."""
    models = {}
    for op_id, step in lightest.operators.items():
        model = _operator_model(step)
        if model is None:
            continue
        if busiest is not None and op_id in busiest.operators:
            heavy = busiest.operators[op_id].cpu_per_call
            if math.isfinite(heavy):
                model.cpu_per_call = heavy
        models[op_id] = model
    return models


def _mix(step: OperatorStep) -> dict[str, float]:
    weights: dict[str, float] = {}
    for (_api, operation), histogram in step.calls.items():
        name = api_name(operation)
        if name is not None:
            weights[name] = weights.get(name, 0.0) + histogram.count
    return weights


def calibrated_document(
    models: dict[str, TierModel], step: LiveStep, duration: float, seed: int = 1
) -> dict[str, Any]:
    """A scenario document (as YAML would load) of these tiers at ``step``'s rates and mix."""
    operators: dict[str, Any] = {}
    applications: dict[str, Any] = {}
    for index, (op_id, model) in enumerate(sorted(models.items())):
        operators[op_id] = {
            "country": "ES",
            "mcc": "214",
            "mnc": f"{index + 1:02d}",
            "number_ranges": [f"+346{index}"],
            "data_centres": {
                "live": {
                    "gateway": {
                        "replicas": 1,
                        "workers": 1,
                        "service_time": model.gateway_service(),
                    },
                    "identity": {
                        "replicas": 1,
                        "workers": 1,
                        "service_time": model.identity_service(),
                    },
                }
            },
            "policies": {"throttling": {"enabled": False}},
        }
        served = step.operators.get(op_id)
        mix = _mix(served) if served is not None else {}
        if not mix:
            continue
        rate = sum(mix.values()) / step.seconds
        applications[f"{op_id}-calls"] = {
            "purpose": PURPOSE,
            "arrival": {"process": "poisson", "rate": round(rate, 4)},
            "apis": {name: round(count, 3) for name, count in sorted(mix.items())},
            "operators": {op_id: 1.0},
            "client": {"timeout": 10.0},
        }
    return {
        "name": "calibrated",
        "description": "the live federation on this machine, fitted by ogsim calibrate",
        "seed": seed,
        "duration": duration,
        "topology": {"operators": operators},
        "traffic": {"applications": applications},
    }


def with_rates(document: dict[str, Any], factor: float) -> dict[str, Any]:
    """The same document with every application's rate multiplied by ``factor``."""
    scaled = copy.deepcopy(document)
    for app in scaled["traffic"]["applications"].values():
        app["arrival"]["rate"] = round(app["arrival"]["rate"] * factor, 4)
    return scaled


def write(document: dict[str, Any], path: Path) -> Scenario:
    """Write the document as YAML and load it back with the scenario loader (its check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `ogsim calibrate`: the live federation on the machine that ran it.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return load_scenario(path)[0]
