from __future__ import annotations

import math

import pytest
import typer
from typer.testing import CliRunner

from sim.validate import ValidationRow, mean_and_half_width, t_quantile_975, validate


def test_quick_validation_passes_and_ends_with_the_summary_line() -> None:
    app = typer.Typer()
    app.command()(validate)
    result = CliRunner().invoke(app, ["--quick", "--seed", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "validate: 11 passed, 0 failed"
    assert "Erlang C" in result.output and "Little" in result.output


def test_a_failed_row_fails_the_verdict() -> None:
    far = ValidationRow("M/M/1", "", "Wq", 1.0, 1.5, 0.1, 0.03)
    inside = ValidationRow("M/M/1", "", "Wq", 1.0, 1.5, 0.6, 0.03)
    close = ValidationRow("M/M/1", "", "Wq", 1.0, 1.02, 0.0, 0.03)
    assert not far.passed and inside.passed and close.passed


def test_student_t_interval() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(1000) == pytest.approx(1.962, abs=1e-3)
    mean, half = mean_and_half_width([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1 / math.sqrt(3))
