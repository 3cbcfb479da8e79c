"""Calibration: fitting service times to Prometheus histograms, the calibrated scenario, the
comparison table, and (one test) ``ogsim calibrate --quick`` end to end against a live
federation on loopback."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import httpx
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
    preemptions,
    read_operator,
    sched_seconds,
    site_expositions,
)
from sim.calibration_scenario import calibrated_document, fit_cpu, fit_tiers, with_rates, write
from sim.cli import app
from sim.engine import run_scenario
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
    metrics.observe("oauth", "token", 200, 0.002)
    parsed = parse_histograms(metrics.exposition().decode())
    calls = parsed[("sim-swap", "checkSimSwap")]
    assert calls.count == 3
    assert calls.total == pytest.approx(0.054)
    assert calls.bounds == LATENCY_BUCKETS
    assert parsed[("oauth", "token")].count == 1


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


def test_cpu_per_call_is_the_slope_and_the_background_the_intercept() -> None:
    latency = lognormal_samples(0.02, 0.4)
    # the loop spends 10 ms/s idle and 3 ms per call
    steps = [_step(2, r, latency, 0.003 + 0.010 / r) for r in (5.0, 20.0, 40.0)]
    cpu, background = fit_cpu([s.operators["telco-es"] for s in steps])
    assert cpu == pytest.approx(0.003)
    assert background == pytest.approx(0.010)
    models = fit_tiers(steps)
    assert models["telco-es"].cpu_per_call == pytest.approx(0.003)
    assert models["telco-es"].cpu_at(10.0) == pytest.approx(0.004)
    document = calibrated_document(models, steps[-1], 5.0)
    app_spec = document["traffic"]["applications"]["telco-es-calls"]
    assert app_spec["arrival"]["rate"] == pytest.approx(40.0)
    assert app_spec["apis"] == {"sim-swap.check": 400.0}
    # one step, or a nonsensical line: no background, the CPU over the calls
    assert fit_cpu([steps[0].operators["telco-es"]]) == (pytest.approx(0.005), 0.0)


def test_the_loops_waits_for_a_core_split_into_preemptions_and_wake_ups() -> None:
    latency = lognormal_samples(0.02, 0.4)
    step = _step(2, 20.0, latency, 0.003)  # 200 calls in 10 s, 3 ms of CPU each
    busy = replace(
        step.operators["telco-es"],
        ran=0.6,
        waited=1.2,  # the loop waited twice as long as it ran
        slices=400.0,  # times on a core: 3 ms waited each on average
        preempted=100.0,  # a quarter of them after a preemption: 1/6 per CPU millisecond
        wait_profile=(0.001, 0.005),  # a calm second and a busy one
    )
    model = fit_tiers([step])["telco-es"]
    service = model.gateway_service(busy)
    assert service["distribution"] == "empirical"
    mean = sum(service["samples"]) / len(service["samples"])
    assert mean == pytest.approx(0.003 + 0.003 / 0.006 * 0.003, rel=0.1)
    wake = model.wake_up(busy)
    assert wake is not None
    # 300 wake-ups fall on the 82 % of the calls that find the loop idle (it is runnable
    # 18 % of the time), 3 ms each
    assert sum(wake["samples"]) / len(wake["samples"]) == pytest.approx(
        300 / (200 * 0.82) * 0.003, rel=0.15
    )
    assert max(wake["samples"]) > 0.02  # the busy second's waits make the tail
    assert model.gateway_service(step.operators["telco-es"]) == {
        "distribution": "lognormal",
        "mean": pytest.approx(0.003),
        "sigma": pytest.approx(0.3),
    }
    assert model.wake_up(step.operators["telco-es"]) is None


def test_a_call_waits_the_wake_up_only_when_it_finds_the_gateway_idle(tmp_path: Path) -> None:
    step = _step(2, 5.0, lognormal_samples(0.02, 0.4), 0.01)
    means = {}
    for name, rate in (("alone", 0.5), ("crowded", 95.0)):
        document = calibrated_document(fit_tiers([step]), step, 400.0 if rate < 1 else 60.0)
        live = document["topology"]["operators"]["telco-es"]["data_centres"]["live"]
        live["gateway"]["service_time"] = {"distribution": "constant", "value": 0.01}
        live["gateway"]["wake_up"] = {"distribution": "constant", "value": 0.05}
        scenario = write(with_rates(document, rate / 5.0), tmp_path / f"{name}.yaml")
        result = run_scenario(scenario)
        sketch = result.keys[("telco-es", "sim-swap.check", "telco-es-calls")].latency
        means[name] = (sketch.sum / sketch.count, result.totals()["goodput_per_second"])
    alone, _ = means["alone"]
    assert alone == pytest.approx(0.05 + 0.01 + 0.008, abs=0.004)  # wake, work, HLR
    _, served = means["crowded"]
    # busy periods rarely end at 95 % load: the wake-up seldom costs the capacity
    assert served == pytest.approx(95.0, rel=0.05)


def test_scheduler_statistics_are_read_from_proc(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "schedstat").write_text("1500000000 3000000000 250\n")
    assert sched_seconds(42, tmp_path) == (1.5, 3.0, 250)
    (tmp_path / "42" / "task" / "42").mkdir(parents=True)
    (tmp_path / "42" / "task" / "42" / "status").write_text(
        "Name:\tpython3\nvoluntary_ctxt_switches:\t180\nnonvoluntary_ctxt_switches:\t70\n"
    )
    assert preemptions(42, tmp_path) == 70
    step = OperatorStep("op", 10.0, {}, 0.0, None, 1.5, 1.5, 3.0, 250.0)
    assert step.stretch == pytest.approx(3.0)
    assert OperatorStep("op", 10.0, {}, 0.0, None, 1.5).stretch == 1.0


class _Sites:
    """An operator front that sends each ``/metrics`` to its data centres in turn and names
    the one that answered when asked (as federation's LoadBalancedFront does)."""

    def __init__(self, sites: dict[str, GatewayMetrics]) -> None:
        self.sites = sites
        self.turn = 0

    def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        names = list(self.sites)
        name = names[self.turn % len(names)]
        self.turn += 1
        named = {"x-ogsim-data-centre": name} if headers else {}
        request = httpx.Request("GET", url)
        return httpx.Response(
            200, content=self.sites[name].exposition(), headers=named, request=request
        )


def test_every_data_centre_of_an_operator_is_scraped_and_added_up() -> None:
    madrid, barcelona = GatewayMetrics("telco-es"), GatewayMetrics("telco-es")
    for _ in range(3):
        madrid.observe("sim-swap", "checkSimSwap", 200, 0.01)
    barcelona.observe("sim-swap", "checkSimSwap", 200, 0.03)
    front = _Sites({"madrid": madrid, "barcelona": barcelona})
    reading = read_operator(front, "http://op", None, ("madrid", "barcelona"))  # type: ignore[arg-type]
    calls = reading.histograms[("sim-swap", "checkSimSwap")]
    assert calls.count == 4
    assert calls.total == pytest.approx(0.06)
    with pytest.raises(RuntimeError, match="lisbon"):
        read_operator(front, "http://op", None, ("madrid", "lisbon"))  # type: ignore[arg-type]
    # each site's own exposition, by name, whichever the front answered first
    front.turn = 1
    texts = site_expositions(front, "http://op", ("madrid", "barcelona"))  # type: ignore[arg-type]
    assert texts == {name: sites.exposition().decode() for name, sites in front.sites.items()}


def _gateway_scenario(tmp_path: Path, after: float, rate: float, name: str) -> float:
    """Mean latency (s) and throughput of one operator whose one-worker gateway takes a
    constant 10 ms a call, ``after`` of it after the call has passed on."""
    step = _step(2, rate, lognormal_samples(0.02, 0.4), 0.01)
    document = calibrated_document(fit_tiers([step]), step, 20.0)
    gateway = document["topology"]["operators"]["telco-es"]["data_centres"]["live"]["gateway"]
    gateway["service_time"] = {"distribution": "constant", "value": 0.01}
    gateway["work_after_answer"] = after
    document = with_rates(document, 1.0, timeout=1000.0)
    result = run_scenario(write(document, tmp_path / f"{name}.yaml"))
    return float(result.totals()["goodput_per_second"])


def test_work_after_the_answer_holds_the_gateway_but_not_the_call(tmp_path: Path) -> None:
    # overloaded (150 calls/s offered to 100/s of gateway): the worker's whole time counts
    assert _gateway_scenario(tmp_path, 0.0, 150.0, "before") == pytest.approx(100, rel=0.05)
    assert _gateway_scenario(tmp_path, 0.6, 150.0, "after") == pytest.approx(100, rel=0.05)
    # lightly loaded: the answer leaves 6 ms earlier
    step = _step(2, 5.0, lognormal_samples(0.02, 0.4), 0.01)
    means = {}
    for after in (0.0, 0.6):
        document = calibrated_document(fit_tiers([step]), step, 200.0)
        gateway = document["topology"]["operators"]["telco-es"]["data_centres"]["live"]
        gateway["gateway"]["service_time"] = {"distribution": "constant", "value": 0.01}
        gateway["gateway"]["work_after_answer"] = after
        result = run_scenario(write(document, tmp_path / f"light-{after}.yaml"))
        sketch = result.keys[("telco-es", "sim-swap.check", "telco-es-calls")].latency
        means[after] = sketch.sum / sketch.count
    assert means[0.0] - means[0.6] == pytest.approx(0.006, abs=0.001)


def test_a_share_of_work_after_the_answer_of_one_or_more_is_refused(tmp_path: Path) -> None:
    step = _step(2, 5.0, lognormal_samples(0.02, 0.4), 0.004)
    document = calibrated_document(fit_tiers([step]), step, 5.0)
    gateway = document["topology"]["operators"]["telco-es"]["data_centres"]["live"]["gateway"]
    gateway["work_after_answer"] = 1.0
    with pytest.raises(Exception, match="work_after_answer"):
        write(document, tmp_path / "bad.yaml")


def test_a_bad_document_is_refused_by_the_loader(tmp_path: Path) -> None:
    latency = lognormal_samples(0.02, 0.4)
    step = _step(2, 5.0, latency, 0.004)
    document = calibrated_document(fit_tiers([step]), step, 5.0)
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

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        seen.append(f"sleep {seconds:g}")
        if seconds == 0.5 and seen.count("sleep 0.5") == 2:  # Locust's first call
            http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.2)
        if seconds == 1 and seen.count("sleep 1") == 1:  # the measured window's first second
            for _ in range(20):
                http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.01)

    step = measure_step(
        http,  # type: ignore[arg-type]
        {"telco-es": ("http://op", None, ())},
        5,
        10.0,
        start,  # type: ignore[arg-type]
        sleep,
        warm_up=3.0,
        clock=lambda: now[0],
    )
    scrape = "http://op/metrics"
    waits = [scrape, scrape, "sleep 0.5", scrape, "sleep 0.5", scrape]
    assert seen == [*waits, "sleep 3", scrape, *["sleep 1"] * 10, scrape]
    assert step.throughput == pytest.approx(2.0)
    assert step.operators["telco-es"].all_calls().mean == pytest.approx(0.01)  # type: ignore[union-attr]
    assert math.isnan(step.operators["telco-es"].cpu)
    assert step.operators["telco-es"].wait_profile == ()  # no pid, no scheduler figures


