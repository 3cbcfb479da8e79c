"""``ogsim invoices``: from an operator's database file or its admin API, as JSON, CSV or a
table; a bad ``--month`` is refused naming the flag."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from operators.billing import application_invoices, build_invoice_admin_router, invoices_json
from operators.gateway import install_camara_error_handlers
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database
from sim.cli import app

from .support import DAY, MARCH, FakeClock, event, priced_operator

runner = CliRunner()


@pytest.fixture
def operator_files(tmp_path: Path) -> tuple[Path, Path]:
    """An operator's database with a March of calls, and its config as a YAML file."""
    db_path = tmp_path / "telco-es.sqlite3"
    config = priced_operator(str(db_path))
    config_path = tmp_path / "operator.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    db = Database(str(db_path))
    clock = FakeClock(MARCH.start + DAY)
    plans = PlanSubscriptions(config, db, clock=clock)
    plans.subscribe("app", "sim-swap", "growth")
    ledger = UsageLedger(db)
    for i in range(12):
        ledger.record(event("app", f"c{i}", MARCH.start + (i + 2) * DAY))
        ledger.record(event("other", f"k{i}", MARCH.start + i * DAY, "kyc-match"))
    db.close()
    return db_path, config_path


def _library_payload(db_path: Path, config_path: Path) -> dict[str, Any]:
    config = priced_operator(str(db_path))
    db = Database(str(db_path))
    found = application_invoices(
        config, PlanSubscriptions(config, db), UsageLedger(db).events(), MARCH, now=MARCH.end
    )
    return {
        "party": config.id,
        "month": "2025-03",
        "status": "final",
        "invoices": [i.document() for i in found],
    }


def test_json_from_the_database_is_the_librarys_bytes(operator_files: tuple[Path, Path]) -> None:
    db_path, config_path = operator_files
    args = ["invoices", "--db", str(db_path), "-c", str(config_path), "--month", "2025-03"]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.output.encode() == invoices_json(_library_payload(db_path, config_path))
    again = runner.invoke(app, [*args, "--format", "json"])
    assert again.output == result.output  # reproducible
    customers = [doc["customer"]["id"] for doc in json.loads(result.output)["invoices"]]
    assert customers == ["app", "other"]


def test_csv_and_table(operator_files: tuple[Path, Path], tmp_path: Path) -> None:
    db_path, config_path = operator_files
    args = ["invoices", "--db", str(db_path), "-c", str(config_path), "--month", "2025-03"]
    out = tmp_path / "march.csv"
    result = runner.invoke(app, [*args, "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    totals = {row["customer"]: row["amount"] for row in rows if row["kind"] == "total"}
    # app: growth from 2 March: fee 31.00 x 30/31 = 30.00; 5 x 0.10 + 1.00 + 7 x 0.05 = 1.85
    # other: pay-as-you-go (the default), 12 x 0.01
    assert totals == {"app": "31.85", "other": "0.12"}
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "31.85" in table.output and "tier 2" in table.output


def test_from_a_running_operators_admin_api(
    operator_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path, config_path = operator_files
    config = priced_operator(str(db_path))
    db = Database(str(db_path))
    api = FastAPI()
    install_camara_error_handlers(api)
    api.include_router(
        build_invoice_admin_router(
            config, PlanSubscriptions(config, db), UsageLedger(db), lambda: MARCH.end + DAY
        )
    )

    def get(url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport) as client:
                answer = await client.get(url, **kwargs)
                await answer.aread()
                return answer

        return asyncio.run(call())

    monkeypatch.setattr(httpx, "get", get)
    base = ["invoices", "--url", "http://telco-es.test", "--month", "2025-03"]
    result = runner.invoke(app, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.output.encode() == invoices_json(_library_payload(db_path, config_path))
    refused = runner.invoke(app, [*base, "--admin-secret", "wrong-secret"])
    assert refused.exit_code == 1 and "401" in refused.output


@pytest.mark.parametrize("month", ["2025-13", "march", "2025-3", "25-03"])
def test_a_bad_month_is_refused_naming_the_flag(month: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["invoices", "--db", str(tmp_path / "x"), "--month", month])
    assert result.exit_code == 2
    assert "--month" in result.output and "YYYY-MM" in result.output


def test_other_bad_input_is_a_message(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["invoices", "--db", str(tmp_path / "none.sqlite3")])
    assert missing.exit_code == 2 and "--db" in missing.output
    neither = runner.invoke(app, ["invoices"])
    assert neither.exit_code == 2 and "--db" in neither.output and "--url" in neither.output
    fmt = runner.invoke(app, ["invoices", "--db", "x", "--format", "pdf"])
    assert fmt.exit_code == 2 and "--format" in fmt.output
    assert "--month" in runner.invoke(app, ["invoices", "--help"]).output


def test_a_file_that_is_no_operator_database_is_named_and_left_as_it_was(
    tmp_path: Path, operator_files: tuple[Path, Path]
) -> None:
    """An empty file or another program's database once got the operator's tables written
    into it (and read "no invoice"); a text file got a traceback."""
    blank = tmp_path / "blank.db"
    blank.write_bytes(b"")
    text = tmp_path / "notes.yaml"
    text.write_text("not: a database\n")
    for path, said in ((blank, "keeps no operator records"), (text, "not an operator's")):
        result = runner.invoke(app, ["invoices", "--db", str(path), "--month", "2025-01"])
        assert result.exit_code == 2 and "--db" in result.output and said in result.output
        assert "Traceback" not in result.output
    assert blank.read_bytes() == b""
    db_path, config_path = operator_files
    base = ["invoices", "--db", str(db_path), "-c", str(config_path), "--month", "2025-03",
            "--format", "json"]
    into_folder = runner.invoke(app, [*base, "--out", str(tmp_path)])
    assert into_folder.exit_code == 2 and "give a file name" in into_folder.output
    nested = tmp_path / "reports" / "march.json"
    written = runner.invoke(app, [*base, "--out", str(nested)])
    assert written.exit_code == 0, written.output
    assert json.loads(nested.read_text())["month"] == "2025-03"


def test_the_database_is_only_read_even_while_the_operator_writes(
    operator_files: tuple[Path, Path],
) -> None:
    """A report on a live operator's file: the operator holds a write transaction open (as
    its group commit does), and the report still runs, on a copy, writing nothing to it (the
    stores' schema steps took a write lock on the file, and waited on the operator's)."""
    db_path, config_path = operator_files
    expected = invoices_json(_library_payload(db_path, config_path))
    live = Database(str(db_path))
    with live.transaction():
        live.execute("INSERT INTO plan_history (client_id, api, plan, from_at)"
                     " VALUES ('app', 'sim-swap', 'growth', 1.0)")
        args = ["invoices", "--db", str(db_path), "-c", str(config_path), "--month", "2025-03",
                "--format", "json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.output.encode() == expected, "the committed state only"
    live.close()
