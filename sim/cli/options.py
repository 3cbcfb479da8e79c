"""The options several commands share, declared once so that a name means one thing everywhere.

``--out`` is where a command writes (a report folder, a diagram, Locust's reports) or, for
``reconcile``, the folder a run wrote; ``--results`` stays as a hidden alias for the load
test's commands, which used it first. ``--config``/``-c`` is a config YAML, ``--descriptor``
the JSON that ``ogsim up`` writes, ``--seed`` a seed, ``--workers`` a number of worker
processes, ``--admin-secret`` an operator's admin credential (also ``$OGSIM_ADMIN_SECRET``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from operators import ConfigFileError, ServedOperatorConfig, example_operator, load_yaml_model

__all__ = [
    "DEFAULT_ADMIN_SECRET",
    "AdminSecretOption",
    "OperatorConfigOption",
    "ResultsAlias",
    "load_operator",
    "out_or_alias",
]

DEFAULT_ADMIN_SECRET = "admin-secret"
"""The built-in configs' admin credential (``ogsim serve`` refuses it off loopback)."""

OperatorConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="operator config YAML (default: the built-in telco-es)"),
]

AdminSecretOption = Annotated[
    str,
    typer.Option(envvar="OGSIM_ADMIN_SECRET", help="admin credential of the parties"),
]


ResultsAlias = Annotated[
    Path | None,
    typer.Option("--results", hidden=True, help="the old name of --out (still accepted)"),
]
"""Declared beside ``--out`` by the load test's commands; :func:`out_or_alias` merges them."""


def out_or_alias(out: Path, results: Path | None) -> Path:
    """The folder given as ``--results`` (the old name) if any, else ``--out``."""
    return results if results is not None else out


def load_operator(config: Path | None, console: Console) -> ServedOperatorConfig:
    """The operator config from a file, or the built-in example; a bad file exits with why.

    Every command reads the same file, so one written for ``ogsim serve`` (with its ``core``
    and ``protection``) is also good for ``ogsim invoices`` or ``ogsim operator numbers``.
    """
    if config is None:
        return ServedOperatorConfig.model_validate(example_operator().model_dump())
    try:
        return load_yaml_model(config, ServedOperatorConfig)
    except ConfigFileError as error:
        console.print(f"[red]invalid operator config[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