def test_a_step_whose_load_ended_inside_the_window_is_refused() -> None:
    """Rates over a window the load did not fill would be too low: the step says so."""

    class Http:
        def __init__(self) -> None:
            self.metrics = GatewayMetrics("telco-es")
            self.text = ""

        def get(self, url: str) -> Http:
            self.text = self.metrics.exposition().decode()
            return self

        def raise_for_status(self) -> None:
            return None

    http = Http()
    finished: list[bool] = []

    def start() -> object:
        http.metrics.observe("sim-swap", "checkSimSwap", 200, 0.01)  # the first call

        def finish() -> dict[str, float]:
            finished.append(True)
            return {}

        return finish

    with pytest.raises(RuntimeError, match="load ended before"):
        measure_step(
            http,  # type: ignore[arg-type]
            {"telco-es": ("http://op", None, ())},
            5,
            2.0,
            start,  # type: ignore[arg-type]
            lambda seconds: None,
            running=lambda: False,
        )
    assert finished == [True]  # the load is still told to stop


def test_histogram_plus_needs_equal_buckets() -> None:
    a = Histogram((0.1,), (1.0,), 1.0, 0.05)
    assert a.plus(a).count == 2
    with pytest.raises(ValueError):
        a.plus(Histogram((0.2,), (1.0,), 1.0, 0.05))


