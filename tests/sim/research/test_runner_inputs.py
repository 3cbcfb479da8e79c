"""The runner's and the CLI's handling of what a read-only review found wrong: expectations
judged on another's values, undefined values dropped from an interval, bad flag values as
tracebacks, results lost at write time."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sim.cli.simulate import compare, run, sweep
from sim.compare import RunFolder, differences
from sim.engine import World
from sim.replications import RunDigest, VerdictRow, judge, summarise
from sim.results import TOTALS
from sim.sweep import metric_names, parse_vary, plan_sweep

from .conftest import SMALL

SPARSE = """
name: sparse
seed: 5
duration: 30
topology:
  operators:
    op-a:
      number_ranges: ["+3460"]
traffic:
  applications:
    app:
      arrival: {process: poisson, rate: 0.1}
      apis: {sim-swap.check: 1.0}
expectations:
  - {name: early p99, metric: latency_p99, window: [0, 5], max: 1}
"""


def _commands() -> typer.Typer:
    commands = typer.Typer()
    commands.command("run")(run)
    commands.command("sweep")(sweep)
    commands.command("compare")(compare)
    return commands


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(_commands(), list(args))
    # a refusal is an exit with a message, never an exception's traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _digest(replication: int, values: list[float | None], label: str = "x") -> RunDigest:
    return RunDigest(
        point=0,
        variant="default",
        replication=replication,
        seed=replication,
        metrics={"availability": 0.5},
        verdicts=tuple(VerdictRow(label, "goodput", v, 1.0, None) for v in values),
        rows=(),
        events={},
    )


def test_a_replication_without_a_value_fails_the_expectation() -> None:
    verdict = judge("p99", "latency_p99", [0.1, None, 0.12, 0.11, math.nan], None, 1.0)
    assert verdict.outcome == "fail"
    assert verdict.interval is not None and verdict.interval.n == 3
    assert (verdict.runs, verdict.undefined) == (5, 2)
    assert judge("p99", "latency_p99", [0.1, 0.12, 0.11], None, 1.0).outcome == "pass"


def test_each_expectation_is_judged_on_its_own_values_not_one_of_the_same_label() -> None:
    # two verdicts under one label (a digest from before labels were made unique): the
    # second is judged on its own values, by position
    runs = [_digest(i, [5.0 + i, 0.1 * i]) for i in range(3)]
    first, second = summarise(runs)[0].verdicts
    assert first.outcome == "pass" and second.outcome == "fail"
    assert second.interval is not None and second.interval.mean == pytest.approx(0.1)


def test_an_expectation_named_like_a_total_does_not_replace_it(tmp_path: Path) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(
        SMALL.replace(
            "  - {name: goodput, metric: goodput, min: 5}\n",
            "  - {name: goodput_per_second, metric: latency_p99, max: 100}\n",
        ).replace("name: availability, metric: availability, min: 0.9", "metric: goodput, min: 1"),
        encoding="utf-8",
    )
    out = tmp_path / "reps"
    code, output = _invoke(
        "run", str(source), "--replications", "2", "--workers", "1", "--out", str(out)
    )
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))["variants"]
    metrics = summary["default"]["metrics"]
    latency = next(e for e in summary["default"]["expectations"] if e["metric"] == "latency_p99")
    assert metrics["goodput_per_second"]["mean"] > 10  # 20 calls/s offered, most succeed
    assert latency["interval"]["mean"] < 1  # the p99 latency in seconds
    with (out / "replications.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["goodput_per_second"]) > 10
    assert float(rows[0]["expectation: goodput_per_second"]) < 1
    folder = RunFolder.read(out)
    rows = {d.title: d.a.value for d in differences(folder, folder, "default", "default")}
    assert rows["goodput_per_second"] == metrics["goodput_per_second"]["mean"]
    assert rows["expectation: goodput_per_second"] == latency["interval"]["mean"]
    code, output = _invoke("compare", str(out), str(out), "--out", str(tmp_path / "c.html"))
    assert code == 0, output
    assert "expectation: goodput_per_second" in (tmp_path / "c.html").read_text(encoding="utf-8")


def test_undefined_replications_fail_and_the_table_shows_how_many(tmp_path: Path) -> None:
    source = tmp_path / "sparse.yaml"
    source.write_text(SPARSE, encoding="utf-8")
    out = tmp_path / "reps"
    code, output = _invoke(
        "run", str(source), "--replications", "6", "--workers", "1", "--out", str(out)
    )
    expectation = json.loads((out / "summary.json").read_text(encoding="utf-8"))["variants"][
        "default"
    ]["expectations"][0]
    assert expectation["undefined"] > 0 and expectation["replications"] == 6
    assert expectation["outcome"] == "fail" and code == 1, output
    assert f"{6 - expectation['undefined']}/6" in output


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--set", "seed=[1", "bad --set seed:"),
        ("--set", "name=@home", "bad --set name:"),
        ("--set", "name=*x", "bad --set name:"),
    ],
)
def test_a_flag_value_that_is_not_yaml_is_named(
    tmp_path: Path, flag: str, value: str, named: str
) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(SMALL, encoding="utf-8")
    for command in ("run", "sweep"):
        extra = ["--vary", "seed=1"] if command == "sweep" else []
        code, output = _invoke(command, str(source), flag, value, *extra, "--out", str(tmp_path))
        assert code == 2 and named in output and "is not a YAML value" in output


def test_a_vary_value_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(SMALL, encoding="utf-8")
    code, output = _invoke("sweep", str(source), "--vary", "x={a", "--out", str(tmp_path))
    assert code == 2 and "bad --vary x: '{a' is not a YAML value" in output


def test_an_unknown_sweep_metric_is_refused_before_any_run(tmp_path: Path) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(SMALL, encoding="utf-8")
    out = tmp_path / "sweep"
    code, output = _invoke(
        "sweep", str(source), "--vary", "seed=1,2", "--metric", "p99", "--out", str(out)
    )
    assert code == 2 and "bad --metric: unknown metric 'p99'" in output
    assert not out.exists()  # refused before running, not after
    code, output = _invoke(
        "sweep", str(source), "--vary", "seed=1", "--metric", "goodput", "--out", str(out)
    )
    assert code == 0, output  # an expectation's name is a metric


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_an_out_folder_that_cannot_be_made_is_refused_before_the_run(
    tmp_path: Path, command: str
) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(SMALL, encoding="utf-8")
    extra = ["--vary", "seed=1"] if command == "sweep" else []
    code, output = _invoke(command, str(source), *extra, "--out", "/proc/ogsim-out/x")
    assert code == 2 and "--out: cannot write in" in output


@pytest.mark.parametrize("values", ["[]", "{}"])
def test_a_sweep_file_with_nothing_to_vary_is_named(tmp_path: Path, values: str) -> None:
    (tmp_path / "small.yaml").write_text(SMALL, encoding="utf-8")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"scenario: small.yaml\nvary:\n  seed: {values}\n", encoding="utf-8")
    code, output = _invoke("sweep", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and "vary: Value error, no values to vary for seed" in output


def test_a_sweep_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    spec = tmp_path / "binary.yaml"
    spec.write_bytes(b"\xff\xfe bad")
    code, output = _invoke("sweep", str(spec), "--vary", "seed=1", "--out", str(tmp_path))
    assert code == 2 and "not UTF-8 text" in output


def test_the_totals_a_sweep_knows_before_running_are_those_a_run_reports(tmp_path: Path) -> None:
    source = tmp_path / "small.yaml"
    source.write_text(SMALL, encoding="utf-8")
    plan = plan_sweep(source, [parse_vary("seed=1")])
    result = World(plan.variants[0][0]).run()
    assert set(TOTALS) == set(result.totals())
    assert set(result.totals()) | {e.label for e in plan.variants[0][0].expectations} == (
        metric_names(plan)
    )
