"""``ogsim analytics``: funnel, cohorts, anomalies, segments and revenue from an operator's
database file (seeded through the real portal, gateway and monitor) and from a running
operator's admin pages, as tables, CSV, JSON and PNG; a flag the pages refuse is named (exit 2).
"""

from __future__ import annotations

import csv
import io
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from rich.console import Console
from typer.testing import CliRunner

from operators.config import TokenLifetimes, example_operator
from operators.identity import KeySealing
from operators.operator import Operator, create_operator_app
from sim.cli import analytics, analytics_fetch, app
from tests.operators.portal.conftest import FakeClock, Portal
from tests.operators.portal.test_analytics_pages import Seeded, _seed

runner = CliRunner()
WIDE = {"COLUMNS": "220"}
"""For a console built during the test; the commands' own are built at import, when a
``COLUMNS`` already set (as CI sets it) fixes their width: see :func:`wide_consoles`."""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' consoles 220 columns wide whatever the terminal, so a table's cells and
    a message's path are not cut or wrapped where the assertions look for them."""
    monkeypatch.setattr(analytics_fetch, "console", Console(width=220))
    monkeypatch.setattr(analytics, "console", analytics_fetch.console)
    monkeypatch.setattr(analytics_fetch, "errors", Console(width=220, stderr=True))


@dataclass
class SeededDb:
    path: Path
    seeded: Seeded
    month: str
    """The month of the billed calls (YYYY-MM)."""


