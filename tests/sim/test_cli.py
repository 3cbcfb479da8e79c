"""The CLI: every command has --help, bad input is named, the demo tells its story."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

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
