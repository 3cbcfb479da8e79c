"""Short headless Locust runs against a live federation: every application calls, answers
are right, and every successful billable call is metered and settled exactly once — also
when a data centre goes down mid-run, and with a master and two workers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest

from loadtests.federation_view import load_descriptor
from loadtests.locust_run import LOCUSTFILE, read_summary, run_locust
from loadtests.reconciliation import Reconciliation, reconcile
from loadtests.tally import MergedTally, merge

USER_CLASSES = {"AntiFraudApp", "LocationApp", "QodApp", "AggregatorApp", "GreedyApp"}


def _run(
    descriptor: Path, results: Path, *, run_time: str, users: int = 12, **extra: object
) -> tuple[dict, MergedTally, Reconciliation]:
    run = run_locust(
        locustfile=LOCUSTFILE,
        descriptor=descriptor,
        results=results,
        users=users,
        spawn_rate=float(users),
        run_time=run_time,
        stop_timeout=10,
        **extra,  # type: ignore[arg-type]
    )
    assert run.returncode in (0, 1), (results / "locust.log").read_text()[-3000:]
    summary = read_summary(results)
    run_file = json.loads((results / "run.json").read_text())
    with httpx.Client(timeout=15) as http:
        report = reconcile(load_descriptor(descriptor), results, http)
    return summary, merge(results, run_file["runId"]), report


def _failures(results: Path) -> list[dict[str, str]]:
    with (results / "locust_failures.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def headless(live_federation: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    results = tmp_path_factory.mktemp("headless")
    # One aggregator call in seven about an unserved number: a slow machine makes fewer calls
    # in the run's 20 s, and the test still sees the unserved path taken.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OGSIM_UNSERVED_SHARE", "0.15")
        return (results, *_run(live_federation, results, run_time="20s"))


def test_every_user_class_made_calls(headless: tuple) -> None:
    _, summary, tally, _ = headless
    assert set(tally.calls) == USER_CLASSES
    assert all(n > 0 for n in tally.calls.values()), tally.calls
    names = summary["requestsByName"]
    assert any(k.endswith("(unserved)") for k in names), "unserved numbers were sent"
    assert summary["throttled"] > 0, "the misbehaving application was throttled"
    assert any("oauth ciba poll" in k for k in names), "CIBA consent was collected"


def test_no_unexpected_failures(headless: tuple) -> None:
    results, summary, _, _ = headless
    assert _failures(results) == []
    assert summary["served"]["requests"] > 100


def test_reconciliation_matches_exactly(headless: tuple) -> None:
    _, _, tally, report = headless
    assert report.matches, report.as_json()
    assert sum(tally.unresolved.values()) == 0
    assert report.counted == sum(tally.billable.values()) > 0
    operators = {row.operator for row in report.usage}
    assert operators == {"telco-es", "telco-fr", "telco-gb"}
    assert {s.operator for s in report.settlement} == operators
    assert all(s.settled > 0 for s in report.settlement)


def test_qod_sessions_hold_across_sites(headless: tuple) -> None:
    """Sessions are rows of the operator's shared database, whichever site the GLB picks."""
    results, summary, _, _ = headless
    qod = [name for name in summary["requestsByName"] if "qod " in name]
    assert qod, "the QoD application made calls"
    assert [f for f in _failures(results) if "qod " in f["Name"]] == []


def test_data_centre_down_mid_run_loses_and_doubles_nothing(
    live_federation: Path, tmp_path: Path
) -> None:
    descriptor = load_descriptor(live_federation)
    admin = descriptor.operator("telco-es").data_centre_admin
    headers = {"Authorization": "Bearer admin-secret"}
    try:
        summary, tally, report = _run(
            live_federation,
            tmp_path,
            run_time="20s",
            fail_data_centre="telco-es/madrid@6",
        )
        status = httpx.get(admin, headers=headers).json()
    finally:
        httpx.post(f"{admin}/madrid/recover", headers=headers)
    events = json.loads((tmp_path / "run.json").read_text())["events"]
    assert [e["event"] for e in events] == ["data-centre-down"]
    madrid = next(s for s in status if s["name"] == "madrid")
    assert not madrid["available"] and not madrid["inRotation"]
    assert report.matches, report.as_json()
    assert sum(tally.unresolved.values()) == 0
    unexpected = [f for f in _failures(tmp_path) if f["Method"] != "503 data centre down"]
    assert unexpected == [], unexpected
    assert summary["served"]["requests"] > 100


def test_distributed_master_and_two_workers(live_federation: Path, tmp_path: Path) -> None:
    # The run time starts once both workers have joined; 30 s leaves room for a loaded machine
    # (at 20 s, one run on a machine loaded by four other test runs made no call at all).
    _, tally, report = _run(live_federation, tmp_path, run_time="30s", users=10, workers=2)
    assert len(tally.nodes) == 2, "each worker wrote its counters"
    assert report.matches, report.as_json()
    assert sum(tally.billable.values()) > 0
    assert _failures(tmp_path) == []
    # The workers kept response times to the millisecond (loadtests.response_times), so the
    # master's percentiles between 100 ms and 1 s are not all Locust's steps of 10 ms.
    with (tmp_path / "locust_stats.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c.endswith("%")]
    mid = [float(r[c]) for r in rows for c in columns if 100 <= float(r[c] or 0) < 1000]
    assert len(mid) >= 10, mid
    assert any(value % 10 for value in mid), mid
