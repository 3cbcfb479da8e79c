"""The federation step's tiers: backends, grants and the aggregator fitted from their own
histograms, the step's traffic as a scenario, and the tier-by-tier table (synthetic live
figures, so what the fit should find is known)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from federation import default_federation
from operators.core import CoreSpec
from operators.core.description import LognormalServiceTime
from operators.gateway.metrics import LATENCY_BUCKETS
from operators.integrator import GuardSettings
from operators.policies import CircuitBreakerConfig
from sim.calibration import calibrate
from sim.calibration_fit import fit_histogram, histogram_of
from sim.calibration_live import HUB, LiveBackends, LiveStep, OperatorStep, live_backends
from sim.calibration_scenario import TierModel, calibrated_document
from sim.calibration_tiers import HUB_APPLICATION, federation_document, fit_federation
from sim.calibration_what_if import per_site, what_if_document
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]

SECONDS = 20.0
SIM_SWAP = ("sim-swap", "checkSimSwap")


def _exponential(mean: float, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.expovariate(1 / mean) for _ in range(count)]


def _gateway(rate: float) -> OperatorStep:
    """telco-es serving ``rate`` SIM swap checks a second (the hub's forwarded ones among
    them), 2 ms of its loop each, its HLR at 8 ms (exponential), its token endpoint at 3 ms."""
    count = int(rate * SECONDS)
    calls = histogram_of(_exponential(0.012, count, 1), LATENCY_BUCKETS)
    grants = histogram_of(_exponential(0.003, 200, 2), LATENCY_BUCKETS)
    hlr = histogram_of(_exponential(0.008, count, 3), LATENCY_BUCKETS)
    return OperatorStep(
        "telco-es",
        SECONDS,
        {SIM_SWAP: calls},
        0.0,
        grants,
        0.002 * count,
        0.002 * count,
        backends={"sim_data_register": hlr},
    )


def _hub(rate: float) -> OperatorStep:
    """The aggregator forwarding ``rate`` SIM swap checks a second to telco-es, 1 ms of its
    loop each."""
    count = int(rate * SECONDS)
    calls = histogram_of(_exponential(0.02, count, 4), LATENCY_BUCKETS)
    forward = histogram_of(_exponential(0.012, count, 5), LATENCY_BUCKETS)
    return OperatorStep(
        HUB,
        SECONDS,
        {("sim-swap", "checkSimSwap"): calls},
        0.0,
        None,
        0.001 * count,
        0.001 * count,
        hops={("forward", "telco-es"): forward},
    )


def _federation_step() -> LiveStep:
    return LiveStep(30, SECONDS, {"telco-es": _gateway(40.0)}, {}, hub=_hub(10.0))


def test_backends_grants_and_the_hub_are_fitted_into_the_scenario(tmp_path: Path) -> None:
    step = _federation_step()
    ladder = TierModel("telco-es", fit_histogram(_gateway(40.0).calls[SIM_SWAP]), 0.0005, None)
    ladder.after_answer = 0.4
    fit = fit_federation(step, {"telco-es": ladder})
    hlr = fit.backends[("telco-es", "sim_data_register")]
    assert hlr.mean == pytest.approx(0.008, rel=0.05)
    assert hlr.family == "exponential"
    assert fit.hub is not None and fit.hub.cpu_per_call == pytest.approx(0.001)
    # 2 ms of loop CPU per call at this mix, 0.5 ms of it the call's own (0.4 of that after
    # the answer, the ladder says): the other 1.5 ms rode on it, after the answer too
    gateway = fit.gateways["telco-es"]
    assert gateway.cpu_per_call == pytest.approx(0.002)
    assert gateway.after_answer == pytest.approx((0.0005 * 0.4 + 0.0015) / 0.002)
    document = federation_document(fit, step, 10.0)
    path = tmp_path / "federation.yaml"
    path.write_text(json.dumps(document))
    scenario = load_scenario(path)[0]
    operator = scenario.topology.operators["telco-es"]
    assert operator.core.sim_data_register.service_time.mean == pytest.approx(0.008, rel=0.05)
    assert operator.core.sim_data_register.servers == 8  # the live default, kept
    assert operator.data_centres["live"].identity.service_time.mean == pytest.approx(0.003, rel=0.1)
    assert scenario.topology.aggregator is not None
    assert scenario.topology.aggregator.workers == 1
    direct = scenario.traffic.applications["telco-es-calls"]
    hub = scenario.traffic.applications[HUB_APPLICATION]
    # the gateway's 40 calls/s include the 10 the hub forwarded
    assert direct.arrival.rate == pytest.approx(30.0, rel=0.01)
    assert hub.arrival.rate == pytest.approx(10.0, rel=0.01)
    assert hub.via_aggregator and hub.operators == {"telco-es": 1.0}
    # what the hub's span has beyond its loop (1 ms) and the gateway's span (about 12 ms):
    # the round trips outside both, as waits that hold no worker
    spans = step.hub.all_calls() if step.hub is not None else None
    gateway_span = step.operators["telco-es"].calls[SIM_SWAP]
    assert spans is not None and scenario.topology.aggregator.waits is not None
    assert scenario.topology.aggregator.waits.mean == pytest.approx(
        spans.mean - 0.001 - gateway_span.mean, rel=1e-3
    )
    assert 0.004 < scenario.topology.aggregator.waits.mean < 0.01


def test_the_tier_table_puts_each_tier_beside_its_model(tmp_path: Path) -> None:
    light = LiveStep(5, 10.0, {"telco-es": _gateway(5.0)}, {})
    result = calibrate([light], tmp_path, sim_seconds=20.0, federation=_federation_step())
    rows = {row.tier: row for row in result.by_tier}
    assert set(rows) == {
        "telco-es gateway",
        "aggregator",
        "telco-es grants",
        "telco-es sim_data_register",
    }
    assert rows["aggregator"].basis == "simulated"
    assert rows["telco-es sim_data_register"].basis == "fitted"
    for row in rows.values():
        assert math.isfinite(row.live_p50_ms) and math.isfinite(row.model_p50_ms)
    # an exponential fitted to an exponential's histogram: quantiles within bucket width
    hlr = rows["telco-es sim_data_register"]
    assert hlr.model_p50_ms == pytest.approx(8 * math.log(2), rel=0.15)
    assert hlr.model_p95_ms == pytest.approx(8 * math.log(20), rel=0.15)
    # a hub call waits for the hub and then for the gateway and its HLR: longer than direct
    assert rows["aggregator"].model_p50_ms > rows["telco-es gateway"].model_p50_ms
    assert (tmp_path / "federation.yaml").exists()
    assert (tmp_path / "by_tier.csv").read_text().startswith("tier,basis,calls,")
    assert (tmp_path / "by_tier.png").stat().st_size > 0
    written = json.loads((tmp_path / "calibration.json").read_text())
    assert len(written["by_tier"]) == 4
    assert written["federation"]["aggregator"]["cpu_per_call_ms"] == pytest.approx(1.0)


def test_the_idle_loops_background_is_no_calls_cpu() -> None:
    """800 calls in 20 s on 1.6 s of loop CPU, 1.0 s of which the loop spends idle anyway
    (0.05 CPU s per s): 0.75 ms a call, not 2 ms."""
    step = replace(_federation_step(), idle_cpu={"telco-es": 0.05, HUB: 0.0})
    fit = fit_federation(step, {})
    assert fit.gateways["telco-es"].cpu_per_call == pytest.approx(0.6 / 800)
    assert fit.hub is not None and fit.hub.cpu_per_call == pytest.approx(0.001)


def _ladder(cpu: float, after_answer: float) -> dict[str, TierModel]:
    model = TierModel("telco-es", fit_histogram(_gateway(40.0).calls[SIM_SWAP]), cpu, None)
    model.after_answer = after_answer
    return {"telco-es": model}


def test_a_call_that_costs_the_ladders_cpu_or_more_keeps_the_ladders_split() -> None:
    """No CPU rides on the calls: nothing more after the answer than the ladder found."""
    fit = fit_federation(_federation_step(), _ladder(0.003, 0.4))
    gateway = fit.gateways["telco-es"]
    assert gateway.cpu_per_call == pytest.approx(0.003)  # the ladder's own, not less
    assert gateway.after_answer == pytest.approx(0.4)


def test_a_noisy_idle_reading_leaves_the_calls_their_own_cpu() -> None:
    """Idle CPU above the step's own would leave calls nothing: a call's own CPU is the floor."""
    step = replace(_federation_step(), idle_cpu={"telco-es": 1.0})
    fit = fit_federation(step, _ladder(0.0005, 0.4))
    assert fit.gateways["telco-es"].cpu_per_call == pytest.approx(0.0005)
    assert fit.gateways["telco-es"].after_answer == pytest.approx(0.4)


def test_without_the_hubs_cpu_the_hub_is_no_station(tmp_path: Path) -> None:
    """Holding the hub's whole span would count the operators' time twice: none at all."""
    step = _federation_step()
    assert step.hub is not None
    blind = replace(step, hub=replace(step.hub, cpu=math.nan, ran=math.nan))
    fit = fit_federation(blind, {})
    assert fit.hub is None
    assert "aggregator" not in federation_document(fit, blind, 10.0)["topology"]


def test_the_hubs_calls_that_reached_no_operator_are_not_simulated_as_forwarded() -> None:
    """200 hub calls, 150 forwarded (the rest to numbers nobody serves): 7.5 calls/s routed."""
    step = _federation_step()
    assert step.hub is not None
    forward = step.hub.hops[("forward", "telco-es")]
    fewer = histogram_of([0.012] * 150, forward.bounds)
    partial = replace(step, hub=replace(step.hub, hops={("forward", "telco-es"): fewer}))
    document = federation_document(fit_federation(partial, {}), partial, 10.0)
    rate = document["traffic"]["applications"][HUB_APPLICATION]["arrival"]["rate"]
    assert rate == pytest.approx(150 / SECONDS)


def test_the_live_backends_size_the_simulated_functions(tmp_path: Path) -> None:
    """A federation run with a resized core is simulated with that size, the fitted service
    times kept; an operator the live federation did not resize keeps the default."""
    step = _federation_step()
    ladder = TierModel("telco-es", fit_histogram(_gateway(40.0).calls[SIM_SWAP]), 0.0005, None)
    fit = fit_federation(step, {"telco-es": ladder})
    default = CoreSpec()
    resized = default.model_copy(
        update={
            "sim_data_register": default.sim_data_register.model_copy(
                update={
                    "servers": 64,
                    "queue_limit": 512,
                    "service_time": LognormalServiceTime(mean=0.05, sigma=0.4),
                }
            ),
            "location_server": default.location_server.model_copy(update={"servers": 40}),
        }
    )
    path = tmp_path / "federation.yaml"
    guard = GuardSettings()
    live = {"telco-es": LiveBackends(resized, guard)}
    path.write_text(json.dumps(federation_document(fit, step, 10.0, live)))
    core = load_scenario(path)[0].topology.operators["telco-es"].core
    assert core.sim_data_register.servers == 64 and core.sim_data_register.queue_limit == 512
    # the live size, but the service time fitted from the step (0.008 s), not the live spec's
    assert core.sim_data_register.service_time.mean == pytest.approx(0.008, rel=0.05)
    assert core.location_server.servers == 40  # no call reached it: the live size, unfitted
    live = {"telco-fr": LiveBackends(resized, guard)}
    path.write_text(json.dumps(federation_document(fit, step, 10.0, live)))
    core = load_scenario(path)[0].topology.operators["telco-es"].core
    assert core.sim_data_register.servers == default.sim_data_register.servers
    assert core.location_server == default.location_server


def test_live_backends_are_read_from_the_federation_file_in_the_run_folder(
    tmp_path: Path,
) -> None:
    config = default_federation()
    es = config.operators[0]
    grown = es.core.model_copy(
        update={"location_server": es.core.location_server.model_copy(update={"servers": 9})}
    )
    guarded = GuardSettings(max_concurrent=5, max_waiting=7, max_wait=0.3, shed_target=0.2)
    config = config.model_copy(
        update={
            "operators": (
                es.model_copy(update={"core": grown, "protection": guarded}),
                *config.operators[1:],
            )
        }
    )
    (tmp_path / "federation.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    backends = live_backends(tmp_path)
    # each data centre's replica has its own core and guards live; the simulation pools them
    sites = len(es.data_centres)
    assert sites == 2
    cores = {op: live.core for op, live in backends.items()}
    assert cores[es.id].location_server.servers == 9 * sites
    assert cores[es.id].location_server.queue_limit == 32 * sites
    assert cores[es.id].location_server.service_time == es.core.location_server.service_time
    default = CoreSpec()
    fr = cores[config.operators[1].id]
    assert fr.sim_data_register.servers == default.sim_data_register.servers * sites
    assert fr.policy_function.queue_limit == (default.policy_function.queue_limit or 0) * sites
    protection = backends[es.id].protection
    assert (protection.max_concurrent, protection.max_waiting) == (5 * sites, 7 * sites)
    assert (protection.max_wait, protection.shed_target) == (0.3, 0.2)
    assert backends[config.operators[1].id].protection == GuardSettings().pooled(sites)
    assert live_backends(None) == {}  # a descriptor without a run folder
    assert live_backends(tmp_path / "elsewhere") == {}


def test_the_live_protection_becomes_the_scenario_policies_the_simulation_builds_it_from(
    tmp_path: Path,
) -> None:
    """The simulation's guards come from a scenario's policies (``PoliciesSpec.guard_settings``):
    the live protection written as policies must give back the very same settings."""
    breaker = CircuitBreakerConfig(minimum_number_of_calls=7, wait_duration_in_open_state=3.0)
    for guard in (
        GuardSettings(),
        GuardSettings(max_concurrent=3, max_waiting=0, max_wait=0.2, call_timeout=0.9,
                      shed_target=0.15, breaker=breaker),
    ):
        live = LiveBackends(CoreSpec(), guard)
        light = LiveStep(5, 10.0, {"telco-es": _gateway(5.0)}, {})
        model = TierModel("telco-es", fit_histogram(_gateway(40.0).calls[SIM_SWAP]), 0.0005, None)
        document = calibrated_document({"telco-es": model}, light, 5.0, backends={"telco-es": live})
        path = tmp_path / "calibrated.yaml"
        path.write_text(yaml.safe_dump(document))
        spec = load_scenario(path)[0].topology.operators["telco-es"]
        assert spec.policies.guard_settings() == guard
        assert not spec.policies.throttling.enabled  # the calibration's own choice is kept


def test_each_of_two_sites_guards_with_half_the_pooled_protection(tmp_path: Path) -> None:
    """The lost-site what-if gives the operator two data centres, each with guards of its own
    in front of the one pooled core: each gets half, so together they are live's total."""
    replica = GuardSettings(
        max_concurrent=6, max_waiting=9, breaker=CircuitBreakerConfig(minimum_number_of_calls=7)
    )
    pooled = LiveBackends(CoreSpec(), replica.pooled(2)).scenario_policies()
    path = tmp_path / "site.yaml"
    document = yaml.safe_load((ROOT / "scenarios" / "baseline.yaml").read_text())
    document["topology"]["operators"]["telco-es"]["policies"] = per_site(pooled, 2)
    path.write_text(yaml.safe_dump(document))
    spec = load_scenario(path)[0].topology.operators["telco-es"]
    assert spec.policies.guard_settings() == replica
    assert per_site({**pooled, "throttling": {"enabled": False}}, 2)["throttling"] == {
        "enabled": False
    }  # what is not a guard's is kept
    # the what-if's lost-site variant is where it applies: its two sites together are live's
    model = TierModel("telco-es", fit_histogram(_gateway(40.0).calls[SIM_SWAP]), 0.0005, None)
    light = LiveStep(5, 10.0, {"telco-es": _gateway(5.0)}, {})
    backends = {"telco-es": LiveBackends(CoreSpec(), replica.pooled(2))}
    calibrated = calibrated_document({"telco-es": model}, light, 60.0, backends=backends)
    what_if = tmp_path / "what-if.yaml"
    what_if.write_text(yaml.safe_dump(what_if_document(calibrated, calibrated, 10.0, 60.0)))
    variants = {s.variant: s for s in load_scenario(what_if)}
    lost = variants["two-sites-one-lost"].topology.operators["telco-es"]
    assert len(lost.data_centres) == 2 and lost.policies.guard_settings() == replica
    whole = variants["as-measured"].topology.operators["telco-es"]
    assert whole.policies.guard_settings() == replica.pooled(2)


def test_calibrate_carries_the_live_backends_into_every_scenario(tmp_path: Path) -> None:
    default = CoreSpec()
    resized = default.model_copy(
        update={"location_server": default.location_server.model_copy(update={"servers": 13})}
    )
    light = LiveStep(5, 10.0, {"telco-es": _gateway(5.0)}, {})
    calibrate(
        [light],
        tmp_path,
        sim_seconds=5.0,
        federation=_federation_step(),
        backends={"telco-es": LiveBackends(resized, GuardSettings(max_concurrent=11))},
    )
    written = [
        tmp_path / "calibrated.yaml",
        tmp_path / "federation.yaml",
        *sorted((tmp_path / "levels").glob("*.yaml")),
    ]
    assert len(written) > 3
    for path in written:
        operator = load_scenario(path)[0].topology.operators["telco-es"]
        assert operator.core.location_server.servers == 13, path.name
        assert operator.policies.buffer.max_concurrent == 11, path.name
