"""The CLI: every command has --help under its role, bad input is named, options mean one thing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from federation import default_federation
from federation.ports import free_port_block, listening_socket
from operators.identity import KeySealing
from sim.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["operator"],
        ["operator", "numbers"],
        ["operator", "subscriber"],
        ["operator", "config"],
        ["demo"],
        ["serve"],
        ["up"],
        ["token"],
        ["run"],
        ["sweep"],
        ["compare"],
        ["schema"],
        ["validate"],
        ["conformance"],
        ["loadtest"],
        ["reconcile"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_operator_numbers_lists_test_numbers() -> None:
    result = runner.invoke(app, ["operator", "numbers", "--sample", "1"])
    assert result.exit_code == 0
    for role in ("recent-swap", "never-swapped", "roaming", "unreachable", "opted-out"):
        assert role in result.output
    assert "+34600000002" in result.output


def test_subscriber_of_another_operator_is_refused() -> None:
    result = runner.invoke(app, ["operator", "subscriber", "+447700900123"])
    assert result.exit_code == 1
    assert "does not serve" in result.output


def test_bad_config_file_names_field_and_line(tmp_path: Path) -> None:
    config = tmp_path / "op.yaml"
    config.write_text(
        "id: telco-x\ndisplay_name: X\ncountry: XX\nmcc: '999'\nmnc: '01'\n"
        "number_ranges: ['+999']\nsubscribers: -5\n"
    )
    result = runner.invoke(app, ["operator", "numbers", "--config", str(config)])
    assert result.exit_code == 2
    assert "op.yaml:7: subscribers" in result.output


def test_config_round_trips_through_yaml(tmp_path: Path) -> None:
    dumped = runner.invoke(app, ["operator", "config"])
    assert dumped.exit_code == 0
    path = tmp_path / "op.yaml"
    path.write_text(dumped.output)
    again = runner.invoke(app, ["operator", "numbers", "--config", str(path), "--sample", "0"])
    assert again.exit_code == 0 and "+34600000001" in again.output


def test_serve_refuses_a_public_address_with_the_default_admin_secret() -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "18999"])
    assert result.exit_code == 2
    assert "admin secret" in result.output


def test_corporate_idp_refuses_a_plain_http_portal_off_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def serve(*_: object) -> None:
        raise AssertionError("the IdP was served for a plain http portal")

    monkeypatch.setattr("sim.cli.live.serve_until_stopped", serve)
    result = runner.invoke(app, ["corporate-idp", "--portal", "http://portal.example.net",
                                 "--port", "18998"])
    assert result.exit_code == 2
    assert "--portal" in result.output and "loopback" in result.output


def test_the_commands_are_listed_by_role() -> None:
    listing = runner.invoke(app, ["--help"]).output
    for role, commands in {
        "Simulate": ("run", "sweep", "compare", "schema", "validate"),
        "Live": ("serve", "up", "demo", "token", "operator"),
        "QA": ("conformance", "loadtest", "reconcile"),
    }.items():
        section = listing[listing.index(role) :]
        assert all(f" {command} " in section for command in commands), (role, listing)


def test_out_is_the_name_everywhere_and_results_a_hidden_alias() -> None:
    for command in ("run", "sweep", "compare", "demo", "loadtest", "reconcile"):
        assert "--out" in runner.invoke(app, [command, "--help"]).output, command
    for command in ("loadtest", "reconcile"):
        assert "--results" not in runner.invoke(app, [command, "--help"]).output


def test_reconcile_reads_the_folder_given_by_either_name(tmp_path: Path) -> None:
    descriptor = tmp_path / "federation.json"
    descriptor.write_text("{}")
    for name in ("--out", "--results"):
        result = runner.invoke(
            app, ["reconcile", "--descriptor", str(descriptor), name, str(tmp_path / "run")]
        )
        assert result.exit_code == 2, result.output  # the descriptor is invalid: said, not raised


def test_config_is_dash_c_for_an_operator_and_for_a_federation() -> None:
    for command in (["serve"], ["up"], ["operator", "numbers"]):
        assert "-c" in runner.invoke(app, [*command, "--help"]).output, command


def test_token_refuses_an_expired_token_and_names_a_bad_key(tmp_path: Path) -> None:
    base = ["token", "--issuer", "http://127.0.0.1:9/oauth", "--client-id", "app"]
    expired = runner.invoke(
        app, [*base, "--key", str(tmp_path / "k.jwk")], env={"OGSIM_EXPIRED": "1"}
    )
    assert expired.exit_code == 3
    (tmp_path / "k.jwk").write_text("not a key")
    bad = runner.invoke(app, [*base, "--key", str(tmp_path / "k.jwk")])
    assert bad.exit_code == 2 and "cannot read the key" in bad.output


def test_token_for_a_network_authenticated_subscriber_needs_the_admin_credential(
    tmp_path: Path,
) -> None:
    """Number Verification answers only a subscriber the network authenticated: the command
    gets a TS.43 operator token from the operator's admin API, and says it cannot without
    the admin credential (a conformance run then skips the scenario with that reason)."""
    (tmp_path / "k.jwk").write_text("{}")
    result = runner.invoke(app, [
        "token", "--issuer", "http://127.0.0.1:9/oauth", "--client-id", "app", "--key",
        str(tmp_path / "k.jwk"), "--number", "+34600000001",
    ], env={"OGSIM_NETWORK": "1", "OGSIM_ADMIN_SECRET": ""})
    assert result.exit_code == 3 and "--admin-secret" in result.output


def test_quick_validation_passes_and_ends_with_the_summary_line() -> None:
    # The live rows run on wall time: their verdict is the benchmark's, not a test's.
    result = runner.invoke(app, ["validate", "--quick", "--seed", "1", "--no-live"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("validate: ")
    assert result.output.strip().endswith("passed, 0 failed")


def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    """A file where a folder goes (or a folder where a file goes) used to cost the whole run
    and end in a traceback; now it is named, exit 2, and nothing runs."""
    taken = tmp_path / "taken"
    taken.write_text("")
    small = Path(__file__).parent.parent.parent / "scenarios" / "thundering_herd.yaml"
    cases = [
        (["run", str(small), "--out", str(taken)], "is a file, not a folder"),
        (["run", str(small), "--out", str(taken / "deeper")], "cannot be made"),
        (["sweep", str(small), "--vary", "seed=1,2", "--out", str(taken)], "not a folder"),
        (["compare", str(tmp_path), str(tmp_path), "--out", str(tmp_path)], "give a file name"),
        (["demo", "--out", str(taken)], "is a file, not a folder"),
        (["loadtest", "--out", str(taken)], "is a file, not a folder"),
        (["calibrate", "--out", str(taken)], "is a file, not a folder"),
    ]
    for args, said in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "--out" in result.output, (args, result.output)
        assert said in result.output and "Traceback" not in result.output, args
    assert taken.read_text() == "" and not (tmp_path / "runs").exists()


def test_bad_federation_file_sweep_values_and_scheduler_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these was a traceback (and seed=1.7 a silent seed 1) before."""

    def never(*_: object, **__: object) -> None:
        raise AssertionError("ogsim up started its processes despite a bad path")

    monkeypatch.setattr("sim.cli.live.FederationProcesses.prepare", never)
    bad = tmp_path / "federation.yaml"
    bad.write_text("operators: 5\n")
    for config, said in ((bad, "operators: Input should be a valid tuple"),
                         (tmp_path / "none.yaml", "cannot read")):
        result = runner.invoke(app, ["up", "-c", str(config)])
        assert result.exit_code == 2 and "invalid federation config" in result.output
        assert said in result.output
    for flag, path in (("--descriptor", tmp_path), ("--run-dir", bad)):  # refused before start
        result = runner.invoke(app, ["up", flag, str(path)])
        assert result.exit_code == 2 and flag in result.output, result.output
    herd = Path(__file__).parent.parent.parent / "scenarios" / "thundering_herd.yaml"
    out = tmp_path / "sweep"
    for vary, said in (("seed=a,b", "seed: Input should be a valid integer"),
                       ("seed=1.7", "fractional part"),
                       ("seed=null", "--vary seed: 'null' is not a number"),
                       ("duration=x,5", "duration: Input should be a valid number")):
        result = runner.invoke(app, ["sweep", str(herd), "--vary", vary, "--out", str(out)])
        assert result.exit_code == 2 and said in result.output, (vary, result.output)
    for address in ("bogus", "tcp://host", "tcp://host:99999", "tcp://a/b:1"):
        result = runner.invoke(app, ["run", str(herd), "--scheduler", address])
        said = " ".join(result.output.replace("│", " ").split())  # unwrap rich's error panel
        assert result.exit_code == 2 and "is not a scheduler address" in said, address
    assert not out.exists()


