"""Which plan an application holds for each API: data in the operator's database.

:class:`PlanStore` is what admission reads; :class:`PlanSubscriptions` keeps the plans in the
operator's database (live), :class:`InMemoryPlans` in memory (the simulation). Both give an
application without a subscription the operator's default plan, and refuse unknown plans the
same way (a contract test runs both).

Both also keep the history of every subscription, stamped by the store's clock (epoch
seconds), because billing rates each call against the plan in force when it was made: a
change takes effect on the next call, and :meth:`PlanStore.history` says from when.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from operators.config import OperatorConfig, Plan
from operators.errors import CamaraError
from operators.storage import Database
from operators.types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS plan_subscriptions (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    plan TEXT NOT NULL,
    PRIMARY KEY (client_id, api)
);
CREATE TABLE IF NOT EXISTS plan_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    plan TEXT NOT NULL,
    from_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_history_subscription ON plan_history (client_id, api, seq);
"""


@dataclass(frozen=True)
class PlanPeriod:
    """One stretch of time during which ``plan`` applied to ``client_id``'s calls of ``api``:
    from ``from_at`` (included) until ``until`` (excluded; None while it still holds)."""

    client_id: str
    api: str
    plan: Plan
    from_at: float
    until: float | None = None

    def covers(self, at: float) -> bool:
        return self.from_at <= at and (self.until is None or at < self.until)


class PlanStore(Protocol):
    """The plan an application holds for an API, changing it, and what it held when."""

    def plan_for(self, client_id: str, api: str) -> Plan: ...

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan: ...

    def history(self, client_id: str, api: str) -> list[PlanPeriod]: ...

    def held(self) -> dict[tuple[str, str], str]: ...


def _periods(
    client_id: str,
    api: str,
    default: Plan,
    changes: list[tuple[Plan, float]],
) -> list[PlanPeriod]:
    """The periods from subscriptions in the order they were made, after the default plan
    from epoch 0: a stamp earlier than one before it (replicas' clocks disagree) counts
    from the latest before it, of changes at one instant the last holds, and a change to the plan
    already held continues its period (its tiers keep counting)."""
    starts: list[tuple[Plan, float]] = [(default, 0.0)]
    latest = 0.0
    for plan, stamp in changes:
        at = latest = max(stamp, latest)
        if at == starts[-1][1]:
            starts.pop()
        if not starts or starts[-1][0] != plan:
            starts.append((plan, at))
    ends: list[float | None] = [at for _, at in starts[1:]]
    return [
        PlanPeriod(client_id, api, plan, at, until)
        for (plan, at), until in zip(starts, [*ends, None], strict=True)
    ]


def _known(plans: dict[str, Plan], plan_name: str) -> Plan:
    plan = plans.get(plan_name)
    if plan is None:
        raise CamaraError(400, "INVALID_ARGUMENT", f"unknown plan {plan_name!r}")
    return plan


class InMemoryPlans:
    """Plans per (application, API) in memory, with the operator's default for the rest.

    ``clock`` stamps the history (epoch seconds; the simulation passes its calendar).
    """

    def __init__(
        self,
        plans: tuple[Plan, ...] | list[Plan],
        default_plan: str,
        clock: Clock = time.time,
    ) -> None:
        self._plans = {plan.name: plan for plan in plans}
        self._default = _known(self._plans, default_plan)
        self._held: dict[tuple[str, str], Plan] = {}
        self._changes: dict[tuple[str, str], list[tuple[Plan, float]]] = {}
        self.clock = clock

    @classmethod
    def of(cls, config: OperatorConfig, clock: Clock = time.time) -> InMemoryPlans:
        return cls(config.plans, config.default_plan, clock)

    def plan_for(self, client_id: str, api: str) -> Plan:
        return self._held.get((client_id, api), self._default)

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan:
        plan = _known(self._plans, plan_name)
        self._held[(client_id, api)] = plan
        self._changes.setdefault((client_id, api), []).append((plan, self.clock()))
        return plan

    def history(self, client_id: str, api: str) -> list[PlanPeriod]:
        changes = self._changes.get((client_id, api), [])
        return _periods(client_id, api, self._default, changes)

    def held(self) -> dict[tuple[str, str], str]:
        return {key: plan.name for key, plan in self._held.items()}


class PlanSubscriptions:
    """Plans per (application, API); unsubscribed applications get the operator's default plan.

    Reads are served from memory and loaded again whenever the table may have changed (a
    write here, or a commit by another replica sharing the database), so every data centre
    applies the same plan; writes go to the database first, so a restart keeps them.

    Each subscription is also a row of ``plan_history`` stamped by ``clock`` (epoch seconds),
    written in the same transaction. A plan name the config no longer has reads as the
    default plan, in the history as at admission (which is what the calls were held to).
    A subscription older than the history table reads as held since epoch 0.
    """

    def __init__(self, config: OperatorConfig, db: Database, clock: Clock = time.time) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)
        self._plans = {plan.name: plan for plan in config.plans}
        self._default = self._plans[config.default_plan]
        # one tuple, swapped whole: the analytics reads it from threads beside the event loop
        self._cache: tuple[tuple[int, ...] | None, dict[tuple[str, str], Plan]] = (None, {})
        self._keep_older_subscriptions()

    def _keep_older_subscriptions(self) -> None:
        """Give a subscription made before the history was kept a row of it (from epoch 0)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO plan_history (client_id, api, plan, from_at)"
                " SELECT s.client_id, s.api, s.plan, 0.0 FROM plan_subscriptions s"
                " WHERE NOT EXISTS (SELECT 1 FROM plan_history h"
                " WHERE h.client_id = s.client_id AND h.api = s.api)"
                " ORDER BY s.client_id, s.api"
            )

    def _load(self) -> dict[tuple[str, str], Plan]:
        stamp = self.db.version("plan_subscriptions")
        known, held = self._cache
        if stamp != known:
            held = {
                (row["client_id"], row["api"]): self._plans[row["plan"]]
                for row in self.db.all("SELECT client_id, api, plan FROM plan_subscriptions")
                if row["plan"] in self._plans
            }
            self._cache = (stamp, held)
        return held

    def plan_for(self, client_id: str, api: str) -> Plan:
        return self._load().get((client_id, api), self._default)

    def subscribe(self, client_id: str, api: str, plan_name: str) -> Plan:
        plan = _known(self._plans, plan_name)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO plan_subscriptions (client_id, api, plan) VALUES (?, ?, ?)"
                " ON CONFLICT (client_id, api) DO UPDATE SET plan = excluded.plan",
                (client_id, api, plan_name),
            )
            self.db.execute(
                "INSERT INTO plan_history (client_id, api, plan, from_at) VALUES (?, ?, ?, ?)",
                (client_id, api, plan_name, self.clock()),
            )
        return plan

    def history(self, client_id: str, api: str) -> list[PlanPeriod]:
        rows = self.db.all(
            "SELECT plan, from_at FROM plan_history WHERE client_id = ? AND api = ?"
            " ORDER BY seq",
            (client_id, api),
        )
        changes = [
            (self._plans.get(row["plan"], self._default), float(row["from_at"])) for row in rows
        ]
        return _periods(client_id, api, self._default, changes)

    def held(self) -> dict[tuple[str, str], str]:
        return {key: plan.name for key, plan in self._load().items()}
