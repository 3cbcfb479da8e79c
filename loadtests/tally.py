"""Exact counters of a load test: every successful billable call, by operator, client and API.

Each Locust process that runs users keeps one :class:`Tally` and writes it to
``<counts dir>/calls-<node>.json`` when its users have stopped; :func:`merge` adds the files
of every process (the local runner, or each worker in distributed mode). A call is counted
once per ``x-correlator`` however many times it was retried (each call sends it as its
``Idempotency-Key`` too, which the gateways and the aggregator meter once). Calls through the
aggregator also keep their correlators, to compare one by one with the settlement records.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, str, str]
"""(operator, client id as the operator sees it, API)."""


@dataclass
class Tally:
    run_id: str
    node: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:6]}")
    billable: Counter[Key] = field(default_factory=Counter)
    settled: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per operator: correlator -> API of the calls answered 2xx through the aggregator."""
    unresolved: Counter[Key] = field(default_factory=Counter)
    """Calls whose answer never came (transport error, no retry left): may have been metered."""
    calls: Counter[str] = field(default_factory=Counter)
    """Calls made per user class (any outcome)."""
    _counted: set[str] = field(default_factory=set, repr=False)

    def correlator(self) -> str:
        return f"lt-{self.run_id}-{uuid.uuid4().hex}"

    def count(self, key: Key, correlator: str, *, settled: bool = False) -> bool:
        """Count a 2xx once per correlator; True when it was new."""
        if correlator in self._counted:
            return False
        self._counted.add(correlator)
        self.billable[key] += 1
        if settled:
            self.settled.setdefault(key[0], {})[correlator] = key[2]
        return True

    def unresolved_call(self, key: Key, correlator: str) -> None:
        if correlator not in self._counted:
            self.unresolved[key] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "node": self.node,
            "billable": [
                {"operator": o, "clientId": c, "api": a, "calls": n}
                for (o, c, a), n in sorted(self.billable.items())
            ],
            "unresolved": [
                {"operator": o, "clientId": c, "api": a, "calls": n}
                for (o, c, a), n in sorted(self.unresolved.items())
            ],
            "settled": self.settled,
            "calls": dict(self.calls),
        }

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"calls-{self.node}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_json(), indent=1))
        tmp.replace(path)
        return path


@dataclass
class MergedTally:
    run_ids: set[str]
    nodes: list[str]
    billable: Counter[Key]
    unresolved: Counter[Key]
    settled: dict[str, dict[str, str]]
    calls: Counter[str]


def merge(directory: Path, run_id: str | None = None) -> MergedTally:
    """Every process's counters in ``directory`` (of run ``run_id``) added together."""
    files = sorted(directory.glob("calls-*.json"))
    merged = MergedTally(set(), [], Counter(), Counter(), {}, Counter())
    for path in files:
        data = json.loads(path.read_text())
        if run_id is not None and data["runId"] != run_id:
            continue
        merged.run_ids.add(data["runId"])
        merged.nodes.append(data["node"])
        for row in data["billable"]:
            merged.billable[(row["operator"], row["clientId"], row["api"])] += row["calls"]
        for row in data["unresolved"]:
            merged.unresolved[(row["operator"], row["clientId"], row["api"])] += row["calls"]
        for operator, correlators in data["settled"].items():
            into = merged.settled.setdefault(operator, {})
            duplicated = set(into) & set(correlators)
            if duplicated:
                raise ValueError(f"correlators counted by two processes: {sorted(duplicated)[:3]}")
            into.update(correlators)
        merged.calls.update(data.get("calls", {}))
    if not merged.nodes:
        raise FileNotFoundError(f"no calls-*.json counters of run {run_id} in {directory}")
    return merged
