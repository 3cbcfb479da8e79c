"""Where a run's numbers meet its edges, from a review of the simulation's numbers.

A window reaching past the run's end was shortened or emptied without a word; a ratio of
nothing (availability when no operation completed) read 0.0; the part of a second a run ends
in was in no row (a 0.5 s run had no availability); plots drew the row of [t-1, t) at t; and
``compare`` said nothing of runs of different durations or seeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes
from typer.testing import CliRunner

from sim.cli import app
from sim.compare import RunFolder, compare_png
from sim.engine import run_scenario
from sim.replications import digest_result, summarise
from sim.report import summary, write_report
from sim.results import RunResult
from sim.scenario import Scenario, load_scenario

TINY = """
name: tiny
seed: 5
duration: {duration}
topology:
  operators:
    telco-es:
      number_ranges: ["+3460"]
      data_centres:
        mad-1: {{}}
traffic:
  applications:
    app:
      plan: enterprise
      purpose: dpv:RequestedServiceProvision
      arrival: {{process: poisson, rate: {rate}}}
      apis: {{device-roaming-status: 1.0}}
      client: {{timeout: {timeout}}}
faults: {faults}
expectations:
{expectations}
"""

WHOLE_RUN = "  - {name: availability, metric: availability, min: 0.5}"


def _scenario(
    tmp_path: Path,
    *,
    duration: float = 20,
    rate: float = 40,
    timeout: float = 5.0,
    faults: str = "[]",
    expectations: str = WHOLE_RUN,
) -> Scenario:
    path = tmp_path / f"tiny-{duration:g}.yaml"
    text = TINY.format(
        duration=duration, rate=rate, timeout=timeout, faults=faults, expectations=expectations
    )
    path.write_text(text, encoding="utf-8")
    (scenario,) = load_scenario(path)
    return scenario


# -- 1. windows past the run's end ------------------------------------------------------------

PAST = """\
  - {name: cut short, metric: goodput, window: [10, 30], min: 1}
  - {name: never reached, metric: goodput, window: [25, 40], max: 1000}
  - {name: late p99, metric: latency_p99, window: [25, 40], max: 10}
  - {name: inside, metric: goodput, window: [0, 20], min: 1}"""


def test_a_window_past_the_end_is_named_and_one_never_reached_is_not_a_pass(
    tmp_path: Path,
) -> None:
    from sim.expectations import windows_past_the_end

    scenario = _scenario(tmp_path, expectations=PAST)
    said = windows_past_the_end(scenario)
    assert said == [
        "'cut short': window [10, 30) s reaches past the run's end (20 s): measured over "
        "[10, 20) only",
        "'never reached': window [25, 40) s starts at or after the run's end (20 s): "
        "not measured",
        "'late p99': window [25, 40) s starts at or after the run's end (20 s): not measured",
    ]
    verdicts = {v.label: v for v in run_scenario(scenario).verdicts}
    short, never, late, inside = (verdicts[n] for n in ("cut short", "never reached",
                                                        "late p99", "inside"))
    assert short.value is not None and short.passed and short.note is not None
    assert "measured over [10, 20) only" in short.note
    for verdict in (never, late):
        assert verdict.value is None and not verdict.passed
        assert verdict.note is not None and "(20 s): not measured" in verdict.note
    assert inside.note is None and "note" not in inside.as_dict()
    assert short.as_dict()["note"] == short.note  # summary.json says it too


def test_run_warns_of_windows_past_the_end_before_it_runs(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, expectations=PAST)
    path = tmp_path / "tiny-20.yaml"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, said  # 'never reached' and 'late p99' fail
    assert "warning: default: 'never reached': window [25, 40) s starts at or after the run's" \
        " end (20 s)" in said
    assert "warning: default: 'cut short': window [10, 30) s reaches past the run's end" \
        " (20 s)" in said
    assert said.index("warning") < said.index("expectations")  # before the results
    assert scenario.duration == 20


# -- 2. a ratio of nothing is undefined --------------------------------------------------------


@pytest.fixture
def nothing_completed(tmp_path: Path) -> RunResult:
    """Every call waits on a partition for the whole run, its client longer than the run."""
    scenario = _scenario(
        tmp_path,
        duration=10,
        rate=20,
        timeout=60.0,
        faults="[{name: cut, kind: partition, between: [app, telco-es], at: 0, duration: 10}]",
    )
    result = run_scenario(scenario)
    assert result.totals()["operations"] and not result.totals()["completed"]
    return result


def test_availability_of_a_run_where_nothing_completed_is_undefined(
    nothing_completed: RunResult, tmp_path: Path
) -> None:
    totals = nothing_completed.totals()
    assert totals["availability"] is None  # was 0.0
    assert totals["retry_amplification"] == 1.0  # offered, so defined
    digest = summary([nothing_completed])
    assert digest["variants"]["default"]["totals"]["availability"] is None  # null in JSON


def test_retry_amplification_of_a_run_without_offers_is_undefined(tmp_path: Path) -> None:
    result = run_scenario(_scenario(tmp_path, duration=1, rate=0.001))
    totals = result.totals()
    assert totals["operations"] == 0
    assert totals["retry_amplification"] is None and totals["availability"] is None


def test_readers_skip_an_undefined_total(nothing_completed: RunResult, tmp_path: Path) -> None:
    """Replications leave it out of the mean (not a fake 0); tables, HTML and compare show —."""
    empty = digest_result(nothing_completed, replication=0)
    assert empty.metrics["availability"] is None
    healthy = run_scenario(_scenario(tmp_path, duration=10))
    full = digest_result(healthy, replication=1)
    (s,) = summarise([empty, full])
    availability = s.metrics["availability"]
    assert availability is not None and availability.n == 1
    assert availability.mean == full.metrics["availability"]
    out = tmp_path / "report"
    write_report([nothing_completed], out)
    assert json.loads((out / "summary.json").read_text())["variants"]["default"]["totals"][
        "availability"
    ] is None
    folder = RunFolder.read(out)
    assert folder.metrics["default"]["availability"].text() == "—"


def test_the_run_table_shows_an_undefined_total_as_a_dash(tmp_path: Path) -> None:
    _scenario(
        tmp_path,
        duration=5,
        rate=20,
        timeout=60.0,
        faults="[{name: cut, kind: partition, between: [app, telco-es], at: 0, duration: 5}]",
    )
    result = CliRunner().invoke(
        app, ["run", str(tmp_path / "tiny-5.yaml"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    line = next(x for x in result.output.splitlines() if "│ availability" in x)
    assert "—" in line and "0" not in line.replace("availability", "")


# -- 3. the part of a second a run ends in ----------------------------------------------------


@pytest.mark.parametrize("duration", [0.5, 10.5])
def test_the_trailing_part_of_a_second_is_a_row(tmp_path: Path, duration: float) -> None:
    result = run_scenario(_scenario(tmp_path, duration=duration))
    rows = result.rows
    assert len(rows) == math.ceil(duration)  # one row a second, and one for the last part
    assert rows[-1]["t"] == duration  # it covers [floor(duration), duration)
    totals = result.totals()
    for column, total in (("offered", "operations"), ("completed", "completed"),
                          ("goodput", "succeeded")):
        assert sum(row[column] for row in rows) == totals[total], column
    (availability,) = result.verdicts  # the whole-run ratio, read from the rows
    assert availability.value is not None  # a 0.5 s run read "—"
    assert availability.value == totals["availability"]


def test_goodput_over_a_trailing_part_is_per_second_of_it(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path, duration=0.5, rate=200,
        expectations="  - {name: goodput, metric: goodput, min: 0}",
    )
    result = run_scenario(scenario)
    (goodput,) = result.verdicts
    assert goodput.value == pytest.approx(result.totals()["succeeded"] / 0.5)


def test_row_intervals() -> None:
    from sim.metrics import row_midpoint, row_span, row_start

    assert (row_start(3.0), row_span(3.0), row_midpoint(3.0)) == (2.0, 1.0, 2.5)
    assert (row_start(10.5), row_span(10.5), row_midpoint(10.5)) == (10.0, 0.5, 10.25)
    assert (row_start(0.5), row_span(0.5), row_midpoint(0.5)) == (0.0, 0.5, 0.25)


# -- 4. plots put a row at the middle of its interval -----------------------------------------


def _plotted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[float], dict[str, Any]]]:
    """Every line drawn from now on: its x values and keywords."""
    drawn: list[tuple[list[float], dict[str, Any]]] = []
    original = Axes.plot

    def plot(self: Axes, *args: Any, **kwargs: Any) -> Any:
        if args and not isinstance(args[0], str):
            drawn.append((list(args[0]), kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", plot)
    return drawn


def test_plots_draw_a_second_at_its_middle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_scenario(_scenario(tmp_path, duration=5))
    drawn = _plotted(monkeypatch)
    write_report([result], tmp_path / "a")
    goodput = next(x for x, kwargs in drawn if kwargs.get("label") == "goodput")
    assert goodput == [0.5, 1.5, 2.5, 3.5, 4.5]  # the row of [0, 1) at 0.5, not at 1
    p50 = next(x for x, kwargs in drawn if kwargs.get("label") == "p50")
    assert p50[0] == 0.5
    drawn.clear()
    compare_png(RunFolder.read(tmp_path / "a"), RunFolder.read(tmp_path / "a"),
                tmp_path / "ab.png")
    assert drawn and all(x[0] == 0.5 for x, _ in drawn)


# -- 5. compare says when the runs differ in duration, seed or scenario ----------------------


def _folder(path: Path, *, duration: float, seed: int, scenario: str = "tiny") -> Path:
    path.mkdir()
    document = {
        "scenario": scenario,
        "seed": seed,
        "duration": duration,
        "passed": True,
        "variants": {"default": {"totals": {"operations": 10}, "expectations": [],
                                 "events": {}}},
    }
    (path / "summary.json").write_text(json.dumps(document), encoding="utf-8")
    (path / "timeseries-default.csv").write_text(
        "t,attempts,goodput,latency_p99\n1,10,10,0.1\n2,10,10,0.1\n", encoding="utf-8"
    )
    return path


def test_compare_warns_when_the_runs_differ_in_duration_or_seed(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", duration=300, seed=1)
    b = _folder(tmp_path / "b", duration=150, seed=2, scenario="other")
    same = _folder(tmp_path / "c", duration=300, seed=1)
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "ab.png")])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "warning: the runs differ in duration: A 300 s, B 150 s" in said
    assert "warning: the runs differ in seed: A 1, B 2" in said
    assert "warning: the runs are of different scenarios: A tiny, B other" in said
    result = runner.invoke(app, ["compare", str(a), str(same), "--out", str(tmp_path / "ac.png")])
    assert result.exit_code == 0 and "warning" not in result.output
