"""The one rule: a policy object inside the simulation decides as it does in a live-style test.

The simulation's Throttle and CircuitBreaker are wrapped to record every question asked of
them, with the virtual time and the answer. Replaying the same questions at the same times
on fresh objects driven by a hand-moved clock (as a unit test of the live gateway would)
must give the very same answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from operators.config import Plan
from operators.policies import CircuitBreaker, Throttle
from sim.engine import World
from sim.scenario import load_scenario

from ...builds import skip_if_compiled


class HandClock:
    """A live-style test clock: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttle_decides_the_same_in_the_simulation_and_live(small: Path) -> None:
    (scenario,) = load_scenario(small, duration=15)
    world = World(scenario)
    operator = world.operators["telco-es"]
    skip_if_compiled(Throttle, "check")
    asked: list[tuple[float, str, Plan, bool, str | None]] = []
    real_check = operator.throttle.check

    def recording(application: str, plan: Plan) -> Any:
        decision = real_check(application, plan)
        asked.append((world.env.now, application, plan, decision.allowed, decision.code))
        return decision

    operator.throttle.check = recording  # type: ignore[method-assign]
    world.run()
    assert any(not allowed for *_, allowed, _ in asked)  # the free plan was refused sometimes

    clock = HandClock()
    live = Throttle(clock)
    for at, application, plan, allowed, code in asked:
        clock.now = at
        decision = live.check(application, plan)
        assert (decision.allowed, decision.code) == (allowed, code), (at, application)


def test_circuit_breaker_decides_the_same_in_the_simulation_and_live(small: Path) -> None:
    overrides = {
        "faults": [
            {
                "kind": "backend",
                "operator": "telco-es",
                "function": "sim_data_register",
                "at": 5,
                "duration": 5,
                "faults": {"error_rate": 0.9},
            }
        ],
        "topology.operators.telco-es.policies.circuit_breaker": {
            "minimum_number_of_calls": 10,
            "sliding_window_size": 20,
            "wait_duration_in_open_state": 2.0,
            "permitted_number_of_calls_in_half_open_state": 3,
        },
    }
    (scenario,) = load_scenario(small, duration=20, overrides=overrides)
    world = World(scenario)
    breaker = world.operators["telco-es"].data_centres["mad-1"].guards
    target = next(g.breaker for kind, g in breaker.items() if kind.value == "sim_data_register")
    skip_if_compiled(CircuitBreaker, "try_acquire_permission")
    log: list[tuple[float, str, Any, Any, Any]] = []
    for name in ("try_acquire_permission", "release_permission", "on_success", "on_error"):
        real = getattr(target, name)

        def wrapper(*args: Any, _real: Any = real, _name: str = name) -> Any:
            answer = _real(*args)
            log.append((world.env.now, _name, args, answer, target.state))
            return answer

        setattr(target, name, wrapper)
    world.run()
    states = {entry[4].value for entry in log}
    assert {"CLOSED", "OPEN"} <= states  # the burst tripped it

    clock = HandClock()
    live = CircuitBreaker(target.config, clock)
    for at, name, args, answer, state in log:
        clock.now = at
        assert getattr(live, name)(*args) == answer, (at, name)
        assert live.state is state, (at, name)
