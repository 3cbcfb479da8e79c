"""One contract, two plan stores: the operator's database and the simulation's memory.

Admission asks a :class:`PlanStore` which plan an application holds for an API; the same
subscriptions must give the same plans (and the same refusal of an unknown plan) from both,
and the same history (billing rates each call against the plan in force when it was made).
"""

from __future__ import annotations

import pytest

from operators.config import example_operator
from operators.errors import CamaraError
from operators.gateway import InMemoryPlans, PlanStore, PlanSubscriptions
from operators.storage import Database


def _script(store: PlanStore) -> list[object]:
    seen: list[object] = [store.plan_for("app", "sim-swap").name]
    seen.append(store.subscribe("app", "sim-swap", "free").name)
    seen.append(store.plan_for("app", "sim-swap").name)
    seen.append(store.plan_for("app", "kyc-match").name)  # per API: untouched
    seen.append(store.plan_for("other", "sim-swap").name)  # per application: untouched
    seen.append(store.subscribe("app", "sim-swap", "enterprise").name)  # an upgrade
    seen.append(store.plan_for("app", "sim-swap").name)
    with pytest.raises(CamaraError) as unknown:
        store.subscribe("app", "sim-swap", "platinum")
    seen.append((unknown.value.status, unknown.value.code))
    seen.append(store.plan_for("app", "sim-swap").name)  # a refused change changes nothing
    return seen


class _FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _history_script(store: PlanStore, clock: _FakeClock) -> list[object]:
    seen: list[object] = []

    def periods(
        client: str = "app", api: str = "sim-swap"
    ) -> list[tuple[str, float, float | None]]:
        return [(p.plan.name, p.from_at, p.until) for p in store.history(client, api)]

    seen.append(periods())  # the default plan from epoch 0, still holding
    clock.now = 1000.0
    store.subscribe("app", "sim-swap", "free")
    clock.now = 2000.5
    store.subscribe("app", "sim-swap", "enterprise")
    clock.now = 2500.0
    store.subscribe("app", "sim-swap", "enterprise")  # no change: the period goes on
    with pytest.raises(CamaraError):
        store.subscribe("app", "sim-swap", "platinum")  # refused: not in the history
    clock.now = 1500.0  # a replica whose clock is behind: counts from the change before
    store.subscribe("app", "sim-swap", "free")
    seen.append(periods())
    seen.append(periods("app", "kyc-match"))
    seen.append(periods("other", "sim-swap"))
    seen.append(sorted(store.held().items()))
    return seen


def test_both_plan_stores_keep_the_same_history() -> None:
    config = example_operator()
    db = Database(":memory:")
    live_clock, sim_clock = _FakeClock(0.0), _FakeClock(0.0)
    live = _history_script(PlanSubscriptions(config, db, clock=live_clock), live_clock)
    db.close()
    simulated = _history_script(InMemoryPlans.of(config, clock=sim_clock), sim_clock)
    assert live == simulated
    default = config.default_plan
    assert live[0] == [(default, 0.0, None)]
    assert live[1] == [
        (default, 0.0, 1000.0),
        ("free", 1000.0, 2000.5),
        ("enterprise", 2000.5, 2500.0),
        ("free", 2500.0, None),
    ]
    assert live[2] == live[3] == [(default, 0.0, None)]
    assert live[4] == [(("app", "sim-swap"), "free")]


def test_history_covers_every_instant_once() -> None:
    clock = _FakeClock(10.0)
    store = InMemoryPlans.of(example_operator(), clock=clock)
    for at, plan in ((10.0, "free"), (10.0, "enterprise"), (20.0, "free"), (30.0, "free")):
        clock.now = at
        store.subscribe("app", "sim-swap", plan)
    periods = store.history("app", "sim-swap")
    # two changes at one instant: the last holds; a change to the same plan is no change
    assert [(p.plan.name, p.from_at) for p in periods] == [
        ("pay-as-you-go", 0.0),
        ("enterprise", 10.0),
        ("free", 20.0),
    ]
    for at in (0.0, 9.99, 10.0, 15.0, 20.0, 1e12):
        assert sum(p.covers(at) for p in periods) == 1


def test_both_plan_stores_answer_alike() -> None:
    config = example_operator()
    db = Database(":memory:")
    live = _script(PlanSubscriptions(config, db))
    db.close()
    simulated = _script(InMemoryPlans.of(config))
    assert live == simulated
    assert live[0] == config.default_plan and live[2] == "free" and live[6] == "enterprise"
    assert live[7] == (400, "INVALID_ARGUMENT")
