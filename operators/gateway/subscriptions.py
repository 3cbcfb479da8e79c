"""Which plan an application holds for each API: data in the operator's database.

:class:`PlanStore` is what admission reads; :class:`PlanSubscriptions` keeps the plans in the
operator's database (live), :class:`InMemoryPlans` in memory (the simulation). Both give an
application without a subscription the operator's default plan, and refuse unknown plans the
same way (a contract test runs both).
"""

from __future__ import annotations

from typing import Protocol

from operators.config import OperatorConfig, Plan
from operators.errors import CamaraError
from operators.storage import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS plan_subscriptions (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    plan TEXT NOT NULL,
    PRIMARY KEY (client_id, api)
);
"""


class PlanStore(Protocol):
    """The plan an application holds for an API, and changing it."""

    def plan_for(self, client_id: str, api: str) -> Plan: ...

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan: ...


def _known(plans: dict[str, Plan], plan_name: str) -> Plan:
    plan = plans.get(plan_name)
    if plan is None:
        raise CamaraError(400, "INVALID_ARGUMENT", f"unknown plan {plan_name!r}")
    return plan


class InMemoryPlans:
    """Plans per (application, API) in memory, with the operator's default for the rest."""

    def __init__(self, plans: tuple[Plan, ...] | list[Plan], default_plan: str) -> None:
        self._plans = {plan.name: plan for plan in plans}
        self._default = _known(self._plans, default_plan)
        self._held: dict[tuple[str, str], Plan] = {}

    @classmethod
    def of(cls, config: OperatorConfig) -> InMemoryPlans:
        return cls(config.plans, config.default_plan)

    def plan_for(self, client_id: str, api: str) -> Plan:
        return self._held.get((client_id, api), self._default)

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan:
        plan = _known(self._plans, plan_name)
        self._held[(client_id, api)] = plan
        return plan


class PlanSubscriptions:
    """Plans per (application, API); unsubscribed applications get the operator's default plan.

    Reads are served from memory and loaded again whenever the table may have changed (a
    write here, or a commit by another replica sharing the database), so every data centre
    applies the same plan; writes go to the database first, so a restart keeps them.
    """

    def __init__(self, config: OperatorConfig, db: Database) -> None:
        self.config = config
        self.db = db
        db.ensure_schema(SCHEMA)
        self._plans = {plan.name: plan for plan in config.plans}
        self._default = self._plans[config.default_plan]
        self._stamp: tuple[int, ...] | None = None
        self._held: dict[tuple[str, str], Plan] = {}

    def _load(self) -> dict[tuple[str, str], Plan]:
        stamp = self.db.version("plan_subscriptions")
        if stamp != self._stamp:
            self._held = {
                (row["client_id"], row["api"]): self._plans[row["plan"]]
                for row in self.db.all("SELECT client_id, api, plan FROM plan_subscriptions")
                if row["plan"] in self._plans
            }
            self._stamp = stamp
        return self._held

    def plan_for(self, client_id: str, api: str) -> Plan:
        return self._load().get((client_id, api), self._default)

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan:
        plan = _known(self._plans, plan_name)
        self.db.execute(
            "INSERT INTO plan_subscriptions (client_id, api, plan) VALUES (?, ?, ?)"
            " ON CONFLICT (client_id, api) DO UPDATE SET plan = excluded.plan",
            (client_id, api, plan_name),
        )
        return plan

    def held(self) -> dict[tuple[str, str], str]:
        return {key: plan.name for key, plan in self._load().items()}