@pytest.fixture
async def seeded_db(tmp_path: Path) -> SeededDb:
    """An operator's database file with two developers, calls, a flood and its alerts, dated
    three weeks ago (the command reads it at the real time): both applications are dormant
    by now, Bob's never called."""
    path = tmp_path / "telco-es.sqlite3"
    config = example_operator(storage=str(path)).model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0)}
    )
    clock = FakeClock()
    clock.now = (time.time() // 3600 - 21 * 24) * 3600
    month = time.strftime("%Y-%m", time.gmtime(clock.now))
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    portal = Portal(operator, create_operator_app(operator), clock)
    try:
        seeded = await _seed(portal)
    finally:
        for http in portal.opened:
            await http.aclose()
        operator.close()
    return SeededDb(path, seeded, month)


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["analytics", *args], env=WIDE)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "command", [[], ["funnel"], ["cohorts"], ["anomalies"], ["segments"], ["revenue"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    code, output = _run(*command, "--help")
    assert code == 0 and "Usage" in output
    if command:
        assert "--db" in output and "--url" in output and "--csv" in output


def test_funnel_from_the_database(seeded_db: SeededDb, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, output = _run(
        "funnel",
        "--db",
        str(seeded_db.path),
        "--api",
        "sim-swap",
        "--window",
        "24h",
        "--csv",
        str(out / "funnel.csv"),
        "--json",
        str(out / "funnel.json"),
        "--png",
        str(out / "funnel.png"),
    )
    assert code == 0, output
    assert "Funnel: sim-swap, window 1d" in output and "bob@example.com" in output
    report = json.loads((out / "funnel.json").read_text())
    assert [s["entered"] for s in report["steps"]] == [2, 2, 1, 1]
    rows = list(csv.reader(io.StringIO((out / "funnel.csv").read_text())))
    assert rows[0][0] == "step" and any(r[5] == seeded_db.seeded.bob_id for r in rows[1:])
    assert (out / "funnel.png").read_bytes().startswith(PNG)


def test_cohorts_anomalies_segments_and_revenue(seeded_db: SeededDb, tmp_path: Path) -> None:
    db = str(seeded_db.path)
    code, output = _run("cohorts", "--db", db, "--weeks", "4", "--png", str(tmp_path / "c.png"))
    assert code == 0, output
    assert "Retention by sign-up week" in output
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)

    code, output = _run(
        "anomalies",
        "--db",
        db,
        "--kind",
        "volume_spike",
        "--csv",
        str(tmp_path / "a.csv"),
        "--png",
        str(tmp_path / "a.png"),
    )
    assert code == 0, output
    assert "volume_spike" in output and seeded_db.seeded.ada_app in output
    rows = list(csv.reader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert [r[1] for r in rows[1:]] == ["volume_spike"]
    assert rows[1][2] == seeded_db.seeded.ada_app and rows[1][6] == "ada@example.com"
    assert (tmp_path / "a.png").read_bytes().startswith(PNG)

    code, output = _run("segments", "--db", db, "--json", str(tmp_path / "s.json"))
    assert code == 0, output
    for title in ("churn risk", "power users", "upsell", "dormant"):
        assert title in output
    segments = json.loads((tmp_path / "s.json").read_text())["segments"]
    dormant = {e["clientId"]: e for e in segments["dormant"]}
    bob, ada = dormant[seeded_db.seeded.bob_app], dormant[seeded_db.seeded.ada_app]
    assert len(dormant) == 2 and bob["email"] == "bob@example.com"
    assert bob["reason"].startswith("created 2") and bob["reason"].endswith("never called")
    assert ada["reason"] in ("no call for 19 days", "no call for 20 days")  # a day after sign-up
    assert seeded_db.seeded.bob_app in output and "never called" in output
    assert segments["churn_risk"] == segments["power_users"] == segments["upsell"] == []

    code, output = _run(
        "revenue",
        "--db",
        db,
        "--month",
        seeded_db.month,
        "--png",
        str(tmp_path / "r.png"),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert code == 0, output
    revenue = json.loads((tmp_path / "r.json").read_text())["revenue"]
    assert revenue["month"] == seeded_db.month
    assert revenue["totals"] == {"EUR": "0.03"}  # 3 billed calls at 0.01
    assert "0.03 EUR" in output and "Acme" in output
    assert (tmp_path / "r.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["funnel", "--window", "soon"], "--window"),
        (["funnel", "--api", "teleport"], "--api"),
        (["funnel", "--steps", "signed_up,flew"], "--steps"),
        (["cohorts", "--weeks", "13"], "--weeks"),
        (["cohorts", "--weeks", "many"], "--weeks"),
        (["anomalies", "--kind", "burglary"], "--kind"),
        (["anomalies", "--application", "app-nobody"], "--application"),
        (["anomalies", "--days", "0"], "--days"),
        (["segments", "--segment", "whales"], "--segment"),
        (["segments", "--png", "x.png"], "--png"),
        (["revenue", "--month", "2026-13"], "--month"),
        (["revenue", "--month", "2999-01"], "--month"),
    ],
)
def test_a_refused_flag_is_named(seeded_db: SeededDb, args: list[str], flag: str) -> None:
    code, output = _run(*args, "--db", str(seeded_db.path))
    assert code == 2, output
    assert flag in output


def test_where_to_read_is_checked(tmp_path: Path) -> None:
    code, output = _run("funnel")
    assert code == 2 and "--db" in output and "--url" in output
    code, output = _run("funnel", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "--db" in output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, only some bytes " * 64)
    result = runner.invoke(app, ["analytics", "funnel", "--db", str(junk)], env=WIDE)
    assert result.exit_code == 2 and "--db" in result.output and "not" in result.output
    assert isinstance(result.exception, SystemExit)  # a message, no traceback
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as made:
        made.execute("CREATE TABLE notes (text TEXT)")
    made.close()
    before = other.read_bytes()
    code, output = _run("cohorts", "--db", str(other))
    assert code == 2 and "--db" in output and "analytics_activities" in output
    assert other.read_bytes() == before
    code, output = _run("funnel", "--db", "x", "--url", "http://127.0.0.1:1")
    assert code == 2
    code, output = _run("funnel", "--url", "http://127.0.0.1:1")
    assert code == 1 and "--url" in output


@pytest.mark.parametrize("flag", ["--csv", "--json", "--png"])
def test_an_output_into_a_missing_folder_is_named(
    seeded_db: SeededDb, tmp_path: Path, flag: str
) -> None:
    target = tmp_path / "no-such-folder" / "out.file"
    result = runner.invoke(
        app, ["analytics", "funnel", "--db", str(seeded_db.path), flag, str(target)], env=WIDE
    )
    assert result.exit_code == 2 and flag in result.output and "no-such-folder" in result.output
    assert isinstance(result.exception, SystemExit)
    code, output = _run("funnel", "--db", str(seeded_db.path), flag, str(tmp_path))
    assert code == 2 and flag in output and "directory" in output


def test_reading_the_database_never_writes_it(seeded_db: SeededDb, tmp_path: Path) -> None:
    path = seeded_db.path
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    for command in (["funnel"], ["revenue", "--month", seeded_db.month], ["anomalies"]):
        code, output = _run(*command, "--db", str(path), "--json", str(tmp_path / "x.json"))
        assert code == 0, output
    # reading needs no signing key: another key-encryption key than the operator's will do
    other = {**WIDE, "OGSIM_KEY_ENCRYPTION_KEY": KeySealing.generate()}
    result = runner.invoke(app, ["analytics", "anomalies", "--db", str(path)], env=other)
    assert result.exit_code == 0 and seeded_db.seeded.ada_app in result.output, result.output
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing appended for a checkpoint


@pytest.fixture
def served(seeded_db: SeededDb) -> Iterator[str]:
    """The seeded operator under uvicorn on a loopback port (no lifespan: nothing runs beside
    the requests)."""
    config = example_operator(storage=str(seeded_db.path))
    operator = Operator.from_config(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_operator_app(operator), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the operator did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        operator.close()


def test_a_running_operator_answers_as_its_database(
    served: str, seeded_db: SeededDb, tmp_path: Path
) -> None:
    live, local = tmp_path / "live.json", tmp_path / "local.json"
    code, output = _run("funnel", "--url", served, "--window", "24h", "--json", str(live))
    assert code == 0, output
    code, output = _run(
        "funnel", "--db", str(seeded_db.path), "--window", "24h", "--json", str(local)
    )
    assert code == 0, output
    strip = lambda r: {k: v for k, v in r.items() if k != "generatedAt"}  # noqa: E731
    assert strip(json.loads(live.read_text())) == strip(json.loads(local.read_text()))
    code, output = _run("funnel", "--url", served, "--window", "never")
    assert code == 2 and "--window" in output
    code, output = _run("funnel", "--url", served, "--admin-secret", "wrong")
    assert code == 1 and "401" in output
