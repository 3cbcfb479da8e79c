"""Nothing lost, nothing doubled: Locust's exact counts against metering and settlement.

For each operator and API, the successful billable calls the load test counted (by the
client id the operator saw: its own applications directly, the aggregator's for calls routed
through it) must equal the usage events the operator metered during the run (``GET
/admin/usage`` now, minus the snapshot taken when the run started). For calls through the
aggregator, the settlement records of the run's correlators must be exactly the correlators
Locust saw answered 2xx, one by one, and their number must equal what the operator metered
for the aggregator.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .federation_view import ADMIN_SECRET, Descriptor
from .tally import MergedTally, merge

RUN_FILE = "run.json"


@dataclass(frozen=True)
class UsageRow:
    operator: str
    client_id: str
    api: str
    counted: int
    metered: int
    unresolved: int

    @property
    def matches(self) -> bool:
        return self.counted == self.metered


@dataclass(frozen=True)
class SettlementRow:
    operator: str
    counted: int
    settled: int
    metered_for_aggregator: int
    missing: list[str]
    extra: list[str]

    @property
    def matches(self) -> bool:
        return (
            not self.missing
            and not self.extra
            and self.counted == self.settled == self.metered_for_aggregator
        )


@dataclass
class Reconciliation:
    run_id: str
    usage: list[UsageRow] = field(default_factory=list)
    settlement: list[SettlementRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return all(r.matches for r in self.usage) and all(r.matches for r in self.settlement)

    @property
    def counted(self) -> int:
        return sum(r.counted for r in self.usage)

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "matches": self.matches,
            "usage": [asdict(r) | {"matches": r.matches} for r in self.usage],
            "settlement": [asdict(r) | {"matches": r.matches} for r in self.settlement],
            "notes": self.notes,
        }


def read_run(results: Path) -> dict[str, Any]:
    path = results / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the run's master (or local runner) writes it when the test starts"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _usage(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter({(r["clientId"], r["api"]): int(r["calls"]) for r in rows})


def reconcile(
    descriptor: Descriptor,
    results: Path,
    http: httpx.Client,
    *,
    admin_secret: str = ADMIN_SECRET,
) -> Reconciliation:
    """Compare the counters in ``results`` with what the federation recorded."""
    run = read_run(results)
    run_id = run["runId"]
    tally: MergedTally = merge(results, run_id=run_id)
    headers = {"Authorization": f"Bearer {admin_secret}"}
    ours = f"lt-{run_id}-"
    hub = descriptor.aggregator.id if descriptor.aggregator else None
    report = Reconciliation(run_id)
    report.notes.append(f"{len(tally.nodes)} Locust process(es) counted calls")
    metered_hub: dict[str, int] = {}
    for operator in descriptor.operators:
        response = http.get(f"{operator.api_root}/admin/usage", headers=headers)
        response.raise_for_status()
        now = _usage(response.json())
        before = _usage(run.get("baseline", {}).get(operator.id, []))
        delta = Counter({k: now[k] - before.get(k, 0) for k in now})
        keys = {(c, a) for (o, c, a) in tally.billable if o == operator.id}
        keys |= {(c, a) for (o, c, a) in tally.unresolved if o == operator.id}
        keys |= {(c, a) for (c, a), n in delta.items() if n and (c.startswith(ours) or c == hub)}
        for client, api in sorted(keys):
            report.usage.append(
                UsageRow(
                    operator.id,
                    client,
                    api,
                    tally.billable[(operator.id, client, api)],
                    delta[(client, api)],
                    tally.unresolved[(operator.id, client, api)],
                )
            )
        metered_hub[operator.id] = sum(n for (c, _), n in delta.items() if c == hub)
    if descriptor.aggregator is not None:
        application = run.get("aggregatorApplication")
        for operator in descriptor.operators:
            response = http.get(
                f"{descriptor.aggregator.settlement}/{operator.id}", headers=headers
            )
            response.raise_for_status()
            records = [
                r
                for r in response.json()["records"]
                if r["correlator"].startswith(ours)
                and (application is None or r["application"] == application)
            ]
            settled = {r["correlator"] for r in records if r["billable"]}
            counted = set(tally.settled.get(operator.id, {}))
            if not counted and not settled and not metered_hub.get(operator.id):
                continue
            report.settlement.append(
                SettlementRow(
                    operator.id,
                    len(counted),
                    len(settled),
                    metered_hub.get(operator.id, 0),
                    sorted(counted - settled)[:20],
                    sorted(settled - counted)[:20],
                )
            )
    unresolved = sum(tally.unresolved.values())
    if unresolved:
        report.notes.append(
            f"{unresolved} call(s) got no answer (transport error, no retry left): the "
            "operator may have metered them; a mismatch of at most that many is explained"
        )
    return report


def render(report: Reconciliation) -> str:
    """A plain-text table (the CLI prints it with rich)."""
    lines = [f"reconciliation of run {report.run_id}: {'MATCH' if report.matches else 'MISMATCH'}"]
    lines.append(f"{'operator':10} {'client':34} {'api':28} {'locust':>7} {'metered':>7}")
    for row in report.usage:
        flag = "" if row.matches else "  <-- differs"
        extra = f" (+{row.unresolved} unanswered)" if row.unresolved else ""
        lines.append(
            f"{row.operator:10} {row.client_id:34} {row.api:28} {row.counted:7d} "
            f"{row.metered:7d}{flag}{extra}"
        )
    for s in report.settlement:
        flag = "" if s.matches else "  <-- differs"
        lines.append(
            f"settlement {s.operator:10} locust {s.counted} settled {s.settled} "
            f"metered for the aggregator {s.metered_for_aggregator}{flag}"
        )
        if s.missing:
            lines.append(f"  counted but not settled: {', '.join(s.missing)}")
        if s.extra:
            lines.append(f"  settled but not counted: {', '.join(s.extra)}")
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
