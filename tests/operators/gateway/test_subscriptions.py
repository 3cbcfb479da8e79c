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


def test_the_history_survives_a_restart_and_is_shared(tmp_path: Path) -> None:
    path = str(tmp_path / "operator.sqlite3")
    config = example_operator(storage=path)
    madrid = PlanSubscriptions(config, Database(path), clock=lambda: 1_700_000_000.0)
    madrid.subscribe("app", "sim-swap", "enterprise")
    barcelona = PlanSubscriptions(config, Database(path), clock=lambda: 1_700_000_100.0)
    barcelona.subscribe("app", "sim-swap", "free")
    again = PlanSubscriptions(config, Database(path))
    assert [(p.plan.name, p.from_at) for p in again.history("app", "sim-swap")] == [
        (config.default_plan, 0.0),
        ("enterprise", 1_700_000_000.0),
        ("free", 1_700_000_100.0),
    ]


def test_a_subscription_older_than_the_history_is_held_since_epoch_zero(tmp_path: Path) -> None:
    path = str(tmp_path / "operator.sqlite3")
    db = Database(path)
    db.ensure_schema(
        "CREATE TABLE plan_subscriptions (client_id TEXT NOT NULL, api TEXT NOT NULL,"
        " plan TEXT NOT NULL, PRIMARY KEY (client_id, api));"
        "INSERT INTO plan_subscriptions VALUES ('app', 'sim-swap', 'enterprise');"
    )
    store = PlanSubscriptions(example_operator(storage=path), db)
    assert [(p.plan.name, p.from_at, p.until) for p in store.history("app", "sim-swap")] == [
        ("enterprise", 0.0, None)
    ]
