"""An output path that cannot be written, though its permission bits pass (root in /proc
or /sys), is named by its flag with exit 2, not a traceback: ``compare --out``, ``invoices
--out``; and ``analytics --png`` with an extension matplotlib cannot draw is refused before
anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from operators.config import example_operator
from operators.gateway import PlanSubscriptions, UsageLedger
from operators.storage import Database
from sim.cli import app
from sim.cli.analytics_fetch import image_problem
from tests.sim.research.conftest import SMALL

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def _said(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL, encoding="utf-8")
    folder = tmp_path / "run"
    result = runner.invoke(app, ["run", str(scenario), "--duration", "5", "--out", str(folder)])
    assert "report in" in result.output, result.output
    return folder


def test_compare_names_an_out_it_cannot_write(run_folder: Path) -> None:
    for out in ("/proc/ogsim-compare.html", "/sys/ogsim-compare.png"):
        result = runner.invoke(app, ["compare", str(run_folder), str(run_folder), "--out", out],
                               env=WIDE)
        said = _said(result.output)
        assert result.exit_code == 2 and "--out" in said, said
        assert isinstance(result.exception, SystemExit | None), result.exception


def test_invoices_names_an_out_it_cannot_write(tmp_path: Path) -> None:
    db_path = tmp_path / "telco-es.sqlite3"
    db = Database(str(db_path))
    PlanSubscriptions(example_operator(), db)  # the tables an operator's file has
    UsageLedger(db)
    db.close()
    result = runner.invoke(app, ["invoices", "--db", str(db_path), "--format", "json", "--out",
                                 "/proc/ogsim-invoices.json"], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2 and "--out" in said and "/proc/ogsim-invoices.json" in said, said
    assert isinstance(result.exception, SystemExit | None), result.exception


def test_analytics_refuses_a_plot_it_cannot_draw_before_reading(tmp_path: Path) -> None:
    """matplotlib's ValueError came only after the page was read; now nothing is asked (the
    URL is never contacted)."""
    plot = tmp_path / "funnel.xyz"
    result = runner.invoke(app, ["analytics", "funnel", "--url", "http://127.0.0.1:9",
                                 "--png", str(plot)], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2, said
    assert "--png: funnel.xyz: cannot draw a .xyz file; give .png" in said, said
    assert not plot.exists()


def test_analytics_refuses_one_file_for_two_outputs(tmp_path: Path) -> None:
    """--csv F --json F wrote one over the other without a word."""
    same = tmp_path / "out.txt"
    result = runner.invoke(app, ["analytics", "funnel", "--url", "http://127.0.0.1:9",
                                 "--csv", str(same), "--json", str(same)], env=WIDE)
    said = _said(result.output)
    assert result.exit_code == 2 and "--json:" in said and "--csv's file" in said, said
    assert not same.exists()


def test_up_refuses_a_timeout_it_cannot_keep_before_starting_anything() -> None:
    for timeout in ("-1", "0", "1e9"):
        result = runner.invoke(app, ["up", "--timeout", timeout], env=WIDE)
        assert result.exit_code == 2 and "--timeout" in _said(result.output), result.output


@pytest.mark.parametrize("name", ["f.png", "f.PNG", "f.svg", "f.pdf", "f"])
def test_a_plot_matplotlib_draws_is_accepted(name: str) -> None:
    assert image_problem(Path(name)) is None


def test_a_plot_needing_latex_is_refused() -> None:
    assert image_problem(Path("f.pgf")) is not None
