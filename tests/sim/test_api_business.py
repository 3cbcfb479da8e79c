"""A simulated API business: the scenario file, the run on the operator's own analytics,
determinism, detection of the abusers, flat memory, and ``ogsim run`` on a business file.

Small populations (150 developers over three weeks) keep each run to seconds.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operators import ConfigFileError
from sim.business import (
    BusinessResult,
    BusinessWorld,
    is_business_file,
    load_business_scenario,
    run_business,
    summary,
)
from sim.business.report import PLOTS
from sim.cli import app

SMALL = """\
kind: api_business
name: small-business
description: 150 developers over three weeks
seed: 5
days: 21
developers:
  total: 150
  arrival_days: 14
  integration_delay: {distribution: lognormal, median_hours: 6, sigma: 1.0}
abuse:
  credential_theft: {count: 3, at_day: [10, 18], min_age_days: 3}
  enumeration: {count: 3, after_days: [2, 5], duration_hours: [10, 20]}
  quota_farming: {count: 0}
expectations:
  - {metric: recall.enumeration, min: 0.6}
  - {metric: funnel_error, max: 0.01}
"""


def _write(tmp_path: Path, text: str = SMALL, name: str = "business.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> BusinessResult:
    path = _write(tmp_path_factory.mktemp("business"))
    return run_business(load_business_scenario(path))


def test_a_business_file_is_recognised_by_its_kind(tmp_path: Path) -> None:
    assert is_business_file(_write(tmp_path))
    assert not is_business_file(_write(tmp_path, "name: x\nduration: 5\n", "other.yaml"))
    assert not is_business_file(tmp_path / "missing.yaml")


def test_a_bad_field_is_named_with_its_line(tmp_path: Path) -> None:
    bad = SMALL.replace("  total: 150", "  total: -3").replace("never_integrate", "never_integrate")
    with pytest.raises(ConfigFileError) as caught:
        load_business_scenario(_write(tmp_path, bad))
    assert "business.yaml:7: developers.total: Input should be greater than or equal to 1" in str(
        caught.value
    )


def test_a_developer_count_no_run_could_hold_is_refused(tmp_path: Path) -> None:
    """A billion developers ran out the memory (or the patience) with no error."""
    bad = SMALL.replace("  total: 150", "  total: 1000000000")
    with pytest.raises(ConfigFileError) as caught:
        load_business_scenario(_write(tmp_path, bad))
    assert "developers.total: Input should be less than or equal to 1000000" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("  arrival_days: 14", "  arrival_dayz: 14"), "developers.arrival_dayz: Extra inputs"),
        (
            ("{metric: funnel_error, max: 0.01}", "{metric: funnel_eror, max: 0.01}"),
            "expectations.1.metric: Value error, unknown metric 'funnel_eror'",
        ),
        (
            ("quota_farming: {count: 0}", "quota_farming: {count: 2, plan: gold}"),
            "abuse.quota_farming.plan: unknown plan 'gold'",
        ),
        (("days: 21", "days: three weeks"), "days: Input should be a valid number"),
    ],
)
def test_each_kind_of_mistake_names_its_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_business_scenario(_write(tmp_path, SMALL.replace(*change)))
    assert expected in str(caught.value)


BAD_FIELDS = [
    # (appended to or replacing a line of SMALL, the field the message must name)
    ("analytics:\n  detectors: {recent_buckets: 5000}\n", "analytics.detectors.recent_buckets"),
    ("analytics:\n  detectors: {season_buckets: 2}\n", "analytics.detectors.season_buckets"),
    ("analytics:\n  detectors: {bucket_seconds: 7200}\n", "analytics.detectors.bucket_seconds"),
    ("analytics:\n  detectors: {bucket_seconds: 60}\n", "analytics.detectors.bucket_seconds"),
    ("analytics:\n  funnel_window: .inf\n", "analytics.funnel_window"),
    ("analytics:\n  churn_weeks: 1000\n", "analytics.churn_weeks"),
    (("seed: 5", "seed: -1"), "seed"),
    ("start: 1960-01-04T00:00:00Z\n", "start"),
    ("traffic:\n  calls_per_hour_median: .inf\n", "traffic.calls_per_hour_median"),
    ("traffic:\n  calls_per_hour_median: 1.0e+30\n", "traffic.calls_per_hour_median"),
    ("traffic:\n  calls_per_hour_sigma: 50\n", "traffic.calls_per_hour_sigma"),
    ("sweep:\n  thresholds: [.nan, 3]\n", "sweep.thresholds"),
    ("sweep:\n  thresholds: [1, 3]\n", "sweep.thresholds"),  # below the default floor (2)
    ("analytics:\n  detectors: {thresholds: {theft: 3}}\n", "analytics.detectors.thresholds"),
    ("analytics:\n  detectors: {thresholds: {enumeration: 0}}\n", "analytics.detectors.thresholds"),
]


def _bad_file(tmp_path: Path, change: str | tuple[str, str], field: str) -> tuple[Path, int]:
    """SMALL with ``change``, and the line that holds ``field``'s last part."""
    text = SMALL.replace(*change) if isinstance(change, tuple) else SMALL + change
    key = field.rsplit(".", 1)[-1]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if f"{key}:" in row)
    return _write(tmp_path, text), line


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS, ids=[f for _, f in BAD_FIELDS])
def test_every_out_of_range_field_is_named_at_its_line_with_exit_2(
    tmp_path: Path, change: str | tuple[str, str], field: str
) -> None:
    path, line = _bad_file(tmp_path, change, field)
    with pytest.raises(ConfigFileError) as caught:
        load_business_scenario(path)
    assert f"business.yaml:{line}: {field}" in str(caught.value), str(caught.value)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, (ValueError, TypeError))


