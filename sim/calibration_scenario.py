"""The calibrated scenario: the live federation's operators as the simulation's stations.

Each live operator is one uvicorn process, one event loop: whatever its data centres, its
gateway and identity server share it, so it becomes one data centre with one gateway replica
of one worker (calls queue for the loop as they do live). What the worker holds for a call
is the loop's wall time for it, a resource model made of two measured parts:

* the loop's CPU per call, fitted over the load levels as CPU seconds per second against
  calls per second (the slope is the CPU a call costs; the intercept the background work
  of an idle loop, shared over the calls), from the kernel's scheduler statistics of the
  process's main thread;
* the waits for a core: the loop shares the machine's cores with Locust, the other parties
  and whatever else runs, and at each step the kernel says how long it waited runnable per
  time on a core, second by second, and how often it was taken off a core mid-work
  (preempted) or woke up. Preemptions come with the CPU a call uses (a Poisson number per
  CPU second, each an exponential wait of the mean of a second drawn at random: the
  machine's other load comes and goes, and with it the tail); wake-ups fall on the calls
  that find the loop idle, the gateway's ``wake_up`` time, which delays no queue since
  there is none.

So the worker's service time is an empirical distribution drawn from that model (CPU per
call with a modest spread, plus the waits), step by step: the share of the cores the servers
got is an input of each step, the CPU per call is the calibration. The backends are the
live operators' network functions and their protection (``operators[].core`` and
``operators[].protection`` of the federation file, pooled over their data centres' replicas;
the defaults when there is no file), the same specifications the live emulated backends sleep
by and the live integrator guards them with. Traffic is one Poisson application per operator
at the rate and API mix the operator served in the step.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sim.calibration_fit import Fit, Histogram, fit_histogram
from sim.calibration_live import LiveBackends, LiveStep, OperatorStep, api_name
from sim.scenario import Scenario, load_scenario

__all__ = [
    "PURPOSE",
    "TierModel",
    "calibrated_document",
    "fit_cpu",
    "fit_tiers",
    "fitted",
    "mean_of",
    "operation_mix",
    "with_rates",
    "write",
]

PURPOSE = "dpv:RequestedServiceProvision"
"""Under contract: no consent or objection decides the calls, as for the live demo app."""
CPU_SIGMA = 0.3
"""Spread (sigma of the log) of one call's CPU around the mean: the kernel gives totals
only; calls of one operation run the same code, so a modest spread."""
SAMPLES = 500
"""Draws of the loop's wall time per call written into the scenario (empirical)."""


def _loop_seconds(step: OperatorStep) -> float:
    """CPU seconds of the event loop in the step: the main thread's (schedstat), else the
    whole process's."""
    return step.ran if math.isfinite(step.ran) else step.cpu


