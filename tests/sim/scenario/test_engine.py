"""The engine: same seed, same bytes; Little's law; streamed (not per-call) metrics."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from sim.cli.simulate import run
from sim.engine import run_scenario
from sim.scenario import load_scenario


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("run")(run)
    app.command("schema")(lambda: None)
    return app


def test_same_seed_gives_identical_summary_bytes(small: Path, tmp_path: Path) -> None:
    outputs = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        folder = tmp_path / name
        result = CliRunner().invoke(
            cli(), ["run", str(small), "--seed", seed, "--out", str(folder)]
        )
        assert result.exit_code == 0, result.output
        outputs.append((folder / "summary.json").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_report_folder_has_csv_and_plots(small: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["run", str(small), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Little's law" in result.output and "PASS" in result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert {"summary.json", "timeseries-default.csv", "goodput.png", "latency.png"} <= names
    assert {"breakers.png", "queues.png"} <= names
    header = (tmp_path / "timeseries-default.csv").read_text().splitlines()[0].split(",")
    assert {"t", "offered", "goodput", "latency_p99", "queue.telco-es.sim_data_register"} <= set(
        header
    )


def test_failed_expectation_exits_1(small: Path, tmp_path: Path) -> None:
    override = "expectations.0.min=1.01"
    result = CliRunner().invoke(
        cli(), ["run", str(small), "--set", override, "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_littles_law_holds_for_clients_and_stations(small: Path) -> None:
    (scenario,) = load_scenario(small, duration=60)
    result = run_scenario(scenario)
    assert result.little.holds, result.little
    assert result.little.mean_in_system > 0
    assert result.stations
    for station in result.stations:
        assert station.relative_error < 0.02, station


def test_metrics_are_a_row_per_second_not_a_record_per_call(small: Path) -> None:
    short, long = (run_scenario(load_scenario(small, duration=d)[0]) for d in (20, 80))
    assert len(short.rows) == 20 and len(long.rows) == 80
    assert long.calls > 3 * short.calls
    assert set(long.keys) == set(short.keys)  # per-key totals, not per-call records


def test_throttle_refuses_the_free_plan_beyond_its_rate(small: Path) -> None:
    (scenario,) = load_scenario(small, duration=30)
    result = run_scenario(scenario)
    hobby = result.keys[("telco-es", "device-reachability-status", "hobby")]
    # 4 calls/s against 2/s with a burst of 5: about half refused after the burst.
    assert 0.35 < hobby.throttled / hobby.attempts < 0.55
    assert hobby.errors["TOO_MANY_REQUESTS"] == hobby.throttled
