"""``ogsim conformance``: CAMARA's own ``.feature`` scenarios against ogsim or any CAMARA gateway.

With no ``--base-url`` it starts the built-in operator in process and runs every scenario of
SIM Swap, Number Verification, Device Reachability and Roaming Status, Location Verification
and Retrieval, Quality on Demand, QoS Profiles and KYC Match. With ``--base-url URL
--token-command CMD`` the same scenarios run against another implementation: CMD is run once
per distinct token need and prints an access token; the need arrives as environment
variables ``OGSIM_TOKEN_KIND`` (three-legged / two-legged), ``OGSIM_SCOPE`` (API scope and
``dpv:`` purpose), ``OGSIM_PHONE_NUMBER`` (three-legged only), ``OGSIM_CLIENT`` (primary /
secondary application) and ``OGSIM_EXPIRED`` (1 for an expired token). Test data comes from
``OGSIM_TEST_NUMBERS`` (JSON object, role → phone number: approves, recent-swap,
never-swapped, roaming, unreachable, sms-only) or, with ``OGSIM_ADMIN_SECRET``, from an ogsim
operator's admin API, which also enables fault injection. What the target cannot provide is
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table

from operators.conformance import (
    AdminEnvironment,
    CommandTokens,
    ConformanceReport,
    ScenarioResult,
    Target,
    run_conformance,
)
from sim.conformance import default_camara_dir, in_process_target

__all__ = ["conformance", "run"]

console = Console()


async def run(
    camara_dir: Path,
    apis: list[str] | None = None,
    base_url: str | None = None,
    token_command: str | None = None,
    echo: bool = False,
) -> ConformanceReport:
    """Run the scenarios in process (no ``base_url``) or against ``base_url``."""

    def show(result: ScenarioResult) -> None:
        if echo:
            colour = {"passed": "green", "skipped": "yellow"}.get(result.outcome, "red")
            line = f"[{colour}]{result.outcome:7}[/{colour}] {result.scenario.api} "
            console.print(line + result.scenario.tag, soft_wrap=True, highlight=False)

    if base_url is None:
        async with in_process_target() as target:
            return await run_conformance(target, camara_dir, apis, on_result=show)
    if token_command is None:
        raise typer.BadParameter("--base-url needs --token-command", param_hint="--token-command")
    numbers = json.loads(os.environ.get("OGSIM_TEST_NUMBERS", "{}"))
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        environment = AdminEnvironment(
            http,
            os.environ.get("OGSIM_ADMIN_SECRET"),
            numbers,
            os.environ.get("OGSIM_UNKNOWN_NUMBER", "+99999999999"),
        )
        target = Target(http, CommandTokens(token_command), environment)
        return await run_conformance(target, camara_dir, apis, on_result=show)


def conformance(
    base_url: str | None = typer.Option(
        None, "--base-url", help="API root of another CAMARA implementation (default: in process)"
    ),
    token_command: str | None = typer.Option(
        None, "--token-command", help="shell command printing an access token (see OGSIM_* vars)"
    ),
    camara_dir: Path | None = typer.Option(
        None, "--camara-dir", help="CAMARA YAML + .feature folder (default: $OGSIM_CAMARA_DIR)"
    ),
    api: list[str] | None = typer.Option(
        None, "--api", help="only this API (YAML name, e.g. sim-swap); repeatable"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="one line per scenario"),
) -> None:
    """Run CAMARA's own acceptance scenarios and print passed / failed / skipped per API."""
    folder = camara_dir or default_camara_dir()
    if not folder.is_dir():
        console.print(f"[red]no CAMARA definitions at {folder}[/red] (set OGSIM_CAMARA_DIR)")
        raise typer.Exit(2)
    report = asyncio.run(run(folder, api or None, base_url, token_command, echo=verbose))
    table = Table(title="CAMARA conformance")
    for column in ("API", "run", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "API" else "right")
    for name, ran, passed, failed, skipped in report.per_api():
        table.add_row(name, str(ran), str(passed), str(failed), str(skipped))
    console.print(table)
    for result in report.results:
        if result.outcome in {"failed", "error"} or (verbose and result.outcome == "skipped"):
            console.print(
                f"{result.outcome.upper()} {result.scenario.api} {result.scenario.tag}: "
                f"{result.reason.splitlines()[0] if result.reason else ''}",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
    typer.echo(report.summary())
    if report.failed or not report.results:
        raise typer.Exit(1)