def test_a_run_shorter_than_its_story_warns_of_the_events_it_cuts_off(tmp_path: Path) -> None:
    failover = Path(__file__).parent.parent.parent / "scenarios" / "dc_failover.yaml"
    result = runner.invoke(app, ["run", str(failover), "--duration", "5", "--out",
                                 str(tmp_path / "out")])
    said = " ".join(result.output.split())
    assert "warning" in said and "after the run's end (5 s)" in said, said
    long_enough = runner.invoke(app, ["run", str(failover), "--duration", "61", "--out",
                                      str(tmp_path / "out2")])
    # the fault at 60 s happens now; only its expectations' windows are cut (said apart)
    said = " ".join(long_enough.output.split())
    assert "report in" in said and "it does not happen" not in said
    assert "window [60, 66) s reaches past the run's end (61 s)" in said


def test_live_start_up_problems_are_named_not_tracebacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these was a traceback before (or, for the taken port, an uncaught error)."""

    def never(*_: object, **__: object) -> None:
        raise AssertionError("processes started despite a bad option")

    monkeypatch.setattr("sim.cli.live.FederationProcesses.prepare", never)
    for args in (["serve", "--redis", "foo"], ["up", "--redis", "redis://h:99999"]):
        result = runner.invoke(app, args)
        said = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "--redis" in said and "not a Redis URL" in said, said
    lonely = tmp_path / "lonely.yaml"
    data = default_federation().model_dump(mode="json")
    spain = [c for c in data["countries"] if c["code"] == "ES"]
    lonely.write_text(yaml.safe_dump({"operators": data["operators"][:1], "countries": spain}))
    result = runner.invoke(app, ["up", "-c", str(lonely)])
    assert result.exit_code == 2 and "aggregators: none given" in result.output, result.output
    for port in ("70000", "80"):
        result = runner.invoke(app, ["loadtest", "--out", str(tmp_path), "--base-port", port])
        said = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "--base-port" in said, said
    monkeypatch.undo()
    port = str(free_port_block(1))
    with listening_socket(int(port)):  # taken: the first operator cannot listen there
        result = runner.invoke(app, ["loadtest", "--out", str(tmp_path / "out"), "--base-port",
                                     port])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_up_keeps_its_temporary_folder_when_a_party_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message pointed at a log in a folder deleted right after; now the folder stays."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv(KeySealing.ENV, "not-a-key")  # every party refuses it and exits 2
    result = runner.invoke(app, ["up", "--base-port", str(free_port_block(4)),
                                 "--descriptor", str(tmp_path / "federation.json")])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "exited with 2; see" in said, said
    (scratch,) = tmp_path.glob("ogsim-up-*")
    assert f"kept in {scratch}" in said
    assert any("must be 32 random bytes" in log.read_text() for log in scratch.glob("*.log"))


def test_a_data_centre_failure_is_checked_before_the_load_test_runs(tmp_path: Path) -> None:
    """``--fail-data-centre`` was read only inside Locust, which logged a typo and ran the
    whole test without the outage; now its form and its target are checked first."""
    for spec in ("telco-es", "telco-es/madrid@soon", "telco-es/madrid@-3", "/madrid@1"):
        result = runner.invoke(app, ["loadtest", "--out", str(tmp_path / "a"),
                                     "--fail-data-centre", spec])
        said = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and "--fail-data-centre" in said, (spec, said)
    described = tmp_path / "federation.json"
    described.write_text(json.dumps({"operators": [{
        "id": "telco-es", "country": "ES", "issuer": "http://127.0.0.1:9/oauth",
        "apiRoot": "http://127.0.0.1:9", "dataCentres": ["madrid", "barcelona"],
        "testNumbers": {}}]}))
    for spec, named in (("telco-xx/madrid@1", "no operator 'telco-xx'"),
                        ("telco-es/lisbon@1", "no data centre 'lisbon'")):
        result = runner.invoke(app, ["loadtest", "--descriptor", str(described), "--out",
                                     str(tmp_path / "b"), "--fail-data-centre", spec])
        assert result.exit_code == 2 and named in result.output, result.output
