"""Gateway replicas in the simulation: scaled by the shared Autoscaler, healed after failures.

The pool tests drive a :class:`GatewayPool` with evenly spaced calls of a fixed service time
(no random draws), so every time below follows from the rates; the scenario tests run the
engine on small files and the shipped ``autoscaling.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import simpy

from operators import ConfigFileError
from operators.policies import AutoscalerConfig
from sim.engine import run_scenario
from sim.report import summary
from sim.scenario import load_scenario
from sim.tiers.gateway_pool import GatewayPool, Replica, ReplicaState

AUTOSCALING = Path(__file__).resolve().parents[2] / "scenarios" / "research" / "autoscaling.yaml"


@dataclass
class Load:
    """Calls at ``rate(t)`` per second, evenly spaced, each holding a worker ``service`` s."""

    env: simpy.Environment
    pool: GatewayPool
    rate: Callable[[float], float]
    service: float = 0.1
    picks: list[tuple[float, Replica]] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    served: int = 0
    lost: list[float] = field(default_factory=list)

    def run(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            yield env.timeout(1.0 / self.rate(env.now))
            replica = self.pool.pick()
            if replica is None:
                self.refused.append(env.now)
                continue
            self.picks.append((env.now, replica))
            replica.serve(self.service, _Call(self))


class _Call:
    def __init__(self, load: Load) -> None:
        self.load = load

    def __call__(self) -> None:
        self.load.served += 1

    def lost(self) -> None:
        self.load.lost.append(self.load.env.now)


def counts(env: simpy.Environment, pool: GatewayPool) -> list[tuple[float, int, int]]:
    """(time, replicas, in rotation) every second, filled while the run goes on."""
    seen: list[tuple[float, int, int]] = []

    def watch() -> Generator[simpy.Event, Any, None]:
        while True:
            seen.append((env.now, len(pool.replicas), len(pool.rotation)))
            yield env.timeout(1.0)

    env.process(watch())
    return seen


def scaled_pool(
    rate: Callable[[float], float], *, startup: float = 20.0
) -> tuple[simpy.Environment, GatewayPool, Load]:
    """One replica of one worker (10 calls/s at 0.1 s each), autoscaled towards 0.6."""
    env = simpy.Environment()
    pool = GatewayPool(env, 1, 1, startup=startup, liveness=30.0)
    load = Load(env, pool, rate)
    env.process(load.run())
    env.process(pool.autoscale(AutoscalerConfig(target=0.6, min_replicas=1, max_replicas=10)))
    return env, pool, load


def test_scale_up_after_a_step_and_no_work_before_a_replica_is_ready() -> None:
    env, pool, load = scaled_pool(lambda t: 2.0 if t < 90 else 15.0)
    seen = counts(env, pool)
    env.run(until=600)
    before = [d for d in pool.decisions if d.at <= 90]
    assert before and all(d.desired == 1 for d in before)
    first_up = next(d for d in pool.decisions if d.desired > d.current)
    # The first sync after the step saw a full period at 100 % of one worker: 2 replicas.
    assert (first_up.at, first_up.desired) == (105.0, 2)
    # At 120 s the new replica is not counted yet (the HPA's readiness delay, 30 s): no
    # change; at 135 s it is.
    changes = [(d.at, d.desired) for d in pool.decisions if d.desired != d.current]
    assert changes[:2] == [(105.0, 2), (135.0, 3)]
    # 15 calls/s of 0.1 s at 0.6 per replica: three replicas in the end; the backlog of the
    # first minute made it overshoot by one, held for the 300 s down window.
    assert max(n for _, n, _ in seen) == 4
    assert len(pool.replicas) == len(pool.rotation) == 3
    added = [r for r in pool.replicas if r.started > 0]
    assert len(added) >= 2
    for replica in added:
        first_pick = min(t for t, r in load.picks if r is replica)
        assert first_pick >= replica.started + 20.0
        assert first_pick < replica.started + 21.0  # in rotation as soon as it is ready
    assert load.refused == [] and load.lost == []


def test_scale_down_waits_for_the_stabilisation_window_and_drains() -> None:
    env, pool, load = scaled_pool(lambda t: 15.0 if t < 400 else 1.0)
    seen = counts(env, pool)
    env.run(until=1000)
    downs = [d for d in pool.decisions if d.desired < d.current and d.at > 400]
    assert downs
    # The last high recommendation came at the sync of 390 s (or 405 s, half of its period
    # still busy); the 300 s down window keeps it, so the count holds until then.
    assert 690 <= downs[0].at <= 705
    assert all(n == 3 for t, n, _ in seen if 400 <= t < downs[0].at)
    assert len(pool.replicas) == 1
    # Draining replicas finished what they held: nothing lost, every call served.
    assert load.lost == [] and load.refused == []
    assert load.served == len(load.picks) - sum(r.busy + r.queue_length for r in pool.replicas)


def test_a_failed_replica_is_replaced_within_liveness_plus_startup() -> None:
    env = simpy.Environment()
    pool = GatewayPool(env, 3, 1, startup=20.0, liveness=30.0)
    load = Load(env, pool, lambda t: 30.0)  # every worker always busy
    env.process(load.run())
    seen = counts(env, pool)

    def crash() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(50.5)
        assert pool.fail(1) == 1

    env.process(crash())
    env.run(until=150)
    assert pool.failures == pool.replacements == 1
    assert load.lost and all(50.5 <= t <= 50.6 for t in load.lost)  # its calls, lost
    assert all(n == 3 for _, n, _ in seen)  # the failed one counts until it is replaced
    ready = {t: k for t, _, k in seen}
    assert ready[50.0] == 3 and ready[51.0] == ready[100.0] == 2
    assert ready[101.0] == ready[149.0] == 3
    replacement = next(r for r in pool.replicas if r.started > 0)
    assert replacement.started == pytest.approx(80.5)  # liveness delay after the crash
    assert min(t for t, r in load.picks if r is replacement) >= 100.5
    assert load.refused == []


def test_scaling_down_removes_failed_and_starting_replicas_before_ready_ones() -> None:
    env = simpy.Environment()
    pool = GatewayPool(env, 3, 1, startup=20.0, liveness=30.0)
    pool.fail(1)
    pool.scale_to(4)  # one starting replica
    assert [r.state for r in pool.replicas] == [
        ReplicaState.FAILED,
        ReplicaState.READY,
        ReplicaState.READY,
        ReplicaState.STARTING,
    ]
    pool.scale_to(2)
    assert [r.state for r in pool.replicas] == [ReplicaState.READY, ReplicaState.READY]
    env.run(until=100)  # neither the replacement nor the start-up comes back
    assert len(pool.replicas) == len(pool.rotation) == 2


SMALL = """\
name: small-autoscaled
seed: 4
duration: 200
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      subscribers: 20
      data_centres:
        mad-1:
          gateway: {replicas: 2, workers: 2,
                    service_time: {distribution: exponential, mean: 0.1}}
          replica_startup: 10
          liveness_delay: 15
          autoscale: {target: 0.6, min_replicas: 2, max_replicas: 6}
