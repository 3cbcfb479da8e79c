"""The federation's other tiers, fitted from one step of realistic users and checked.

The ladder (:mod:`sim.calibration`) saturates one operator's gateway with one cheap call. A
federation is more than that gateway: the identity servers' grants (client credentials,
CIBA), the aggregator's hop (Telco Finder search, the operator's token, the forwarded call)
and each network function behind the integrators. One more live step runs Locust's
realistic users (anti-fraud with CIBA, location, QoD, the aggregator's application) at a
light load across every party and reads their own histograms. Fitted from it:

* each operator's network functions: the service time (the time a call held a server,
  ``ogsim_backend_service_seconds``), the family and spread as well as the mean;
* each operator's token endpoint (the gateway's ``api="oauth"`` series): the identity
  station's service time;
* each operator's gateway at this mix: the event loop's CPU per modelled call, grants and
  unmodelled calls riding on the modelled ones, with the waits for a core the kernel
  reported (:class:`~sim.calibration_scenario.TierModel`);
* the aggregator: one event loop, so a station of one worker holding a hub call for the
  hub's loop CPU per call and its waits for a core, the same model as a gateway's.

The step's traffic becomes a scenario (``federation.yaml``): direct calls at each operator
(what its gateway served less what the hub forwarded to it) and one application through
the aggregator at the hub's rate and API mix. Simulated, it is compared tier by tier: the
gateways' and the aggregator's spans are predictions (live histogram against the simulated
calls' latency); grants and backends are fits (live histogram against the fitted
distribution the simulation draws from), shown so a poor family is seen.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from operators.camara import WORKLOADS
from operators.core import CoreSpec
from sim.calibration_fit import Fit, Histogram, relative_error
from sim.calibration_live import HUB, LiveBackends, LiveStep, OperatorStep, api_name
from sim.calibration_scenario import (
    PURPOSE,
    TierModel,
    calibrated_document,
    fit_tiers,
    fitted,
    mean_of,
    operation_mix,
)
from sim.metrics import quantile
from sim.results import RunResult

__all__ = [
    "HUB_APPLICATION",
    "FederationFit",
    "TierRow",
    "federation_document",
    "fit_federation",
    "tier_rows",
]

HUB_APPLICATION = "hub-calls"
"""The simulated application that calls through the aggregator."""
FIT_DRAWS = 20_000
"""Draws from a fitted distribution to read its quantiles."""
AFTER_ANSWER_CAP = 0.9
"""The most of a call's held time that may lie after its answer (as the ladder's fit)."""
DEFAULT_CORE = CoreSpec()
FUNCTIONS = frozenset(DEFAULT_CORE.functions())
"""The network functions a scenario's core has (a series of another name is not fitted)."""
FORWARD = "forward"
"""The aggregator's hop stage of the forwarded call (``ogsim_aggregator_hop_seconds``)."""


def _direct(application: str) -> str:
    return f"{application}-calls"


@dataclass
class FederationFit:
    """What the federation step fitted, by tier."""

    gateways: dict[str, TierModel]
    backends: dict[tuple[str, str], Fit]
    """By (operator, function kind)."""
    hub: TierModel | None
    """The aggregator's loop (None when the step saw no hub call or no CPU figure)."""
    idle_cpu: dict[str, float]
    """Each party's idle loop CPU seconds per second, taken off its calls' CPU."""

    def as_json(self) -> dict[str, Any]:
        return {
            "idle_cpu_per_second_ms": {p: c * 1000 for p, c in self.idle_cpu.items()},
            "gateways": {op: m.as_json() for op, m in self.gateways.items()},
            "backends": {f"{op}/{fn}": fit.describe() for (op, fn), fit in self.backends.items()},
            "aggregator": self.hub.as_json() if self.hub is not None else None,
        }


