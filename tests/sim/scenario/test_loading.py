"""Scenario files: validation errors name the field and its line; overrides; variants; schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from operators.config_file import ConfigFileError
from sim.cli.simulate import run, schema, sweep
from sim.scenario import Expectation, load_scenario

from .conftest import SMALL


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("run")(run)
    app.command("schema")(schema)
    return app


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_number(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_unknown_field_is_named_with_its_line(tmp_path: Path) -> None:
    text = SMALL.replace("        mad-2: {}", "        mad-2: {gateways: 3}")
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    message = str(caught.value)
    line = line_number(text, "gateways: 3")
    assert f"{path}:{line}: topology.operators.telco-es.data_centres.mad-2.gateways" in message
    assert "Extra inputs are not permitted" in message


def test_bad_value_is_named_with_its_line(tmp_path: Path) -> None:
    text = SMALL.replace("timeout: 2.0", "timeout: -1")
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    line = line_number(text, "timeout: -1")
    assert f"{path}:{line}: traffic.applications.bank.client.timeout" in str(caught.value)


def test_unknown_event_and_plan_are_named(tmp_path: Path) -> None:
    text = SMALL.replace("plan: free", "plan: platinum") + (
        "  - {metric: recovery_time, event: nowhere, max: 5}\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert f":{line_number(text, 'event: nowhere')}: expectations.1.event: unknown event" in message
    assert f":{line_number(text, 'plan: platinum')}: traffic.applications.hobby.plan" in message


def test_cli_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL.replace("rate: 50", "rate: fast"))
    result = CliRunner().invoke(cli(), ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "traffic.applications.bank.arrival.poisson.rate" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_overrides_duration_seed_and_set(small: Path) -> None:
    (scenario,) = load_scenario(
        small,
        duration=7,
        seed=99,
        overrides={"traffic.applications.bank.client.timeout": 0.5},
    )
    assert scenario.duration == 7
    assert scenario.seed == 99
    assert scenario.traffic.applications["bank"].client.timeout == 0.5


def test_bad_override_is_reported_like_the_file(small: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(small, overrides={"traffic.applications.bank.client.timeout": "soon"})
    assert "traffic.applications.bank.client.timeout" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        # an infinite rate made every gap between arrivals zero: a run that never ended
        ("traffic.applications.bank.arrival.rate", float("inf"),
         "traffic.applications.bank.arrival.poisson.rate: Input should be a finite number"),
        ("duration", float("inf"), "duration: Input should be a finite number"),
        # a negative weight took every call from the positive ones
        ("traffic.applications.bank.apis", {"sim-swap.check": 1, "kyc-match.match": -1},
         "traffic.applications.bank.apis.kyc-match.match: Input should be greater than 0"),
        ("traffic.applications.hobby.operators", {"telco-es": 0},
         "traffic.applications.hobby.operators.telco-es: Input should be greater than 0"),
        ("topology.operators.telco-es.core.sim_data_register",
         {"name": "hlr", "kind": "sim_data_register",
          "service_time": {"distribution": "exponential", "mean": float("inf")}},
         "service_time.exponential.mean: Input should be a finite number"),
    ],
)
def test_infinite_values_and_weights_that_are_not_positive_are_named(
    small: Path, key: str, value: object, named: str
) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(small, overrides={key: value})
    assert named in str(caught.value)


def test_a_set_path_through_a_misspelt_name_adds_nothing(small: Path, tmp_path: Path) -> None:
    """Every field of a data centre has a default, so reaching into one by a misspelt name
    used to add a third data centre; a whole new entry may still be added."""
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(small, overrides={
            "topology.operators.telco-es.data_centres.mad1.gateway.replicas": 8})
    assert "no data_centres entry 'mad1' (known: mad-1, mad-2)" in str(caught.value)
    with pytest.raises(ConfigFileError) as unknown_app:
        load_scenario(small, overrides={"traffic.applications.bnak.client.timeout": 1})
    assert "no applications entry 'bnak' (known: bank, hobby)" in str(unknown_app.value)
    (grown,) = load_scenario(
        small, overrides={"topology.operators.telco-es.data_centres.mad-3": {}}
    )
    assert list(grown.topology.operators["telco-es"].data_centres) == ["mad-1", "mad-2", "mad-3"]
    # where the file names no data centres the model's default stands, unseen by the path
    bare = write(tmp_path, SMALL.replace("      data_centres:\n        mad-1: {}\n"
                                         "        mad-2: {}\n", ""))
    (default,) = load_scenario(bare, overrides={
        "topology.operators.telco-es.data_centres.dc1.gateway.replicas": 4})
    assert default.topology.operators["telco-es"].data_centres["dc1"].gateway.replicas == 4


def test_a_set_path_reaches_an_api_name_that_holds_dots(small: Path) -> None:
    """API names are keys with dots: a path reaches one that is there as it stands, and a
    new one in double quotes; before, both made a mapping under ``sim-swap`` (refused)."""
    (scenario,) = load_scenario(small, overrides={
        "traffic.applications.bank.apis.sim-swap.check": 0.2,
        'traffic.applications.hobby.apis."number-verification.verify"': 0.5,
    })
    assert scenario.traffic.applications["bank"].apis == {
        "sim-swap.check": 0.2, "kyc-match.match": 0.3}
    assert scenario.traffic.applications["hobby"].apis == {
        "device-reachability-status": 1.0, "number-verification.verify": 0.5}


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("traffic..bank", "empty part in 'traffic..bank'"),
        ('traffic.applications."bank', "unclosed quote"),
        ('traffic.applications."ba"nk.plan', "text after a closing quote"),
    ],
)
def test_a_malformed_set_path_is_named(small: Path, key: str, named: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(small, overrides={key: 1})
    assert f"--set {key}: cannot apply" in str(caught.value)
    assert named in str(caught.value)


def test_variants_apply_their_overrides_and_expectations(tmp_path: Path) -> None:
    text = SMALL + (
        "variants:\n"
        "  strict:\n"
        "    set: {traffic.applications.bank.client.timeout: 0.25}\n"
        "    expectations: [{metric: availability, min: 0.5}]\n"
        "  loose: {}\n"
    )
    path = write(tmp_path, text)
    strict, loose = load_scenario(path)
    assert (strict.variant, loose.variant) == ("strict", "loose")
    assert strict.traffic.applications["bank"].client.timeout == 0.25
    assert loose.traffic.applications["bank"].client.timeout == 2.0
    assert [e.min for e in strict.expectations] == [0.5]
    assert [e.application for e in loose.expectations] == ["bank"]


def test_schema_command_prints_a_json_schema() -> None:
    result = CliRunner().invoke(cli(), ["schema"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert {"topology", "traffic", "faults", "expectations", "variants"} <= set(
        document["properties"]
    )
    assert document["additionalProperties"] is False


def test_shipped_scenarios_load(scenarios: Path) -> None:
    names = {path.stem: load_scenario(path) for path in scenarios.glob("*.yaml")}
    assert {"baseline", "dc_failover", "thundering_herd"} <= set(names)
    assert [s.variant for s in names["thundering_herd"]] == ["unprotected", "protected"]


def test_a_country_code_yaml_reads_as_a_boolean_gets_a_hint(tmp_path: Path) -> None:
    """YAML 1.1 reads Norway's NO as false; the message says to quote it."""
    text = SMALL.replace('      number_ranges: ["+3460"]',
                         '      number_ranges: ["+3460"]\n      country: NO')
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert f":{line_number(text, 'country: NO')}: topology.operators.telco-es.country" in message
    assert "quote it, e.g. 'NO'" in message


