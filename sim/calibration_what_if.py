"""What the calibrated federation would do where live cannot go: far more traffic, a site lost.

The calibrated scenario is the live federation on this machine, one data centre of one
gateway replica per operator (a uvicorn process is one event loop). From it this module
writes one scenario file with a variant per question, each a change a reader can see in the
YAML, and runs them like ``ogsim run`` (same report, plots and summary):

* ``as-measured``: the lightest load level live ran, as live ran it (the reference);
* ``x<N>-fixed``: N times that traffic on the same single replica per operator;
* ``x<N>-autoscaled``: N times the traffic with the gateway replicas scaled by the
  operators' HorizontalPodAutoscaler object (utilisation target 0.6, one replica at the
  start, Kubernetes' default start-up and behaviour);
* ``two-sites-one-lost``: the busiest level live ran, each operator with two data centres
  of the calibrated replica behind the global load balancer, and one of them lost a third
  of the way through the run (each site guarding the one core with half the operator's
  pooled protection, :func:`per_site`).

The replica's service time, wake-up and after-answer work are the calibrated ones, so a
what-if keeps what was measured and changes only what its name says. What it cannot know:
the replicas of a bigger deployment would run on cores of their own (each keeps the waits
for a core measured on this machine), and a new replica's start-up time is Kubernetes'
typical 20 s, not a measurement.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.calibration_scenario import mean_of, write
from sim.results import RunResult
from sim.scenario import PoliciesSpec, Scenario, guard_policies, load_scenario

__all__ = [
    "AUTOSCALE_TARGET",
    "WhatIfRow",
    "per_site",
    "what_if_document",
    "what_if_row",
    "write_what_if",
]

AUTOSCALE_TARGET = 0.6
"""The autoscaled variant's utilisation target (busy share of a replica's worker)."""
HEADROOM = 1.5
"""The autoscaled variant's replica ceiling, as a multiple of the replicas the offered load
needs at the target: room for the queue that builds while replicas start."""


def _rates(document: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(app["arrival"]["rate"])
        for name, app in document["traffic"]["applications"].items()
    }


def _site(document: dict[str, Any], operator: str) -> dict[str, Any]:
    site: dict[str, Any] = document["topology"]["operators"][operator]["data_centres"]["live"]
    return site


def per_site(policies: dict[str, Any], sites: int) -> dict[str, Any]:
    """Each of ``sites`` data centres' share of an operator's pooled protection (a scenario's
    ``policies``): :meth:`GuardSettings.split <operators.integrator.GuardSettings.split>` of
    the guard they describe, written back, the rest of them kept. The simulation builds every
    data centre's guards from the operator's policies, so a second site given the pooled ones
    whole would double what guards the one shared core."""
    guard = PoliciesSpec.model_validate(policies).guard_settings()
    return {**policies, **guard_policies(guard.split(sites))}


def _offered_by_operator(document: dict[str, Any]) -> dict[str, float]:
    offered: dict[str, float] = {}
    for app in document["traffic"]["applications"].values():
        for operator, share in app["operators"].items():
            offered[operator] = offered.get(operator, 0.0) + app["arrival"]["rate"] * share
    return offered


def _ceiling(document: dict[str, Any], operator: str, scale: float) -> int:
    """Replicas the operator's scaled traffic needs at the target utilisation, with room."""
    site = _site(document, operator)
    busy = (
        _offered_by_operator(document).get(operator, 0.0)
        * scale
        * mean_of(site["gateway"]["service_time"])
    )
    workers = int(site["gateway"]["workers"])
    return max(2, math.ceil(HEADROOM * busy / (workers * AUTOSCALE_TARGET)))