def fit_cpu(steps: list[OperatorStep]) -> tuple[float, float]:
    """(CPU seconds per call, background CPU seconds per second) by least squares of the
    loop's CPU per second against calls per second over ``steps``.

    With one usable step, or a fit that makes no sense (a negative slope or intercept), the
    background is taken as zero and the CPU per call is the total over the calls.
    """
    points = [
        (s.call_count / s.seconds, _loop_seconds(s) / s.seconds)
        for s in steps
        if s.call_count > 0 and math.isfinite(_loop_seconds(s))
    ]
    if not points:
        return math.nan, 0.0
    ratio = sum(y for _, y in points) / sum(x for x, _ in points)
    if len(points) < 2:
        return ratio, 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread <= 0:
        return ratio, 0.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    background = mean_y - slope * mean_x
    if slope <= 0 or background < 0:
        return ratio, 0.0
    return slope, background


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product of uniforms; means here are a few at most)."""
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _profile(step: OperatorStep | None) -> tuple[float, ...]:
    """The step's waits per time on a core, second by second, scaled to its mean (empty
    without scheduler figures)."""
    if step is None or step.call_count <= 0 or not (step.slices > 0 and step.waited >= 0):
        return ()
    if not math.isfinite(step.preempted):
        return ()
    return _scaled(step.wait_profile, step.waited / step.slices)


def _waits(rng: random.Random, profile: tuple[float, ...], mean_count: float) -> float:
    """A Poisson number of exponential waits, all of the mean of one second of ``profile``."""
    wait = profile[rng.randrange(len(profile))]
    if wait <= 0:
        return 0.0
    return sum(rng.expovariate(1 / wait) for _ in range(_poisson(rng, mean_count)))


def _scaled(profile: tuple[float, ...], mean: float) -> tuple[float, ...]:
    """The step's second-by-second waits, scaled to the step's mean wait (the profile's
    seconds weigh alike; the step's total weighs each by its times on a core)."""
    usable = [w for w in profile if w >= 0 and math.isfinite(w)]
    average = sum(usable) / len(usable) if usable else 0.0
    if average <= 0:
        return (mean,)
    return tuple(w * mean / average for w in usable)


class TierModel:
    """The fitted tiers of one operator: the loop's CPU per call and background, the
    latency at the lightest level (shown, not used), the identity server's grants."""

    def __init__(
        self,
        operator: str,
        latency: Fit,
        cpu_per_call: float,
        grants: Fit | None,
        background: float = 0.0,
    ):
        self.operator = operator
        self.latency = latency
        self.cpu_per_call = cpu_per_call
        self.background = background
        self.grants = grants
        self.after_answer = 0.0
        """Share of the loop's time per call spent after the answer (outside the span the
        gateway's histogram measures), fitted by :func:`sim.calibration.calibrate`."""

    def cpu_at(self, rate: float) -> float:
        """Mean loop CPU per call at ``rate`` calls/s: the call's own plus its share of the
        background."""
        share = self.background / rate if rate > 0 else 0.0
        return self.cpu_per_call + share

    def gateway_service(self, step: OperatorStep | None = None, seed: int = 1) -> dict[str, Any]:
        """The worker's service time at ``step``: CPU per call plus the waits of the times
        the loop was taken off a core in the middle of it (the kernel's rate per CPU second,
        each a wait of a second's mean drawn at random); without scheduler figures, the CPU
        alone."""
        rate = step.call_count / step.seconds if step is not None else 0.0
        cpu = max(self.cpu_at(rate), 1e-6)
        profile = _profile(step)
        if step is None or not profile or not step.ran > 0:
            return {"distribution": "lognormal", "mean": cpu, "sigma": CPU_SIGMA}
        per_second = max(step.preempted, 0.0) / step.ran
        rng = random.Random(f"{self.operator}:{seed}:{step.call_count}")
        mu = -CPU_SIGMA * CPU_SIGMA / 2
        samples = []
        for _ in range(SAMPLES):
            own = cpu * rng.lognormvariate(mu, CPU_SIGMA)
            samples.append(round(own + _waits(rng, profile, own * per_second), 7))
        return {"distribution": "empirical", "samples": samples}

    def wake_up(self, step: OperatorStep | None, seed: int = 1) -> dict[str, Any] | None:
        """The time a call arriving at an idle loop waits before it runs: the loop's other
        times on a core (its wake-ups: the call's arrival, its backend's answer, timers)
        fall on the calls that found it idle, each a wait of a second's mean."""
        profile = _profile(step)
        if step is None or not profile or step.call_count <= 0:
            return None
        idle = max(1.0 - (step.ran + step.waited) / step.seconds, 0.05)
        # Every request wakes the loop, modelled or not (grants, CIBA polls, scrapes): a
        # modelled call that finds it idle waits its own share of the wake-ups, not all.
        requests = step.requests if step.requests >= step.call_count else step.call_count
        wake_ups = max(step.slices - max(step.preempted, 0.0), 0.0) / (requests * idle)
        rng = random.Random(f"{self.operator}:{seed}:{step.call_count}:wake")
        samples = [round(_waits(rng, profile, wake_ups), 7) for _ in range(SAMPLES)]
        return {"distribution": "empirical", "samples": samples}

    def identity_service(self) -> dict[str, Any]:
        if self.grants is None:
            return {"distribution": "exponential", "mean": 0.005}
        return self.grants.service_time().model_dump(mode="json")

    def as_json(self) -> dict[str, Any]:
        return {
            "operator": self.operator,
            "latency_fit": self.latency.describe(),
            "cpu_per_call_ms": self.cpu_per_call * 1000,
            "background_cpu_per_second_ms": self.background * 1000,
            "work_after_answer": self.after_answer,
            "identity_fit": self.grants.describe() if self.grants else None,
        }


def fitted(histogram: Histogram | None, least: int = 5) -> Fit | None:
    """The histogram's fit, or None when it holds too few observations to say anything."""
    if histogram is None or histogram.count < least or not histogram.total > 0:
        return None
    return fit_histogram(histogram)


def fit_tiers(steps: list[LiveStep]) -> dict[str, TierModel]:
    """Each operator's tiers from ``steps`` (the load levels, not the saturation step): CPU
    per call and background over all of them, the latency and grants at the lightest."""
    if not steps:
        return {}
    lightest = min(steps, key=lambda s: s.throughput)
    models = {}
    for op_id, step in lightest.operators.items():
        latency = fitted(step.all_calls(), 1)
        if latency is None:
            continue
        cpu, background = fit_cpu([s.operators[op_id] for s in steps if op_id in s.operators])
        if not math.isfinite(cpu):
            cpu = latency.mean
        models[op_id] = TierModel(op_id, latency, cpu, fitted(step.grants, 5), background)
    return models


def operation_mix(calls: dict[tuple[str, str], Histogram]) -> dict[str, float]:
    """Calls of each unit of work the scenario language names, by its first operation."""
    weights: dict[str, float] = {}
    for (_api, operation), histogram in calls.items():
        name = api_name(operation)
        if name is not None:
            weights[name] = weights.get(name, 0.0) + histogram.count
    return weights


def calibrated_document(
    models: dict[str, TierModel],
    step: LiveStep,
    duration: float,
    seed: int = 1,
    backends: Mapping[str, LiveBackends] | None = None,
) -> dict[str, Any]:
    """A scenario document (as YAML would load) of these tiers at ``step``'s rates and mix;
    an operator that ``backends`` names gets that network core and that protection (the live
    one's, pooled over its data centres), the others the defaults."""
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
                        "service_time": model.gateway_service(step.operators.get(op_id), seed),
                        "work_after_answer": round(model.after_answer, 4),
                        "wake_up": model.wake_up(step.operators.get(op_id), seed),
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
        if backends and op_id in backends:
            live = backends[op_id]
            operators[op_id]["core"] = live.core.model_dump(mode="json")
            operators[op_id]["policies"].update(live.scenario_policies())
        served = step.operators.get(op_id)
        mix = operation_mix(served.calls) if served is not None else {}
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


def mean_of(service_time: dict[str, Any]) -> float:
    """The mean of a service time as a scenario document writes it (empirical or not)."""
    if service_time.get("distribution") == "empirical":
        samples = service_time["samples"]
        return float(sum(samples) / len(samples))
    if service_time.get("distribution") == "constant":
        return float(service_time["value"])
    return float(service_time.get("mean", math.nan))


def with_rates(
    document: dict[str, Any], factor: float, timeout: float | None = None
) -> dict[str, Any]:
    """The same document with every application's rate multiplied by ``factor`` (and its
    clients' timeout set to ``timeout`` when given)."""
    scaled = copy.deepcopy(document)
    for app in scaled["traffic"]["applications"].values():
        app["arrival"]["rate"] = round(app["arrival"]["rate"] * factor, 4)
        if timeout is not None:
            app["client"]["timeout"] = timeout
    return scaled


def write(document: dict[str, Any], path: Path) -> Scenario:
    """Write the document as YAML and load it back with the scenario loader (its check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `ogsim calibrate`: the live federation on the machine that ran it.\n"
    # Leaf lists (the empirical samples) in flow style: one line each, read back faster.
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None))
    return load_scenario(path)[0]
