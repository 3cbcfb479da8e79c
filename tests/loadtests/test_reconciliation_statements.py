"""``ogsim reconcile`` also reconciles the settlement statements of every operator pair: against a
live federation (each party its own process) it passes while both parties' books agree and
exits 1, naming the correlator, once one settlement record has no counterpart at the operator.

The run folder is written by hand (a run with no Locust calls, whose usage baseline is taken
now), so the statements are the only thing that can differ.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from federation.settlement import Month
from loadtests.federation_view import load_descriptor
from loadtests.provisioning import usage_snapshot
from loadtests.reconciliation import reconcile, render
from sim.cli import app

runner = CliRunner()


def _empty_run(descriptor: Path, results: Path) -> None:
    """``run.json`` and one process's counters of a run that made no calls."""
    run_id = uuid.uuid4().hex[:8]
    view = load_descriptor(descriptor)
    with httpx.Client(timeout=15) as http:
        baseline = usage_snapshot(view, http)
    results.mkdir(parents=True, exist_ok=True)
    (results / "run.json").write_text(
        json.dumps({"runId": run_id, "startedAt": time.time(), "baseline": baseline,
                    "events": []})
    )
    (results / "calls-test.json").write_text(
        json.dumps({"runId": run_id, "node": "test", "billable": [], "unresolved": [],
                    "settled": {}, "calls": {}})
    )


@pytest.fixture
def forged(live_federation: Path) -> Iterator[tuple[str, str]]:
    """A billable settlement record in the hub's book that telco-fr never metered; removed
    afterwards (the federation is shared with the other live runs)."""
    hub = json.loads(live_federation.read_text())["aggregator"]["id"]
    database = load_descriptor(live_federation).run_dir
    assert database is not None
    path = database / f"{hub}.sqlite3"
    correlator = f"forged-{uuid.uuid4().hex[:8]}"
    with sqlite3.connect(path, timeout=30) as db:
        db.execute(
            "INSERT INTO aggregator_settlement (application, correlator, operator, served_as,"
            " api, operation, status, billable, at) VALUES"
            " ('auditor', ?, 'telco-fr', 'telco-fr', 'sim-swap', 'checkSimSwap', 200, 1, ?)",
            (correlator, time.time()),
        )
    try:
        yield hub, f"auditor:{correlator}"
    finally:
        with sqlite3.connect(path, timeout=30) as db:
            db.execute("DELETE FROM aggregator_settlement WHERE correlator = ?", (correlator,))


def test_statements_reconcile_then_a_forged_record_fails_the_command(
    live_federation: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    results = tmp_path / "run"
    _empty_run(live_federation, results)
    with httpx.Client(timeout=15) as http:
        report = reconcile(load_descriptor(live_federation), results, http)
    month = Month.of(time.time())
    pairs = {(c.operator, c.month) for c in report.statements}
    assert {("telco-es", month), ("telco-fr", month), ("telco-gb", month)} <= pairs
    assert report.matches, render(report)
    command = ["reconcile", "--descriptor", str(live_federation), "--out", str(results)]
    clean = runner.invoke(app, command)
    assert clean.exit_code == 0, clean.output
    assert "pair-months reconcile" in clean.output

    hub, correlator = request.getfixturevalue("forged")
    mismatch = runner.invoke(app, command)
    assert mismatch.exit_code == 1, mismatch.output
    assert f"missing at operator: {correlator}" in mismatch.output
    assert f"{hub} -> telco-fr" in mismatch.output
    saved = json.loads((results / "reconciliation.json").read_text())
    wrong = [s for s in saved["statements"] if not s["matches"]]
    assert [(s["operator"], [d["correlator"] for d in s["differences"]]) for s in wrong] == [
        ("telco-fr", [correlator])
    ]