def what_if_document(
    light: dict[str, Any], heavy: dict[str, Any], scale: float, duration: float
) -> dict[str, Any]:
    """One scenario with the four variants (see the module's docstring), built from the
    calibrated documents of the lightest and the busiest live level."""
    document = copy.deepcopy(light)
    document["name"] = "calibrated-what-if"
    document["description"] = (
        f"the calibrated federation at {scale:g} x its light traffic, and with a data centre lost"
    )
    document["duration"] = duration
    label = f"x{scale:g}"
    scaled = {
        f"traffic.applications.{name}.arrival.rate": round(rate * scale, 4)
        for name, rate in _rates(light).items()
    }
    autoscaled: dict[str, Any] = dict(scaled)
    two_sites: dict[str, Any] = {
        f"traffic.applications.{name}.arrival.rate": rate for name, rate in _rates(heavy).items()
    }
    faults = []
    for operator in document["topology"]["operators"]:
        autoscaled[f"topology.operators.{operator}.data_centres.live.autoscale"] = {
            "target": AUTOSCALE_TARGET,
            "min_replicas": 1,
            "max_replicas": _ceiling(light, operator, scale),
        }
        site = _site(heavy, operator)
        two_sites[f"topology.operators.{operator}.data_centres"] = {
            "live": copy.deepcopy(site),
            "live-b": copy.deepcopy(site),
        }
        policies = heavy["topology"]["operators"][operator].get("policies", {})
        if "buffer" in policies:  # the live protection, pooled: each site guards with half
            two_sites[f"topology.operators.{operator}.policies"] = per_site(policies, 2)
        faults.append(
            {
                "name": f"{operator}-site-lost",
                "kind": "data_centre_down",
                "operator": operator,
                "data_centre": "live-b",
                "at": round(duration / 3, 3),
            }
        )
    two_sites["faults"] = faults
    document["variants"] = {
        "as-measured": {"description": "the lightest live level, as measured"},
        f"{label}-fixed": {
            "description": f"{scale:g} x the traffic on the same single replica per operator",
            "set": scaled,
        },
        f"{label}-autoscaled": {
            "description": f"{scale:g} x the traffic, gateway replicas autoscaled on"
            f" utilisation (target {AUTOSCALE_TARGET:g})",
            "set": autoscaled,
        },
        "two-sites-one-lost": {
            "description": "the busiest live level over two data centres per operator, one"
            f" lost at {duration / 3:g} s",
            "set": two_sites,
        },
    }
    return document


@dataclass(frozen=True)
class WhatIfRow:
    """One variant's answer: what was offered and served, how fast, at what cost."""

    variant: str
    offered_per_second: float
    goodput_per_second: float
    goodput_ratio: float
    p50_ms: float
    p95_ms: float
    replicas_max: float
    replica_hours: float
    offered: int
    """Calls offered in the run."""
    failures: dict[str, int]
    """Failed calls by error code (CLIENT_TIMEOUT: the client gave up; UNAVAILABLE: a
    backend's buffer or breaker refused), most first."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def failure_shares(self, most: int = 2) -> str:
        """The commonest failure codes as shares of the calls offered: "CLIENT_TIMEOUT 69%"."""
        if not self.failures or not self.offered:
            return "-"
        top = list(self.failures.items())[:most]
        return ", ".join(f"{code} {count / self.offered:.0%}" for code, count in top)


def what_if_row(scenario: Scenario, result: RunResult, latency: tuple[float, float]) -> WhatIfRow:
    """The row of one variant's run; ``latency`` is its successful calls' p50 and p95 in
    seconds."""
    totals = result.counts()
    p50, p95 = latency
    _, counts = result.replica_counts()
    offered = totals["offered_per_second"]
    failures: dict[str, int] = {}
    for stats in result.keys.values():
        for code, count in stats.errors.items():
            failures[code] = failures.get(code, 0) + count
    return WhatIfRow(
        scenario.variant,
        offered,
        totals["goodput_per_second"],
        totals["goodput_per_second"] / offered if offered else math.nan,
        p50 * 1000,
        p95 * 1000,
        max(counts) if counts else math.nan,
        totals["gateway_replica_hours"],
        int(totals["operations"]),
        dict(sorted(failures.items(), key=lambda item: -item[1])),
    )


def write_what_if(path: Path, document: dict[str, Any]) -> list[Scenario]:
    """Write the what-if document as YAML and load every variant back (the loader's check)."""
    write(document, path)
    return load_scenario(path)