traffic:
  applications:
    bank:
      plan: enterprise
      purpose: dpv:RequestedServiceProvision
      arrival: {process: poisson, rate: 12}
      spikes: [{name: rush, at: 60, duration: 80, factor: 3}]
      apis: {sim-swap.check: 1.0}
faults:
  - {name: crash, kind: replica_failure, operator: telco-es, data_centre: mad-1, at: 30.5}
expectations:
  - {metric: replicas_max, window: [0, 60], max: 2}
  - {metric: replicas_max, window: [0, 80], relative_to: rush, reference: start, min: 4}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_replica_failure_in_a_scenario_loses_calls_and_heals(small: Path) -> None:
    (scenario,) = load_scenario(small)
    result = run_scenario(scenario)
    assert result.passed, [(v.label, v.value) for v in result.verdicts]
    ready = {row["t"]: row["replicas_ready.telco-es.mad-1"] for row in result.rows}
    replicas = {row["t"]: row["replicas.telco-es.mad-1"] for row in result.rows}
    # Out of rotation at 30.5 s, replaced at 45.5 s, ready at 55.5 s.
    assert ready[30.0] == 2 and ready[31.0] == ready[55.0] == 1 and ready[56.0] == 2
    assert all(replicas[t] == 2 for t in range(1, 60))
    lost = sum(row.get("errors.BAD_GATEWAY", 0) for row in result.rows)
    assert lost == sum(row.get("errors.BAD_GATEWAY", 0) for row in result.rows if row["t"] < 33)
    totals = result.totals()
    assert totals["gateway_replica_hours"] == pytest.approx(sum(replicas.values()) / 3600, rel=1e-9)


