"""One contract, two plan stores: the operator's database and the simulation's memory.

Admission asks a :class:`PlanStore` which plan an application holds for an API; the same
subscriptions must give the same plans (and the same refusal of an unknown plan) from both.
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


def test_both_plan_stores_answer_alike() -> None:
    config = example_operator()
    db = Database(":memory:")
    live = _script(PlanSubscriptions(config, db))
    db.close()
    simulated = _script(InMemoryPlans.of(config))
    assert live == simulated
    assert live[0] == config.default_plan and live[2] == "free" and live[6] == "enterprise"
    assert live[7] == (400, "INVALID_ARGUMENT")
