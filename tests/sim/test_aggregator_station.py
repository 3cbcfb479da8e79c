"""The aggregator's own processing as a station: its service time is in every hub call's
latency, a saturated hub queues and serves no more than its workers allow, and a topology
without the station runs as before (the hub costs no time)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from operators import ConfigFileError
from sim.engine import World
from sim.report import summary
from sim.results import RunResult
from sim.scenario import load_scenario
from sim.tiers import Answer
from sim.tiers.aggregator import federation_config
from sim.tiers.operator import Reply

ROOT = Path(__file__).resolve().parents[2]

HUB = """\
name: hub
seed: 5
duration: 60
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      subscribers: 40
      data_centres:
        mad-1: {gateway: {replicas: 4}}
      policies: {throttling: {enabled: false}}
traffic:
  applications:
    marketplace:
      via_aggregator: true
      arrival: {process: constant, rate: 5}
      apis: {device-reachability-status: 1.0}
      client: {timeout: 100.0}
"""


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(HUB, encoding="utf-8")
    return path


def _run(path: Path, **overrides: Any) -> tuple[World, RunResult]:
    (scenario,) = load_scenario(path, overrides=overrides)
    world = World(scenario)
    return world, world.run()


def _totals(result: RunResult) -> tuple[int, int, float]:
    """Completed and succeeded calls, and their exact mean latency (the sketch's own sum)."""
    completed = sum(k.completed for k in result.keys.values())
    ok = sum(k.ok for k in result.keys.values())
    latency = sum(k.latency.sum for k in result.keys.values())
    count = sum(k.latency.count for k in result.keys.values())
    return completed, ok, latency / count


def test_without_the_station_the_hub_costs_no_time(hub: Path) -> None:
    world, result = _run(hub)
    assert world.aggregator is not None and world.aggregator.station is None
    explicit_world, explicit = _run(hub, **{"topology.aggregator": None})
    assert explicit_world.aggregator is not None and explicit_world.aggregator.station is None
    assert _totals(explicit) == _totals(result)
    assert summary([explicit]) == summary([result])


def _hub_latencies(world: World) -> list[float]:
    """Each hub call's time from reaching the hub to its answer, in the order calls came."""
    aggregator = world.aggregator
    assert aggregator is not None
    handle, env = aggregator.handle, world.env
    latencies: list[float] = []

    def timed(client: Any, api: str, line: Any, reply: Reply) -> None:
        arrived, index = env.now, len(latencies)
        latencies.append(math.nan)

        def answered(answer: Answer) -> None:
            latencies[index] = env.now - arrived
            reply(answer)

        handle(client, api, line, answered)

    aggregator.handle = timed  # type: ignore[method-assign]
    return latencies


def test_at_light_load_each_hub_call_takes_the_service_time_longer(hub: Path) -> None:
    service = 0.05  # 1 worker, a call every 0.2 s: no call ever waits for the hub
    station = {"workers": 1, "service_time": {"distribution": "constant", "value": service}}
    runs = []
    for overrides in ({}, {"topology.aggregator": station}):
        (scenario,) = load_scenario(hub, overrides=overrides)
        world = World(scenario)
        latencies = _hub_latencies(world)
        runs.append((world, latencies, world.run()))
    (_, free, free_result), (world, costly, costly_result) = runs
    assert len(free) == len(costly) >= 299  # a call every 0.2 s for 60 s
    answered = [i for i, x in enumerate(costly) if not math.isnan(x)]
    assert len(answered) >= len(costly) - 1  # the last may still be on its way at the end
    for i in answered:
        assert costly[i] == pytest.approx(free[i] + service, abs=1e-9), i
    # The client sees the same: its mean latency (the sketch's exact sum) grows by the time.
    assert _totals(costly_result)[2] == pytest.approx(_totals(free_result)[2] + service, abs=2e-3)
    assert world.aggregator is not None and world.aggregator.station is not None
    assert world.aggregator.station.queue_length == 0


@pytest.mark.parametrize(("replicas", "workers"), [(1, 1), (2, 3)])
def test_a_saturated_hub_queues_and_serves_at_its_capacity(
    hub: Path, replicas: int, workers: int
) -> None:
    service = 0.1
    capacity = replicas * workers / service  # calls per second the hub can process
    world, result = _run(
        hub,
        **{
            "topology.aggregator": {
                "replicas": replicas,
                "workers": workers,
                "service_time": {"distribution": "constant", "value": service},
            },
            "traffic.applications.marketplace.arrival.rate": 2 * capacity,
        },
    )
    completed, ok, mean = _totals(result)
    duration = result.scenario.duration
    assert result.totals()["operations"] == pytest.approx(2 * capacity * duration, abs=1)
    # Every call that left the hub by the end was answered; no more than capacity x time did.
    assert capacity * duration - 2 * replicas * workers <= ok <= capacity * duration
    assert completed == ok
    station = world.aggregator.station if world.aggregator is not None else None
    assert station is not None and station.busy == replicas * workers
    # Half of what arrived is still waiting; the calls that got through queued more and more:
    # the one that came at t left the hub at 2t, so their latencies spread over 0..duration/2.
    assert station.queue_length == pytest.approx(capacity * duration, abs=2 * replicas * workers)
    assert mean == pytest.approx(duration / 4, abs=0.5)


def test_the_hubs_waits_delay_each_call_but_hold_no_worker(hub: Path) -> None:
    service, waits = 0.1, 0.3
    station = {
        "workers": 1,
        "service_time": {"distribution": "constant", "value": service},
        "waits": {"distribution": "constant", "value": waits},
    }
    (scenario,) = load_scenario(hub, overrides={"topology.aggregator": station})
    world = World(scenario)
    latencies = _hub_latencies(world)
    world.run()
    (scenario,) = load_scenario(hub, overrides={"topology.aggregator": {**station, "waits": None}})
    plain = World(scenario)
    without = _hub_latencies(plain)
    plain.run()
    # A call every 0.2 s: the hub's one worker is busy half the time, so with the 0.3 s of
    # waits held it would queue without end; the waits hold nothing, so none queues.
    answered = [i for i, x in enumerate(latencies) if not math.isnan(x)]
    assert len(answered) >= len(latencies) - 2
    for i in answered:
        assert latencies[i] == pytest.approx(without[i] + waits, abs=1e-9), i
    assert world.aggregator is not None and world.aggregator.station is not None
    assert world.aggregator.station.queue_length == 0


def test_the_hub_station_draws_from_its_own_seeded_stream(hub: Path) -> None:
    spec = {"workers": 2, "service_time": {"distribution": "exponential", "mean": 0.05}}
    runs = [summary([_run(hub, **{"topology.aggregator": spec})[1]]) for _ in range(2)]
    assert runs[0] == runs[1]
    (other,) = load_scenario(hub, seed=6, overrides={"topology.aggregator": spec})
    assert summary([World(other).run()]) != runs[0]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"workers": 0, "service_time": {"distribution": "constant", "value": 0.1}}, "workers"),
        ({"replicas": 0, "service_time": {"distribution": "constant", "value": 0.1}}, "replicas"),
        ({"workers": 2}, "service_time"),
        ({"service_time": {"distribution": "constant", "value": -1}}, "service_time"),
        ({"service_time": {"distribution": "exponential", "mean": 0.1}, "wake": 1}, "wake"),
    ],
)
def test_bad_values_name_the_field(hub: Path, value: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(hub, overrides={"topology.aggregator": value})
    assert f"topology.aggregator.{field}" in str(caught.value)


def test_the_scenarios_federation_carries_each_operators_core_and_guards(tmp_path: Path) -> None:
    """The federation config the simulated aggregator is built from describes the operators
    as the scenario sized and guarded them, core and protection included, not the defaults."""
    document = yaml.safe_load((ROOT / "scenarios" / "baseline.yaml").read_text())
    es = document["topology"]["operators"]["telco-es"]
    es["core"] = {"location_server": {
        "name": "gmlc", "kind": "location_server", "servers": 11, "queue_limit": 7,
        "service_time": {"distribution": "exponential", "mean": 0.05},
    }}  # fmt: skip
    es.setdefault("policies", {})["buffer"] = {"max_concurrent": 3, "max_waiting": 5}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(document))
    world = World(load_scenario(path)[0])
    federation = federation_config(world.scenario.topology, world.operators, {})
    assert federation.operator("telco-es").core.location_server.servers == 11
    assert federation.operator("telco-es").core == world.operators["telco-es"].spec.core
    assert federation.operator("telco-fr").core == world.operators["telco-fr"].spec.core
    protection = federation.operator("telco-es").protection
    assert (protection.max_concurrent, protection.max_waiting) == (3, 5)
    policies = world.operators["telco-fr"].spec.policies
    assert federation.operator("telco-fr").protection == policies.guard_settings()
