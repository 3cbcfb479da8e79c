"""``ogsim validate``'s library: the engine's SimPy function and the live one against theory.

The command itself (options, the summary line, the exit code) is tested with the CLI in
``tests/sim/test_cli.py``.
"""

from __future__ import annotations

import math

import pytest

from sim.validate import ValidationRow, mean_and_half_width, run_validation, t_quantile_975


def test_quick_validation_passes_every_simpy_row() -> None:
    rows = run_validation(quick=True, seed=1, replications=3, live=False)
    failed = [row for row in rows if not row.passed]
    assert len(rows) == 8 and not failed, failed
    quantities = {row.quantity for row in rows}
    assert {"Wq (Erlang C)", "P(block) (loss)", "Little L = λW"} <= quantities
    assert {row.model for row in rows} >= {"M/M/1", "M/M/3/6"}


def test_the_live_function_is_measured_in_model_units() -> None:
    """Its verdict depends on the machine's load (wall time), so only its shape is tested:
    the three rows, with measured values of the right order of magnitude."""
    rows = [r for r in run_validation(quick=True, seed=1, replications=3) if "live" in r.model]
    assert [r.quantity for r in rows] == ["Wq (Erlang C)", "mean service", "Little L = λW"]
    service = rows[1]
    assert service.theory == 1.0 and 0.5 < service.measured < 20, service


def test_a_failed_row_fails_the_verdict() -> None:
    far = ValidationRow("M/M/1", "", "Wq", 1.0, 1.5, 0.1, 0.03)
    inside = ValidationRow("M/M/1", "", "Wq", 1.0, 1.5, 0.6, 0.03)
    close = ValidationRow("M/M/1", "", "Wq", 1.0, 1.02, 0.0, 0.03)
    assert not far.passed and inside.passed and close.passed


def test_student_t_interval() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706, abs=1e-3)  # the printed tables
    assert t_quantile_975(2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile_975(1000) == pytest.approx(1.962, abs=1e-3)
    mean, half = mean_and_half_width([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(t_quantile_975(2) * 1 / math.sqrt(3))
