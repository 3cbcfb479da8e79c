"""The options several commands share, declared once so that a name means one thing everywhere.

``--out`` is where a command writes (a report folder, a diagram, Locust's reports) or, for
``reconcile``, the folder a run wrote; ``--results`` stays as a hidden alias for the load
test's commands, which used it first. ``--config``/``-c`` is a config YAML, ``--descriptor``
the JSON that ``ogsim up`` writes, ``--seed`` a seed, ``--workers`` a number of worker
processes, ``--admin-secret`` an operator's admin credential (also ``$OGSIM_ADMIN_SECRET``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
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
    "probe_out",
    "redis_url",
    "refuse_unwritable",
    "require_operator_database",
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


def redis_url(value: str | None) -> str | None:
    """Checks ``--redis`` up front (a callback), as Redis's client parses it, so a typo is
    named before any operator starts rather than a traceback from its first counter."""
    if value is None:
        return None
    import redis  # the Redis client loads only when a URL is given

    try:
        redis.ConnectionPool.from_url(value)
    except ValueError as error:
        raise typer.BadParameter(
            f"{value!r} is not a Redis URL ({error}); e.g. redis://127.0.0.1:6379/0"
        ) from error
    return value


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


def unwritable(path: Path, *, folder: bool) -> str | None:
    """Why ``path`` (a folder to make, or a file to write) cannot be written, or None.

    Nothing is created: the first part of the path that exists must be a folder this process
    may write in, and ``path`` itself, when it exists, the kind asked for.
    """
    if path.exists():
        if folder and not path.is_dir():
            return f"{path} is a file, not a folder"
        if not folder and path.is_dir():
            return f"{path} is a folder; give a file name"
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
        return None
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, so {path} cannot be made"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot write in {ancestor}"
    return None


def refuse_unwritable(path: Path, flag: str, console: Console, *, folder: bool = True) -> None:
    """Exit 2 naming ``flag`` when ``path`` cannot be written: checked before a run, whose
    work would otherwise be lost to a traceback at its end."""
    problem = unwritable(path, folder=folder)
    if problem is not None:
        console.print(f"{flag}: {problem}", style="red", markup=False, highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2)


def probe_out(folder: Path, flag: str, console: Console) -> None:
    """Exit 2 naming ``flag`` unless ``folder`` can be made and written now: made, and a file
    created and removed in it, before a run whose results would otherwise be lost at its end
    (permission bits do not tell: root passes them, a read-only mount does not)."""
    refuse_unwritable(folder, flag, console)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        console.print(f"{flag}: cannot write in {folder} ({error.strerror or error})",
                      style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error


def require_operator_database(db: Path, tables: tuple[str, ...], console: Console) -> None:
    """Exit 2 naming ``--db`` unless ``db`` is an SQLite file holding ``tables``; opened
    read-only, so a wrong file given by mistake is left as it was (an operator's storage
    would otherwise create its tables in it)."""
    problem = None
    try:
        source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            found = {row[0] for row in rows}
            missing = [t for t in tables if t not in found]
        finally:
            source.close()
        if missing:
            problem = f"{db} keeps no operator records (no {', '.join(missing)} table)"
    except sqlite3.Error as error:
        problem = f"{db} is not an operator's SQLite database ({error})"
    if problem is not None:
        console.print(f"--db: {problem}", style="red", markup=False, highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2)