def test_a_key_given_twice_is_named_not_silently_dropped(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: the first application would vanish unseen."""
    text = SMALL.replace("    hobby:\n", "    bank:\n      plan: free\n    hobby:\n", 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    second = [i for i, line in enumerate(text.splitlines(), 1) if line == "    bank:"][1]
    assert (f"{path}:{second}: traffic.applications.bank: given twice (first on line "
            f"{line_number(text, '    bank:')})") in str(caught.value)


def test_a_bad_value_a_variant_sets_is_named_at_its_own_line(tmp_path: Path) -> None:
    text = SMALL + (
        "variants:\n"
        "  fine: {}\n"
        "  broken:\n"
        "    set: {traffic.applications.bank.client.timeout: -1}\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    line = line_number(text, "timeout: -1")
    assert (f"{path}:{line}: traffic.applications.bank.client.timeout: Input should be greater"
            " than 0 (variant broken)") in str(caught.value)


def test_an_alias_inside_its_own_anchor_is_a_message_not_a_crash(tmp_path: Path) -> None:
    """The duplicate-key walk visits each node once: ``&a [*a]`` used to recurse forever."""
    path = write(tmp_path, SMALL + "loop: &a [*a]\n")
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    assert "loop: Extra inputs are not permitted" in str(caught.value)


# -- found by a read-only review: scenarios that loaded but went wrong later ------------------


def _problems(tmp_path: Path, text: str, **overrides: object) -> str:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(write(tmp_path, text), overrides=dict(overrides) or None)
    return str(caught.value)


def test_an_expectation_label_given_twice_is_refused_naming_it(tmp_path: Path) -> None:
    text = SMALL + (
        "  - {name: x, metric: availability, min: 0.5}\n"
        "  - {name: x, metric: latency_p99, max: 1}\n"
    )
    message = _problems(tmp_path, text)
    line = line_number(text, "name: x, metric: latency_p99")
    assert f":{line}: expectations.2.name: expectation 'x' is already expectations.1" in message


def test_a_variant_own_expectations_are_checked_where_they_are_written(tmp_path: Path) -> None:
    text = SMALL + (
        "variants:\n"
        "  one:\n"
        "    expectations:\n"
        "      - {metric: availability, min: 0.5}\n"
        "      - {metric: availability, max: 0.99}\n"
    )
    message = _problems(tmp_path, text)
    line = line_number(text, "max: 0.99")
    assert f":{line}: variants.one.expectations.1.name: expectation 'availability'" in message


def test_unnamed_expectations_that_measure_different_things_get_different_labels() -> None:
    base = {"metric": "recovery_time", "event": "outage", "max": 5}
    labels = {
        Expectation.model_validate({**base, **extra}).label
        for extra in ({}, {"reference": "start"}, {"level": 0.5}, {"hold": 10})
    }
    assert len(labels) == 4
    assert Expectation.model_validate(base).label == "recovery_time event=outage"


def test_overlapping_number_ranges_under_the_aggregator_are_named(tmp_path: Path) -> None:
    text = SMALL.replace("      plan: free\n", "      plan: free\n      via_aggregator: true\n")
    text = text.replace(
        "traffic:\n",
        "    telco-es2: {number_ranges: ['+346'], mnc: '08', subscribers: 20}\ntraffic:\n",
    )
    message = _problems(tmp_path, text)
    line = line_number(text, "telco-es2:")
    assert (
        f":{line}: topology.operators.telco-es2.number_ranges.0: +346 overlaps +3460 of telco-es"
    ) in message


def test_plans_the_operator_config_refuses_are_named(tmp_path: Path) -> None:
    plan = {"name": "enterprise", "rate_per_second": 10, "burst": 10}
    twice = _problems(
        tmp_path,
        SMALL.replace("plan: free", "plan: enterprise"),
        **{"topology.operators.telco-es.policies.throttling.plans": [plan, plan]},
    )
    assert "telco-es.policies.throttling.plans.1.name: plan 'enterprise' is already" in twice
    mixed = _problems(
        tmp_path,
        SMALL.replace("plan: free", "plan: enterprise"),
        **{
            "topology.operators.telco-es.policies.throttling.plans": [
                plan,
                {**plan, "name": "other", "currency": "USD"},
            ]
        },
    )
    assert "throttling.plans: every plan is priced in one currency; found EUR, USD" in mixed


@pytest.mark.parametrize(
    "key",
    [
        "topology.operators.telco-es.data_centres.mad-1.gateway.replicas",
        "topology.operators.telco-es.data_centres.mad-1.identity.workers",
    ],
)
def test_tiers_too_large_to_build_are_refused(tmp_path: Path, key: str) -> None:
    assert f"{key}: Input should be less than or equal to" in _problems(
        tmp_path, SMALL, **{key: 100_000_000}
    )


@pytest.mark.parametrize("name", ["a/b", "../up", ".hidden", "two words", ""])
def test_names_that_cannot_name_a_file_are_refused(tmp_path: Path, name: str) -> None:
    assert "variants." in _problems(tmp_path, SMALL + f"variants:\n  {json.dumps(name)}: {{}}\n")
    assert "name: Value error" in _problems(tmp_path, SMALL, name=name)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        # 1969 failed only after the run, while its results were summed by month: run lost
        ("start", "1969-12-31T00:00:00Z", "start: Value error, start must lie between 1970"),
        ("start", "9999-12-31T00:00:00Z", "start: Value error, start must lie between 1970"),
        # a typo in the exponent: memory filled before the run could begin
        ("traffic.applications.bank.arrival.rate", 1e12,
         "traffic.applications.bank.arrival.poisson.rate: Input should be less than or equal"),
        ("topology.operators.telco-es.policies.circuit_breaker.sliding_window_size",
         10_000_000_000, "sliding_window_size: Input should be less than or equal to 100000"),
        ("topology.operators.telco-es.policies.circuit_breaker.wait_duration_in_open_state",
         float("inf"), "wait_duration_in_open_state: Input should be a finite number"),
    ],
)
def test_starts_and_sizes_a_run_cannot_survive_are_refused_before_it_starts(
    small: Path, key: str, value: object, named: str
) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(small, overrides={key: value})
    assert named in str(caught.value)


def test_vary_values_lost_or_given_twice_are_refused(small: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("sweep")(sweep)
    app.command("run")(run)
    out = str(tmp_path / "sweep")
    for flags, said in (
        (["--vary", "seed=1,,2"], "--vary seed: an empty value in '1,,2'"),
        (["--vary", "seed=1,2", "--vary", "seed=3,4"], "--vary seed is given twice"),
    ):
        result = CliRunner().invoke(app, ["sweep", str(small), "--out", out, "--metric",
                                          "completed", *flags])
        assert result.exit_code == 2 and said in result.output, result.output
    bad_set = CliRunner().invoke(app, ["run", str(small), "--out", out, "--set", "novalue"])
    assert bad_set.exit_code == 2 and "[red]" not in bad_set.output, bad_set.output
    many = CliRunner().invoke(app, ["run", str(small), "--out", out,
                                    "--replications", "100000000"])
    assert many.exit_code == 2 and "--replications" in many.output