def test_summary_of_an_autoscaled_run_is_the_same_for_the_same_seed(small: Path) -> None:
    def digest(seed: int) -> str:
        (scenario,) = load_scenario(small, seed=seed)
        return json.dumps(summary([run_scenario(scenario)]), sort_keys=True)

    first = digest(4)
    assert first == digest(4)
    assert first != digest(5)
    replicas = json.loads(first)["variants"]["default"]["replicas"]["telco-es/mad-1"]
    assert replicas["min"] == 2 and replicas["max"] >= 4


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "topology.operators.telco-es.data_centres.mad-1.gateway.replicas",
            7,
            "gateway.replicas (7) is outside autoscale.min_replicas (2) .. "
            "autoscale.max_replicas (6)",
        ),
        (
            "topology.operators.telco-es.data_centres.mad-1.autoscale.target",
            60,
            "autoscale.target (60) is a utilisation: at most 1",
        ),
        (
            "topology.operators.telco-es.data_centres.mad-1.autoscale.max_replicas",
            1,
            "max_replicas (1) is below min_replicas (2)",
        ),
        ("faults.0.duration", 10, "duration: a replica failure is instant"),
        ("faults.0.data_centre", "mad-9", "faults.0.data_centre: unknown data centre 'mad-9'"),
        ("expectations.0.application", "bank", "replicas_max counts gateway replicas"),
    ],
)
def test_bad_autoscaling_settings_name_their_field(
    small: Path, key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigFileError) as raised:
        load_scenario(small, overrides={key: value})
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def autoscaled() -> Any:
    scenarios = {s.variant: s for s in load_scenario(AUTOSCALING)}
    assert list(scenarios) == ["fixed", "autoscaled"]
    return scenarios, run_scenario(scenarios["autoscaled"])


def test_autoscaling_scenario_passes_and_costs_less_than_fixed_at_peak(autoscaled: Any) -> None:
    scenarios, result = autoscaled
    assert [(v.label, v.passed) for v in result.verdicts if not v.passed] == []
    fixed = scenarios["fixed"].topology.operators["telco-es"].data_centres["mad-1"]
    assert fixed.autoscale is None
    fixed_hours = fixed.gateway.replicas * scenarios["fixed"].duration / 3600
    assert result.totals()["gateway_replica_hours"] < 0.7 * fixed_hours
    # Replicas follow the load: more in the flash crowd than at noon, more at noon than night.
    t, count = result.replica_counts()
    by_time = dict(zip(t, count, strict=True))
    night = max(by_time[s] for s in range(1, 300))
    noon = max(by_time[s] for s in range(1500, 2100))
    crowd = max(by_time[s] for s in range(2400, 2700))
    assert night < noon < crowd


def test_work_a_call_queues_after_its_answer_runs_before_the_calls_waiting() -> None:
    """One worker, three calls queued at once: each call's after-answer work (live, the
    metering commit the event loop runs before it reads the next request) is served ahead of
    the calls still waiting, so the order is call, its work, call, its work, ..."""
    env = simpy.Environment()
    pool = GatewayPool(env, 1, 1, startup=0.0, liveness=30.0)
    replica = Replica(env, 1, 0.0, pool)
    replica.state = ReplicaState.READY
    served: list[tuple[float, str]] = []

    class Job:
        def __init__(self, name: str, after: float | None) -> None:
            self.name, self.after = name, after

        def __call__(self) -> None:
            served.append((env.now, self.name))
            if self.after is not None:
                replica.serve_next(self.after, Job(f"{self.name} work", None))

        def lost(self) -> None:
            raise AssertionError(f"{self.name} lost")

    for name in ("a", "b", "c"):
        replica.serve(1.0, Job(name, 0.5))
    env.run()
    assert served == [
        (1.0, "a"), (1.5, "a work"), (2.5, "b"), (3.0, "b work"), (4.0, "c"), (4.5, "c work")
    ]
    assert replica.idle and replica.busy == 0
