"""``ogsim operator``: inspect an operator's configuration, test numbers and subscribers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from operators.config import OperatorConfig, example_operator
from operators.config_file import ConfigFileError, load_yaml_model
from operators.storage import Database
from operators.subscriber_base import SubscriberBase

app = typer.Typer(
    help="Inspect one operator: its config, test numbers and subscribers.", no_args_is_help=True
)
console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="operator config YAML (default: the built-in telco-es)"),
]


def load_operator(config: Path | None) -> OperatorConfig:
    """The operator config from a file, or the built-in example; a bad file exits with why."""
    if config is None:
        return example_operator()
    try:
        return load_yaml_model(config, OperatorConfig)
    except ConfigFileError as error:
        console.print(f"[red]invalid operator config[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error


@app.command("numbers")
def numbers(
    config: ConfigOption = None,
    sample: int = typer.Option(5, min=0, help="also list this many generated subscribers"),
) -> None:
    """List the documented test numbers (fixed behaviour) and a sample of generated ones."""
    operator = load_operator(config)
    base = SubscriberBase(operator, Database(":memory:"))
    table = Table(title=f"{operator.display_name} ({operator.id}) test numbers")
    table.add_column("phone number")
    table.add_column("role")
    table.add_column("behaviour")
    for test, number in base.test_numbers():
        table.add_row(number, test.role, test.description)
    for number in base.numbers(sample):
        table.add_row(number, "generated", f"seed {operator.seed}: see `ogsim operator subscriber`")
    console.print(table)


@app.command("subscriber")
def subscriber(
    phone_number: str = typer.Argument(..., help="E.164, e.g. +34600000001"),
    config: ConfigOption = None,
) -> None:
    """Print everything the operator knows about one subscriber, as JSON."""
    operator = load_operator(config)
    found = SubscriberBase(operator, Database(":memory:")).get(phone_number)
    if found is None:
        console.print(f"[red]{operator.id} does not serve {phone_number}[/red]")
        raise typer.Exit(1)
    typer.echo(json.dumps(found.model_dump(mode="json"), indent=2, ensure_ascii=False))


@app.command("config")
def show_config(config: ConfigOption = None) -> None:
    """Print the operator config as YAML: a starting point for your own file."""
    data = load_operator(config).model_dump(mode="json")
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
