"""Plan subscriptions are data in the operator's database, the same for every replica."""

from __future__ import annotations

from pathlib import Path

from operators.config import example_operator
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database


def test_a_subscription_made_through_one_replica_holds_in_another(tmp_path: Path) -> None:
    path = str(tmp_path / "operator.sqlite3")
    config = example_operator(storage=path)
    madrid = PlanSubscriptions(config, Database(path))
    barcelona = PlanSubscriptions(config, Database(path))
    assert barcelona.plan_for("app", "sim-swap").name == config.default_plan
    madrid.subscribe("app", "sim-swap", "enterprise")
    assert barcelona.plan_for("app", "sim-swap").name == "enterprise"
    assert madrid.held() == {("app", "sim-swap"): "enterprise"}
