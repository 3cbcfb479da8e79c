"""Calibration: fitting service times to Prometheus histograms, the calibrated scenario, the
comparison table, and (one test) ``ogsim calibrate --quick`` end to end against a live
federation on loopback."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operators.core import LognormalServiceTime
from operators.gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
from sim.calibration import calibrate, relative_error
from sim.calibration_fit import (
    Histogram,
    fit_histogram,
    gamma_cdf,
    histogram_of,
    lognormal_cdf,
)
from sim.calibration_live import (
    LiveStep,
    OperatorStep,
    api_name,
    cpu_seconds,
    measure_step,
    parse_histograms,
)
from sim.calibration_scenario import calibrated_document, fit_tiers, write
from sim.cli import app
from sim.scenario import load_scenario

SAMPLES = 20_000


def lognormal_samples(mean: float, sigma: float, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    mu = math.log(mean) - sigma * sigma / 2
    return [rng.lognormvariate(mu, sigma) for _ in range(SAMPLES)]


def test_a_lognormal_is_recovered_from_its_prometheus_histogram() -> None:
    histogram = histogram_of(lognormal_samples(0.02, 0.5), LATENCY_BUCKETS)
    fit = fit_histogram(histogram)
    assert fit.family == "lognormal"
    assert fit.mean == pytest.approx(0.02, rel=0.02)
    assert fit.spread == pytest.approx(0.5, rel=0.05)
    assert fit.service_time() == LognormalServiceTime(mean=fit.mean, sigma=fit.spread)


def test_a_gamma_is_recovered_and_told_apart_from_a_lognormal() -> None:
    rng = random.Random(11)
    samples = [rng.gammavariate(3.0, 0.010 / 3.0) for _ in range(SAMPLES)]
    fit = fit_histogram(histogram_of(samples, LATENCY_BUCKETS))
    assert fit.family == "gamma"
    assert fit.spread == pytest.approx(3.0, rel=0.1)
    assert fit.cv == pytest.approx(1 / math.sqrt(3), rel=0.05)
    carried = fit.service_time()
    assert isinstance(carried, LognormalServiceTime)
    assert math.sqrt(math.expm1(carried.sigma**2)) == pytest.approx(fit.cv, rel=1e-6)


def test_an_exponential_is_named_so() -> None:
    rng = random.Random(5)
    samples = [rng.expovariate(100.0) for _ in range(SAMPLES)]
    fit = fit_histogram(histogram_of(samples, LATENCY_BUCKETS))
    assert fit.family == "exponential"
    assert fit.describe().startswith("exponential(mean=10.")


def test_distribution_functions_agree_with_closed_forms() -> None:
    for x in (0.001, 0.01, 0.05):
        assert gamma_cdf(x, 0.01, 1.0) == pytest.approx(1 - math.exp(-x / 0.01), abs=1e-12)
    # shape 2: 1 - e^-z (1 + z) with z = 2x/mean
    z = 2 * 0.03 / 0.01
    assert gamma_cdf(0.03, 0.01, 2.0) == pytest.approx(1 - math.exp(-z) * (1 + z), abs=1e-12)
    median = 0.02 * math.exp(-(0.5**2) / 2)
    assert lognormal_cdf(median, 0.02, 0.5) == pytest.approx(0.5)


def test_an_empty_histogram_cannot_be_fitted() -> None:
    with pytest.raises(ValueError, match="empty histogram"):
        fit_histogram(histogram_of([], LATENCY_BUCKETS))


def test_histograms_subtract_and_give_prometheus_quantiles() -> None:
    earlier = histogram_of([0.003, 0.004], (0.005, 0.01))
    later = histogram_of([0.003, 0.004, 0.006, 0.007, 0.008, 0.009], (0.005, 0.01))
    step = later.minus(earlier)
    assert step.count == 4
    assert step.cumulative == (0.0, 4.0)
    assert step.mean == pytest.approx(0.0075)
    assert step.quantile(0.5) == pytest.approx(0.0075)
    with pytest.raises(ValueError, match="different bucket"):
        later.minus(histogram_of([], (0.01,)))


def test_the_gateways_exposition_is_parsed_by_api_and_operation() -> None:
    metrics = GatewayMetrics("telco-es")
    for seconds in (0.004, 0.02, 0.03):
        metrics.observe("sim-swap", "checkSimSwap", 200, seconds)
    metrics.observe("oauth", "-", 200, 0.002)
    parsed = parse_histograms(metrics.exposition().decode())
    calls = parsed[("sim-swap", "checkSimSwap")]
    assert calls.count == 3
    assert calls.total == pytest.approx(0.054)
    assert calls.bounds == LATENCY_BUCKETS
    assert parsed[("oauth", "-")].count == 1


def test_cpu_seconds_are_read_from_proc_stat(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 30
    (tmp_path / "42" / "stat").write_text("42 (uvicorn (w) x) " + " ".join(fields))
    import os

    assert cpu_seconds(42, tmp_path) == pytest.approx(300 / os.sysconf("SC_CLK_TCK"))


def test_live_operations_map_to_the_units_of_work_they_begin() -> None:
    assert api_name("checkSimSwap") == "sim-swap.check"
    assert api_name("createSession") == "quality-on-demand.session"
    assert api_name("getSession") is None


def _step(users: int, rate: float, latency: list[float], cpu_per_call: float) -> LiveStep:
    seconds = 10.0
    calls = histogram_of(latency[: int(rate * seconds)], LATENCY_BUCKETS)
    grants = histogram_of([0.003] * 10, LATENCY_BUCKETS)
    operator = OperatorStep(
        "telco-es",
        seconds,
        {("sim-swap", "checkSimSwap"): calls},
        3.0,
        grants,
        cpu_per_call * calls.count,
    )
    return LiveStep(users, seconds, {"telco-es": operator}, {"rps": rate})


def test_the_calibrated_scenario_loads_and_the_table_compares(tmp_path: Path) -> None:
    latency = lognormal_samples(0.02, 0.4)
    steps = [_step(u, r, latency, 0.004) for u, r in ((2, 5.0), (8, 20.0), (20, 40.0))]
    result = calibrate(steps, tmp_path, sim_seconds=10.0)
    scenario = load_scenario(result.scenario)[0]
    station = scenario.topology.operators["telco-es"].data_centres["live"].gateway
    assert (station.replicas, station.workers) == (1, 1)
    assert station.service_time.mean == pytest.approx(0.004)
    assert [row.level for row in result.rows] == ["light", "medium", "heavy", "saturation"]
    for row in result.rows[:3]:
        assert all(math.isfinite(e) for e in row.errors.values())
    # one worker of 4 ms per call saturates near 250 calls/s, far above the busiest step
    assert result.rows[-1].sim_throughput == pytest.approx(250, rel=0.15)
    written = json.loads((tmp_path / "calibration.json").read_text())
    assert len(written["rows"]) == 4
    assert (tmp_path / "calibration.png").stat().st_size > 0
    assert (tmp_path / "calibration.csv").read_text().startswith("level,users,")


def test_tiers_take_the_spread_from_the_lightest_step_and_cpu_from_the_busiest() -> None:
    latency = lognormal_samples(0.02, 0.4)
    light, busy = _step(2, 5.0, latency, 0.009), _step(20, 40.0, latency, 0.004)
    models = fit_tiers(light, busy)
    assert models["telco-es"].cpu_per_call == pytest.approx(0.004)
    document = calibrated_document(models, busy, 5.0)
    app_spec = document["traffic"]["applications"]["telco-es-calls"]
    assert app_spec["arrival"]["rate"] == pytest.approx(40.0)
    assert app_spec["apis"] == {"sim-swap.check": 400.0}


def test_a_bad_document_is_refused_by_the_loader(tmp_path: Path) -> None:
    latency = lognormal_samples(0.02, 0.4)
    step = _step(2, 5.0, latency, 0.004)
    document = calibrated_document(fit_tiers(step), step, 5.0)
    document["duration"] = -1
    with pytest.raises(Exception, match="duration"):
        write(document, tmp_path / "bad.yaml")


def test_relative_errors_are_nan_without_a_live_figure() -> None:
    assert relative_error(12.0, 10.0) == pytest.approx(0.2)
    assert math.isnan(relative_error(1.0, 0.0))
    assert math.isnan(relative_error(math.nan, 1.0))


def test_a_step_is_measured_between_two_scrapes_after_the_warm_up() -> None:
    seen: list[str] = []

    class Http:
        def __init__(self) -> None:
            self.metrics = GatewayMetrics("telco-es")

        def get(self, url: str) -> object:
            seen.append(url)
            text = self.metrics.exposition().decode()

            class Answer:
                def raise_for_status(self) -> None:
                    return None

            answer = Answer()
            answer.text = text  # type: ignore[attr-defined]
            return answer

    http = Http()
    http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.5)  # before the load

    def start() -> object:
        def finish() -> dict[str, float]:
            return {"rps": 1.0}

        return finish

    def sleep(seconds: float) -> None:
        seen.append(f"sleep {seconds:g}")
        if seconds == 0.5 and seen.count("sleep 0.5") == 2:  # Locust's first call
            http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.2)
        if seconds == 10:
            for _ in range(20):
                http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.01)

    step = measure_step(
        http,  # type: ignore[arg-type]
        {"telco-es": ("http://op", None)},
        5,
        10.0,
        start,  # type: ignore[arg-type]
        sleep,
        warm_up=3.0,
    )
    scrape = "http://op/metrics"
    waits = [scrape, scrape, "sleep 0.5", scrape, "sleep 0.5", scrape]
    assert seen == [*waits, "sleep 3", scrape, "sleep 10", scrape]
    assert step.throughput == pytest.approx(2.0)
    assert step.operators["telco-es"].all_calls().mean == pytest.approx(0.01)  # type: ignore[union-attr]
    assert math.isnan(step.operators["telco-es"].cpu)


def test_histogram_plus_needs_equal_buckets() -> None:
    a = Histogram((0.1,), (1.0,), 1.0, 0.05)
    assert a.plus(a).count == 2
    with pytest.raises(ValueError):
        a.plus(Histogram((0.2,), (1.0,), 1.0, 0.05))


def test_ogsim_calibrate_quick_runs_end_to_end(tmp_path: Path) -> None:
    """Starts a federation, three short Locust steps, fits, simulates: the table and files.
    The accuracy goal (20 % / 30 %) is printed, not asserted: timing depends on the machine."""
    out = tmp_path / "calibration"
    result = CliRunner().invoke(app, ["calibrate", "--quick", "--out", str(out)])
    print(result.output)
    assert result.exit_code == 0, result.output
    load_scenario(out / "calibrated.yaml")
    rows = json.loads((out / "calibration.json").read_text())["rows"]
    assert [r["level"] for r in rows][-1] == "saturation"
    assert len(rows) >= 2
    for row in rows:
        assert row["live_throughput"] > 0
        assert math.isfinite(row["error_throughput"])
    for row in rows[:-1]:
        assert math.isfinite(row["error_p50"]) and math.isfinite(row["error_p95"])