def fit_federation(step: LiveStep, ladder: dict[str, TierModel]) -> FederationFit:
    """Fit every tier the step exercised. ``ladder`` holds the gateway models the saturation
    ladder fitted (one operator's, usually): a modelled call's own CPU and the share of it
    after the answer, which this light step cannot fit again; an operator the ladder did not
    measure takes the first one's (the same code on the same machine)."""
    reference = next(iter(ladder.values()), None)
    gateways = fit_tiers([step])
    for op, model in gateways.items():
        _split_riders(model, step.operators[op], step.idle_cpu.get(op), ladder.get(op, reference))
    backends = {}
    for op, served in step.operators.items():
        for function, histogram in served.backends.items():
            fit = fitted(histogram)
            if fit is not None and function in FUNCTIONS:
                backends[(op, function)] = fit
    return FederationFit(gateways, backends, _hub_model(step), dict(step.idle_cpu))


def _split_riders(
    model: TierModel, served: OperatorStep, idle: float | None, measured: TierModel | None
) -> None:
    """Set a gateway's CPU per modelled call at the mix and the share held after the answer.

    The loop's CPU at this mix, less its idle background, is more than its calls' own: token
    grants, CIBA requests and polls, session reads ride on the modelled calls. They keep the
    loop busy but are in no modelled call's span, so they are held after the answer, as the
    metering commit is. A call's own CPU is the ladder's (one cheap operation: costlier ones
    make the riders' share look larger, up to the 0.9 cap). Without the ladder the total is
    held, none of it after the answer.
    """
    own = measured.cpu_per_call if measured is not None else 0.0
    total = _cpu_per_call(served, idle, floor=own)
    if total is None:
        return
    model.cpu_per_call = total
    if measured is None or own <= 0:
        return
    riders = total - own
    model.after_answer = min((own * measured.after_answer + riders) / total, AFTER_ANSWER_CAP)


def _cpu_per_call(served: OperatorStep, idle: float | None, floor: float) -> float | None:
    """A party's loop CPU per call at the step's mix, less what its loop spends idle, and
    never below ``floor`` (a call's own CPU, when known; None: no CPU figure).

    At a light load the background (timers, probes, writers: read just before the step)
    is a large share of the loop's CPU per call, but it is nobody's call: charged to every
    call, as at the ladder's busier levels, it would hold the simulated worker several
    milliseconds per call that live calls never wait. The idle reading is short and noisy;
    the floor keeps a high one from leaving the calls next to no CPU.
    """
    loop = served.ran if math.isfinite(served.ran) else served.cpu
    if not (math.isfinite(loop) and served.call_count > 0):
        return None
    background = (idle or 0.0) * served.seconds
    return max((loop - background) / served.call_count, floor, 1e-6)


def _hub_model(step: LiveStep) -> TierModel | None:
    """The aggregator's loop as a one-worker station: its CPU per hub call (None when the
    step saw no hub call or could not read the hub's CPU: holding the hub's whole span
    instead would count the operators' time twice)."""
    hub = step.hub
    if hub is None or hub.call_count <= 0:
        return None
    latency = fitted(hub.all_calls(), 1)
    cpu = _cpu_per_call(hub, step.idle_cpu.get(HUB), floor=0.0)
    if latency is None or cpu is None:
        return None
    return TierModel(HUB, latency, cpu, None)


def _forwarded(step: LiveStep) -> dict[str, float]:
    """Hub calls forwarded to each operator during the step."""
    if step.hub is None:
        return {}
    return {
        operator: histogram.count
        for (stage, operator), histogram in step.hub.hops.items()
        if stage == FORWARD and operator
    }


def _less(mix: dict[str, float], taken: dict[str, float], share: float) -> dict[str, float]:
    """``mix`` less ``share`` of ``taken`` (the hub's calls forwarded here), none below 0."""
    left = {name: count - share * taken.get(name, 0.0) for name, count in mix.items()}
    return {name: round(count, 3) for name, count in left.items() if count > 0.5}