def test_a_negative_seed_on_the_command_line_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(_write(tmp_path)), "--seed", "-3"])
    assert result.exit_code == 2, result.output
    assert "seed: Input should be greater than or equal to 0" in result.output


def test_the_same_seed_gives_the_same_summary(tmp_path: Path, small_run: BusinessResult) -> None:
    again = run_business(load_business_scenario(_write(tmp_path)))
    first = json.dumps(summary(small_run), sort_keys=True)
    assert json.dumps(summary(again), sort_keys=True) == first
    other = run_business(load_business_scenario(_write(tmp_path), seed=6))
    assert json.dumps(summary(other), sort_keys=True) != first


def test_the_population_lives_its_life(small_run: BusinessResult) -> None:
    population = small_run.population
    assert 110 <= population["developers"] <= 190
    assert population["integrated"] < population["developers"]  # some never integrate
    assert population["cases.enumeration"] == 3
    assert population["cases.credential_theft"] == 3
    assert sum(d.calls for d in small_run.days) > 100_000
    # the funnel read from the analytics matches the population's true milestones
    assert small_run.metrics["funnel_error"] == pytest.approx(0.0)
    assert small_run.metrics["integration_error"] == pytest.approx(0.0)
    real = small_run.integration
    assert real.share_within_window == pytest.approx(small_run.funnel.steps[1].overall)
    assert real.median_hours is not None and 1 < real.median_hours < 24
    assert small_run.revenue.totals  # priced by the billing's rating code


def test_abusers_are_detected_and_normal_applications_mostly_not(
    small_run: BusinessResult,
) -> None:
    kinds = small_run.kinds
    assert kinds["enumeration"].recall == 1.0
    assert kinds["credential_theft"].recall is not None
    assert kinds["credential_theft"].recall >= 2 / 3
    assert kinds["enumeration"].time_to_detect_hours is not None
    assert kinds["enumeration"].time_to_detect_hours <= 3
    flagged, normal = small_run.false_alarms
    assert normal > 80
    assert flagged / normal <= 0.1
    assert small_run.passed


def test_memory_stays_flat_as_the_days_pass(tmp_path: Path) -> None:
    """Once every application exists, more days add calls but no state: the analytics' keys
    and rings, the population and Python's live objects stay put while calls grow."""
    text = (
        SMALL.replace("  total: 150", "  total: 40")
        .replace(
            "  arrival_days: 14", "  arrival_days: 1\n  never_integrate: 0\n  extra_applications: 0"
        )
        .replace("days: 21", "days: 40")
        .replace("{count: 3, at_day: [10, 18], min_age_days: 3}", "{count: 0}")
        .replace("{count: 3, after_days: [2, 5], duration_hours: [10, 20]}", "{count: 0}")
    )
    text += "traffic: {churn_probability: 0, growth_probability: 0, apis_per_application: 0}\n"
    world = BusinessWorld(load_business_scenario(_write(tmp_path, text)))
    world.run_until(33)  # every ring (4 weeks of hours, 35 days) has wrapped once
    keys, rings, apps = (
        world.analytics.keys,
        world.analytics.history_bytes,
        len(world.population.applications),
    )
    calls = world.calls
    gc.collect()
    objects = len(gc.get_objects())
    world.run_until(40)
    gc.collect()
    assert world.calls > calls * 1.15
    assert world.analytics.keys == keys
    assert world.analytics.history_bytes == rings
    assert len(world.population.applications) == apps
    grown = len(gc.get_objects()) - objects
    assert grown < 0.01 * objects, f"{grown} more live objects after 7 more days"


def test_ogsim_run_runs_a_business_file(tmp_path: Path) -> None:
    path = _write(tmp_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "precision" in result.output
    for name in ("report.html", "summary.json", "daily.csv", "sweep.csv", "revenue.csv", *PLOTS):
        assert (out / name).stat().st_size > 0, name
    written = json.loads((out / "summary.json").read_text())
    assert written["passed"] is True
    assert [set(row) for row in written["expectations"]] == [
        {"name", "metric", "value", "min", "max", "passed"}
    ] * 2
    assert "wall time" in (out / "report.html").read_text()


def test_ogsim_run_exits_1_when_an_expectation_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, SMALL.replace("max: 0.01", "max: -1"))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output


def test_ogsim_run_exits_2_on_a_bad_business_file(tmp_path: Path) -> None:
    path = _write(tmp_path, SMALL.replace("total: 150", "total: lots"))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "developers.total" in result.output


def test_the_shipped_business_scenario_loads_with_precision_and_recall_expectations() -> None:
    path = Path(__file__).resolve().parents[2] / "scenarios" / "research" / "api_business.yaml"
    scenario = load_business_scenario(path)
    assert scenario.developers.total == 2000
    assert scenario.days == 90
    metrics = {e.metric for e in scenario.expectations}
    for kind in ("credential_theft", "enumeration", "quota_farming"):
        assert {f"precision.{kind}", f"recall.{kind}"} <= metrics
