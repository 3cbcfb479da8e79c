"""Nothing lost, nothing doubled: Locust's exact counts against metering and settlement.

For each operator and API, the successful billable calls the load test counted (by the
client id the operator saw: its own applications directly, the aggregator's for calls routed
through it) must equal the usage events the operator metered during the run (``GET
/admin/usage`` now, minus the snapshot taken when the run started). For calls through the
aggregator, the settlement records of the run's correlators must be exactly the correlators
Locust saw answered 2xx, one by one, and their number must equal what the operator metered
for the aggregator. Then, for every month the run touched, the aggregator's settlement
statement of each operator pair (``GET /admin/statements?month=YYYY-MM``) must agree exactly
with that operator's own statement of what it served for the aggregator (``GET
/admin/statements/{aggregator}?month=YYYY-MM``): calls and amounts per API, totals, currency
and correlator by correlator (:func:`federation.reconcile_statements`). The statements cover
the whole month, so calls made outside the run count too: both parties must agree on them all.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .federation_view import ADMIN_SECRET, Descriptor
from .tally import MergedTally, merge

if TYPE_CHECKING:
    from federation import Statement, StatementCheck

RUN_FILE = "run.json"
DIFFERENCES_SHOWN = 20
"""Differences listed per statement pair in a report (all are counted)."""


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


@dataclass(frozen=True)
class InvoiceRow:
    """The calls an operator invoiced the aggregator's client for in a month, per API, against
    the calls it metered for that client then (its settlement statement's lines)."""

    operator: str
    month: str
    client_id: str
    invoiced: dict[str, int]
    metered: dict[str, int]

    @property
    def matches(self) -> bool:
        return self.invoiced == self.metered


@dataclass
class Reconciliation:
    run_id: str
    usage: list[UsageRow] = field(default_factory=list)
    settlement: list[SettlementRow] = field(default_factory=list)
    statements: list[StatementCheck] = field(default_factory=list)
    """The aggregator's and each operator's statement of a pair and month, side by side."""
    statement_problems: list[str] = field(default_factory=list)
    """Statements a party could not give (each one a mismatch)."""
    invoices: list[InvoiceRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return (
            all(r.matches for r in self.usage)
            and all(r.matches for r in self.settlement)
            and all(s.matches for s in self.statements)
            and not self.statement_problems
            and all(i.matches for i in self.invoices)
        )

    @property
    def counted(self) -> int:
        return sum(r.counted for r in self.usage)

    def as_json(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "matches": self.matches,
            "usage": [asdict(r) | {"matches": r.matches} for r in self.usage],
            "settlement": [asdict(r) | {"matches": r.matches} for r in self.settlement],
            "statements": [s.as_json(limit=DIFFERENCES_SHOWN) for s in self.statements],
            "statementProblems": self.statement_problems,
            "invoices": [asdict(i) | {"matches": i.matches} for i in self.invoices],
            "notes": self.notes,
        }


class RunFileError(ValueError):
    """A run's ``run.json`` or ``calls-*.json`` that is not what the locustfile writes; names
    the file, so a damaged run folder is reported rather than a traceback from deep inside."""


def read_run(results: Path) -> dict[str, Any]:
    """The run file the master (or local runner) wrote at the start, checked before use."""
    path = results / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the run's master (or local runner) writes it when the test starts"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # a folder, unreadable, not UTF-8, not JSON
        raise RunFileError(f"{path} cannot be read as a run file: {error}") from error
    problem = _run_problem(data)
    if problem is not None:
        raise RunFileError(f"{path} is not a run file `ogsim loadtest` writes: {problem}")
    checked: dict[str, Any] = data
    return checked


def _run_problem(data: Any) -> str | None:
    """What is wrong with a parsed run file (the fields :func:`reconcile` reads), or None."""
    if not isinstance(data, dict):
        return f"a JSON object is expected, not {type(data).__name__}"
    if not isinstance(data.get("runId"), str) or not data["runId"]:
        return "runId is missing or not a string"
    started = data.get("startedAt")
    if started is not None and (isinstance(started, bool) or not isinstance(started, int | float)):
        return "startedAt is not a number"
    if not isinstance(data.get("aggregatorApplication"), str | None):
        return "aggregatorApplication is not a string"
    baseline = data.get("baseline", {})
    if not isinstance(baseline, dict):
        return "baseline is not an object of operator -> usage rows"
    for operator, rows in baseline.items():
        if not isinstance(rows, list) or not all(_usage_row(row) for row in rows):
            return f"baseline of {operator} is not a list of usage rows (clientId, api, calls)"
    return None


def _usage_row(row: Any) -> bool:
    """Whether ``row`` is one of ``GET /admin/usage``'s rows."""
    return (
        isinstance(row, dict)
        and isinstance(row.get("clientId"), str)
        and isinstance(row.get("api"), str)
        and isinstance(row.get("calls"), int)
        and not isinstance(row.get("calls"), bool)
    )


def _merged(results: Path, run_id: str) -> MergedTally:
    """Every process's counters of the run; a damaged counter file is a RunFileError."""
    try:
        return merge(results, run_id=run_id)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RunFileError(
            f"the call counters {results / 'calls-*.json'} cannot be added up "
            f"({type(error).__name__}: {error})"
        ) from error


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
    tally = _merged(results, run_id)
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
        started = float(run.get("startedAt") or time.time())
        check_statements(report, descriptor, http, started, time.time(), headers)
    unresolved = sum(tally.unresolved.values())
    if unresolved:
        report.notes.append(
            f"{unresolved} call(s) got no answer (transport error, no retry left): the "
            "operator may have metered them; a mismatch of at most that many is explained"
        )
    return report


def check_statements(
    report: Reconciliation,
    descriptor: Descriptor,
    http: httpx.Client,
    start: float,
    end: float,
    headers: dict[str, str],
) -> None:
    """Add to ``report`` the reconciliation of each operator pair's two statements for every
    month from ``start`` to ``end``; a party that gives no statement is a problem noted."""
    from federation import Statement, StatementError, months_between, reconcile_statements

    hub = descriptor.aggregator
    if hub is None:
        return
    for month in months_between(start, end):
        params = {"month": str(month)}
        answer = http.get(f"{hub.api_root}/admin/statements", params=params, headers=headers)
        if answer.status_code != 200:
            report.statement_problems.append(
                f"{hub.id} gave no statements for {month}: {answer.status_code} {answer.text[:200]}"
            )
            continue
        for data in answer.json():
            try:
                ours = Statement.from_json(data)
                operator = descriptor.operator(ours.operator)
            except (StatementError, KeyError) as error:
                report.statement_problems.append(f"{hub.id}'s statement for {month}: {error}")
                continue
            reply = http.get(
                f"{operator.api_root}/admin/statements/{hub.id}", params=params, headers=headers
            )
            if reply.status_code != 200:
                report.statement_problems.append(
                    f"{operator.id} gave no statement for {hub.id}, {month}: "
                    f"{reply.status_code} {reply.text[:200]}"
                )
                continue
            try:
                theirs = Statement.from_json(reply.json())
                report.statements.append(reconcile_statements(ours, theirs))
            except (StatementError, ValueError) as error:
                report.statement_problems.append(
                    f"{operator.id}'s statement for {hub.id}, {month}: {error}"
                )
                continue
            check_invoices(report, operator.api_root, theirs, http, headers)


def check_invoices(
    report: Reconciliation,
    api_root: str,
    served: Statement,
    http: httpx.Client,
    headers: dict[str, str],
) -> None:
    """The operator's invoices of the month (``GET /admin/invoices?month=``, operators.billing)
    must bill the aggregator's client for exactly the calls its statement says it served; an
    operator that serves no invoices is noted and not judged."""
    answer = http.get(
        f"{api_root}/admin/invoices", params={"month": str(served.month)}, headers=headers
    )
    if answer.status_code == 404:
        note = f"{served.operator} serves no /admin/invoices: its invoices were not reconciled"
        if note not in report.notes:
            report.notes.append(note)
        return
    client = served.aggregator  # the aggregator's client id at every operator
    invoiced: Counter[str] = Counter()
    if answer.status_code != 200:
        report.statement_problems.append(
            f"{served.operator} gave no invoices for {served.month}: {answer.status_code}"
        )
        return
    for invoice in answer.json().get("invoices", []):
        for application in invoice.get("applications", []):
            if application.get("client_id") != client:
                continue
            for api in application.get("apis", []):
                for line in api.get("lines", []):
                    if line.get("kind") == "calls":
                        invoiced[api["api"]] += int(line.get("quantity", 0))
    report.invoices.append(
        InvoiceRow(
            served.operator,
            str(served.month),
            client,
            dict(sorted((a, n) for a, n in invoiced.items() if n)),
            {line.api: line.calls for line in served.lines},
        )
    )


def _render_statement(check: StatementCheck) -> list[str]:
    flag = "" if check.matches else "  <-- differs"
    calls = sum(line.aggregator_calls for line in check.lines)
    served = sum(line.operator_calls for line in check.lines)
    lines = [
        f"statement {check.month} {check.aggregator} -> {check.operator}: aggregator {calls} "
        f"calls {check.aggregator_total} {check.aggregator_currency}, operator {served} calls "
        f"{check.operator_total} {check.operator_currency}{flag}"
    ]
    lines.extend(
        f"  {line.api:28} {line.aggregator_calls:7d} {line.operator_calls:7d}"
        f"  {line.aggregator_amount} / {line.operator_amount}"
        + ("" if line.matches else "  <-- differs")
        for line in check.lines
    )
    lines.extend(
        f"  {d.kind}: {d.correlator} ({d.aggregator_api or d.operator_api})"
        for d in check.differences[:DIFFERENCES_SHOWN]
    )
    if len(check.differences) > DIFFERENCES_SHOWN:
        lines.append(f"  ... {len(check.differences) - DIFFERENCES_SHOWN} more differences")
    return lines


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
    for check in report.statements:
        lines.extend(_render_statement(check))
    lines.extend(f"statement problem: {p}" for p in report.statement_problems)
    for invoiced in report.invoices:
        flag = "" if invoiced.matches else "  <-- differs"
        lines.append(
            f"invoices {invoiced.month} {invoiced.operator} -> {invoiced.client_id}: billed "
            f"{sum(invoiced.invoiced.values())} calls, metered "
            f"{sum(invoiced.metered.values())}{flag}"
        )
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)
