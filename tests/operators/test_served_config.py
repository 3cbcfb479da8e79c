"""One operator's file sizes and guards its modelled core, as a federation's YAML does.

``ogsim serve --config`` reads a :class:`ServedOperatorConfig`: the operator's config plus
``core`` and ``protection``; the operator it starts calls that core through those guards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

import sim.cli.live
from operators import Operator, ServedOperatorConfig, example_operator
from operators.config import OperatorConfig
from operators.core import CoreSpec, NetworkFunctionKind
from operators.integrator import GuardedExecutor, GuardSettings
from sim.cli import app

runner = CliRunner()

PROTECTION = {
    "max_concurrent": 3, "max_waiting": 5, "max_wait": 0.2, "shed_target": 0.5,
    "breaker": {"minimum_number_of_calls": 7, "wait_duration_in_open_state": 2.0},
}  # fmt: skip
LOCATION = {
    "name": "gmlc", "kind": "location_server", "servers": 40, "queue_limit": 80,
    "service_time": {"distribution": "exponential", "mean": 0.05},
}  # fmt: skip


def _served_file(tmp_path: Path, **fields: object) -> Path:
    data = example_operator().model_dump(mode="json") | fields
    path = tmp_path / "operator.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _assert_runs_the_files(operator: Operator) -> None:
    """The guards and core that :data:`PROTECTION` and :data:`LOCATION` describe."""
    executor = operator.integrator.execute
    assert isinstance(executor, GuardedExecutor)
    for kind in NetworkFunctionKind:
        guard = executor.guards[kind]
        assert guard.settings == GuardSettings.model_validate(PROTECTION)
        assert guard.max_concurrent == 3
        assert guard.breaker.config.minimum_number_of_calls == 7
    functions: dict[NetworkFunctionKind, Any] = operator.backends.functions
    location = functions[NetworkFunctionKind.LOCATION_SERVER]
    assert location.spec.servers == 40 and location.spec.capacity == 40 + 80
    hlr = functions[NetworkFunctionKind.SIM_DATA_REGISTER]
    assert hlr.spec == CoreSpec().sim_data_register  # not named: the default


def test_the_operator_calls_the_files_core_through_its_guards() -> None:
    config = ServedOperatorConfig.model_validate(
        example_operator().model_dump()
        | {"core": {"location_server": LOCATION}, "protection": PROTECTION}
    )
    operator = Operator.from_config(config)
    try:
        _assert_runs_the_files(operator)
    finally:
        operator.close()


def test_ogsim_serve_runs_the_files_core_and_protection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command itself, up to the server: the operator it would serve is the file's."""
    served: list[Operator] = []

    def app_of(operator: Operator) -> object:
        served.append(operator)
        return object()

    monkeypatch.setattr(sim.cli.live, "create_operator_app", app_of)
    monkeypatch.setattr(sim.cli.live, "serve_until_stopped", lambda *_: None)
    path = _served_file(tmp_path, protection=PROTECTION, core={"location_server": LOCATION})
    result = runner.invoke(app, ["serve", "--config", str(path), "--port", "18998"])
    assert result.exit_code == 0, result.output
    (operator,) = served
    _assert_runs_the_files(operator)


def test_arguments_given_outrank_the_files() -> None:
    """A federation member passes its own (the same fields); an explicit value wins."""
    config = ServedOperatorConfig.model_validate(
        example_operator().model_dump()
        | {"core": {"location_server": LOCATION}, "protection": PROTECTION}
    )
    operator = Operator.from_config(
        config, core=CoreSpec(), protection=GuardSettings(max_concurrent=9)
    )
    try:
        executor = operator.integrator.execute
        assert isinstance(executor, GuardedExecutor)
        assert executor.guards[NetworkFunctionKind.SIM_DATA_REGISTER].max_concurrent == 9
        functions: dict[NetworkFunctionKind, Any] = operator.backends.functions
        assert functions[NetworkFunctionKind.LOCATION_SERVER].spec == CoreSpec().location_server
    finally:
        operator.close()


def test_the_plain_config_leaves_them_out() -> None:
    config = ServedOperatorConfig.model_validate(
        example_operator().model_dump() | {"protection": PROTECTION}
    )
    plain = config.operator_config()
    assert "protection" not in plain.model_dump() and "core" not in plain.model_dump()
    assert plain == example_operator()


def test_operator_config_prints_them_and_reads_them_back(tmp_path: Path) -> None:
    printed = runner.invoke(app, ["operator", "config"])
    assert printed.exit_code == 0, printed.output
    defaults = yaml.safe_load(printed.output)
    assert defaults["protection"] == GuardSettings().model_dump(mode="json")
    assert defaults["core"]["location_server"]["servers"] == CoreSpec().location_server.servers

    path = _served_file(tmp_path, protection=PROTECTION, core={"location_server": LOCATION})
    again = runner.invoke(app, ["operator", "config", "--config", str(path)])
    assert again.exit_code == 0, again.output
    read = yaml.safe_load(again.output)
    assert read["protection"]["max_concurrent"] == 3
    assert read["protection"]["breaker"]["minimum_number_of_calls"] == 7
    assert read["core"]["location_server"]["servers"] == 40
    # every command reads the same file: one written for serve is good for the others
    numbers = runner.invoke(app, ["operator", "numbers", "--config", str(path), "--sample", "0"])
    assert numbers.exit_code == 0 and "+34600000001" in numbers.output


def test_a_bad_protection_or_core_is_named_at_its_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # were the value accepted, the command would serve until stopped: fail instead
    def must_not_serve(*_: object) -> None:
        raise AssertionError("ogsim serve accepted a bad file")

    monkeypatch.setattr(sim.cli.live, "serve_until_stopped", must_not_serve)
    path = _served_file(tmp_path, protection={"max_concurrent": 0})
    result = runner.invoke(app, ["serve", "--config", str(path), "--port", "1"])
    assert result.exit_code == 2
    assert "protection.max_concurrent" in result.output
    assert "Traceback" not in result.output

    path = _served_file(tmp_path, core={"location_server": {**LOCATION, "servers": "many"}})
    result = runner.invoke(app, ["serve", "--config", str(path), "--port", "1"])
    assert result.exit_code == 2
    assert "core.location_server.servers" in result.output


@pytest.mark.parametrize("issuer", ["http://telco-es.example/oauth", "ftp://127.0.0.1/oauth"])
def test_an_operator_issuer_off_loopback_must_be_https(issuer: str) -> None:
    """A lone ``ogsim serve`` publishes its keys and takes credentials at its issuer."""
    document = example_operator().model_dump(mode="json")
    with pytest.raises(ValidationError) as refused:
        OperatorConfig.model_validate({**document, "issuer": issuer})
    (error,) = refused.value.errors()
    assert error["loc"] == ("issuer",) and "https" in error["msg"]
    for fine in ("https://telco-es.example/oauth", "http://127.0.0.1:8100/oauth"):
        assert OperatorConfig.model_validate({**document, "issuer": fine}).issuer == fine