def federation_document(
    fit: FederationFit,
    step: LiveStep,
    duration: float,
    backends: Mapping[str, LiveBackends] | None = None,
) -> dict[str, Any]:
    """The step as a scenario: the fitted tiers, direct calls at each operator less the hub's
    forwarded ones, and the hub's application through the aggregator.

    Each operator's network functions are sized and protected as ``backends`` says the live
    one's were (servers, waiting room, buffer; the defaults for an operator it does not name),
    with the service times fitted from the step where its calls reached them."""
    backends = backends or {}
    document = calibrated_document(fit.gateways, step, duration, backends=backends)
    document["name"] = "calibrated-federation"
    document["description"] = "the live federation's realistic users, fitted tier by tier"
    forwarded = _forwarded(step)
    hub_mix = operation_mix(step.hub.calls) if step.hub is not None else {}
    hub_total = sum(forwarded.values())
    applications = document["traffic"]["applications"]
    for op, spec in document["topology"]["operators"].items():
        site = spec["data_centres"]["live"]
        grants = step.operators[op].grants if op in step.operators else None
        granted = fitted(grants)
        if granted is not None:
            site["identity"]["service_time"] = granted.service_time().model_dump(mode="json")
        core = spec.get("core", {})
        live = backends[op].core if op in backends else DEFAULT_CORE
        for (owner, function), backend in fit.backends.items():
            if owner == op:
                slot = getattr(live, function).model_dump(mode="json")
                slot["service_time"] = backend.service_time().model_dump(mode="json")
                core[function] = slot
        if core:
            spec["core"] = core
        app = applications.get(_direct(op))
        served = step.operators.get(op)
        if app is None or served is None:
            continue
        share = forwarded.get(op, 0.0) / max(sum(hub_mix.values()), 1.0)
        mix = _less(operation_mix(served.calls), hub_mix, share)
        if not mix:
            del applications[_direct(op)]
            continue
        app["apis"] = mix
        app["arrival"]["rate"] = round(sum(mix.values()) / step.seconds, 4)
    if fit.hub is not None and step.hub is not None and hub_mix and hub_total:
        service = fit.hub.gateway_service(step.hub)
        document["topology"]["aggregator"] = {
            "replicas": 1,
            "workers": 1,
            "service_time": service,
        }
        waits = _hub_waits(step, mean_of(service))
        if waits > 0:
            document["topology"]["aggregator"]["waits"] = {
                "distribution": "exponential",
                "mean": round(waits, 6),
            }
        applications[HUB_APPLICATION] = {
            "purpose": PURPOSE,
            "via_aggregator": True,
            "arrival": {"process": "poisson", "rate": round(hub_total / step.seconds, 4)},
            "apis": {name: round(count, 3) for name, count in sorted(hub_mix.items())},
            "operators": {op: round(n / hub_total, 4) for op, n in sorted(forwarded.items())},
            "client": {"timeout": 10.0},
        }
    return copy.deepcopy(document)


def _hub_waits(step: LiveStep, held: float) -> float:
    """Mean seconds of a hub call spent neither on the hub's loop nor at the operator's
    gateway: the live hub's span less its loop's time per call (``held``) less what the
    operators' gateways took for calls of the hub's mix (each operation's mean span at each
    operator, weighted by what the hub forwarded where). The finder's and token endpoint's
    round trips and the forwarded call's transport, as one exponential wait.

    A fit to the hub's live mean, so the simulated hub's mean is not a prediction (its
    spread and its queue are). The gateways' time counts once per forwarded call: the calls
    to numbers nobody serves (the finder answers 404 at once) reach no gateway."""
    hub = step.hub
    spans = hub.all_calls() if hub is not None else None
    forwarded = _forwarded(step)
    total = sum(forwarded.values())
    if hub is None or spans is None or not total or spans.count <= 0:
        return 0.0
    gateway = 0.0
    reached = min(total / spans.count, 1.0)  # hub calls that were forwarded at all
    for key, histogram in hub.calls.items():
        share = reached * histogram.count / spans.count
        for op, count in forwarded.items():
            served = step.operators.get(op)
            if served is None:
                continue
            span = served.calls.get(key) or served.all_calls()
            if span is not None and span.count > 0:
                gateway += share * count / total * span.mean
    return max(spans.mean - held - gateway, 0.0)