def test_ogsim_calibrate_quick_runs_end_to_end(tmp_path: Path) -> None:
    """Starts a federation, short Locust steps (saturation, a level, realistic users across
    every party), fits, simulates, asks the what-ifs: the tables and files.
    The accuracy goal (20 % / 30 %) is printed, not asserted: timing depends on the machine."""
    out = tmp_path / "calibration"
    result = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--quick",
            "--out",
            str(out),
            "--federation-seconds",
            "8",
            "--what-if-seconds",
            "60",
        ],
    )
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
    tiers = {
        row["tier"]: row for row in json.loads((out / "calibration.json").read_text())["by_tier"]
    }
    assert {"telco-es gateway", "aggregator", "telco-es sim_data_register"} <= set(tiers)
    assert tiers["aggregator"]["calls"] > 0 and tiers["aggregator"]["basis"] == "simulated"
    assert math.isfinite(tiers["aggregator"]["model_p50_ms"])
    answers = json.loads((out / "calibration.json").read_text())["what_if"]
    assert [a["variant"] for a in answers] == [
        "as-measured",
        "x10-fixed",
        "x10-autoscaled",
        "two-sites-one-lost",
    ]
    assert answers[0]["goodput_per_second"] > 0
    fixed, scaled = answers[1], answers[2]
    assert scaled["replicas_max"] > fixed["replicas_max"] == 1  # the autoscaler added some
    assert "what the calibrated federation would do" in result.output


def test_calibrate_names_a_broken_federation_file_beside_the_descriptor(tmp_path: Path) -> None:
    """The live cores are read from the run folder's federation file before any load: a broken
    one ends the command at once, naming the file and the field, with no traceback."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "federation.yaml").write_text(
        "operators:\n- id: telco-es\n  core:\n    location_server:\n      servers: 0\n"
    )
    descriptor = tmp_path / "federation.json"
    descriptor.write_text(json.dumps({"operators": [], "aggregators": [], "runDir": str(run_dir)}))
    result = CliRunner().invoke(
        app, ["calibrate", "--descriptor", str(descriptor), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert "federation.yaml" in result.output
    assert "Traceback" not in result.output
    assert "servers" in result.output  # the field