@dataclass(frozen=True)
class TierRow:
    """One tier, live beside the model: ``basis`` says whether the model's figures were
    simulated (a prediction) or read off the fitted distribution (a fit)."""

    tier: str
    basis: str
    calls: float
    live_p50_ms: float
    model_p50_ms: float
    live_p95_ms: float
    model_p95_ms: float

    @property
    def errors(self) -> dict[str, float]:
        return {
            "p50": relative_error(self.model_p50_ms, self.live_p50_ms),
            "p95": relative_error(self.model_p95_ms, self.live_p95_ms),
        }

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), **{f"error_{k}": v for k, v in self.errors.items()}}


def _fit_quantiles(fit: Fit, seed: str) -> tuple[float, float]:
    draw = fit.service_time().sampler()
    rng = random.Random(seed)
    samples = sorted(draw(rng) for _ in range(FIT_DRAWS))
    return samples[FIT_DRAWS // 2] * 1000, samples[int(FIT_DRAWS * 0.95)] * 1000


ONE_CALL = frozenset(name for name, operations in WORKLOADS.items() if len(operations) == 1)
"""Units of work that are one HTTP call: their simulated latency is that call's span. A QoD
session is two (create, then delete): its unit's latency is no one call's, so the spans are
compared without it."""


def _one_call(calls: dict[tuple[str, str], Histogram]) -> Histogram | None:
    merged: Histogram | None = None
    for (_api, operation), histogram in calls.items():
        if api_name(operation) in ONE_CALL:
            merged = histogram if merged is None else merged.plus(histogram)
    return merged


def _simulated(result: RunResult, application: str) -> tuple[float, float]:
    """p50 and p95 in ms of one application's successful one-call units in a run."""
    merged = None
    for (_op, api, app), stats in result.keys.items():
        if app != application or api not in ONE_CALL or stats.latency.count == 0:
            continue
        if merged is None:
            merged = copy.deepcopy(stats.latency)
        else:
            merged.merge(stats.latency)
    if merged is None:
        return math.nan, math.nan
    p50, p95 = quantile(merged, 0.5), quantile(merged, 0.95)
    return (p50 or math.nan) * 1000, (p95 or math.nan) * 1000


def _live(histogram: Histogram | None) -> tuple[float, float]:
    if histogram is None or histogram.count <= 0:
        return math.nan, math.nan
    return histogram.quantile(0.5) * 1000, histogram.quantile(0.95) * 1000


def _row(tier: str, basis: str, live: Histogram | None, model: tuple[float, float]) -> TierRow:
    p50, p95 = _live(live)
    return TierRow(tier, basis, live.count if live else 0.0, p50, model[0], p95, model[1])


def tier_rows(fit: FederationFit, step: LiveStep, result: RunResult) -> list[TierRow]:
    """Each tier of the step: gateways and the aggregator simulated (their one-call units),
    grants and backends fitted."""
    applications = result.scenario.traffic.applications
    rows = [
        _row(f"{op} gateway", "simulated", _one_call(served.calls), _simulated(result, _direct(op)))
        for op, served in sorted(step.operators.items())
        if _direct(op) in applications
    ]
    if step.hub is not None and HUB_APPLICATION in applications:
        hub = _simulated(result, HUB_APPLICATION)
        rows.append(_row("aggregator", "simulated", _one_call(step.hub.calls), hub))
    for op, served in sorted(step.operators.items()):
        granted = fitted(served.grants)
        if granted is not None:
            model = _fit_quantiles(granted, f"{op}:grants")
            rows.append(_row(f"{op} grants", "fitted", served.grants, model))
    for (op, function), backend in sorted(fit.backends.items()):
        model = _fit_quantiles(backend, f"{op}:{function}")
        rows.append(
            _row(f"{op} {function}", "fitted", step.operators[op].backends[function], model)
        )
    return rows
