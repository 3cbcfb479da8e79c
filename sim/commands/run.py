"""``ogsim run`` and ``ogsim schema``: run a scenario file in virtual time, or describe them.

``run`` shows a progress bar, then for each variant a summary table, Little's law and the
PASS/FAIL of every expectation; it writes the report folder (with ``report.html``) and exits 1
when an expectation fails, 2 when the scenario file is invalid (the message names the field
and its line). With ``--replications N`` it runs N independent replications of every variant
in worker processes (``--workers``) or on a Dask cluster (``--scheduler``), with a progress
bar over all runs, and judges each expectation on its 95 % interval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from operators.config_file import ConfigFileError, parse_override
from sim.engine import RunResult, World
from sim.replications import (
    CONFIDENCE,
    RunDigest,
    RunTask,
    VariantSummary,
    execute,
    plan_replications,
    run_task,
    summarise,
)
from sim.scenario import Scenario, load_scenario, scenario_json_schema

__all__ = ["WORKERS_HELP", "run", "run_tasks", "schema"]

WORKERS_HELP = "local worker processes (default: one per CPU; 1 runs in this process)"
SCHEDULER_HELP = (
    "Dask scheduler address (tcp://host:8786): run on that cluster instead of local processes"
)

console = Console()


def _overrides(items: list[str]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except ValueError as error:
            console.print(f"[red]bad --set[/red]: {error}")
            raise typer.Exit(2) from error
        overrides[key] = value
    return overrides


def _print_result(result: RunResult, wall: float) -> None:
    scenario = result.scenario
    totals = result.totals()
    table = Table(title=f"{scenario.name} / {scenario.variant}: {scenario.description}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in totals.items():
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else f"{value:,}")
    rate = result.calls / wall if wall > 0 else 0.0
    table.add_row("wall time (s)", f"{wall:.2f}")
    table.add_row("simulated operations / wall s", f"{rate:,.0f}")
    console.print(table)
    little = result.little
    verdict = "[green]holds[/green]" if little.holds else "[red]does not hold[/red]"
    console.print(
        f"Little's law (client operations): L = {little.mean_in_system:.4g}, "
        f"λW = {little.arrival_rate:.4g} * {little.mean_time_in_system:.4g} = "
        f"{little.product:.4g}, error {little.relative_error:.2%}: {verdict}"
    )
    for station in result.stations:
        console.print(
            f"  at {station.name}: L = {station.mean_in_system:.4g}, "
            f"λW = {station.throughput * station.mean_sojourn:.4g} "
            f"(error {station.relative_error:.2%}"
            + (", still filling: not stationary)" if station.relative_error > 0.05 else ")")
        )
    from sim.report import settlement  # with the report, matplotlib is loaded already

    records = settlement(result)
    if records:
        ledger = Table(title="settlement records per operator pair")
        for column in ("kind", "from", "to", "application"):
            ledger.add_column(column)
        ledger.add_column("billable calls", justify="right")
        ledger.add_column("operations", justify="right")
        for r in records:
            ledger.add_row(
                r["kind"],
                r["from"],
                r["to"],
                r["application"],
                f"{r['billable_calls']:,}",
                f"{r['operations']:,}",
            )
        console.print(ledger)
    for wave in result.consent_waves:
        counts = result.consent[wave["operator"]]
        console.print(
            f"consent revocation {wave['name']!r} on {wave['operator']}: {wave['lines']} lines "
            f"at {wave['at']:g} s, replication lag {wave['replication_lag']:g} s; successes "
            f"within the lag {counts['successes_within_lag']}, after it "
            f"{counts['successes_after_lag']}, refused {counts['refused']}"
        )
    checks = Table(title="expectations")
    checks.add_column("expectation")
    checks.add_column("value", justify="right")
    checks.add_column("bound", justify="right")
    checks.add_column("result")
    for v in result.verdicts:
        bound = " ".join(
            part
            for part in (
                f"≥ {v.min:g}" if v.min is not None else "",
                f"≤ {v.max:g}" if v.max is not None else "",
            )
            if part
        )
        shown = "—" if v.value is None else f"{v.value:.4g}"
        checks.add_row(
            v.label, shown, bound, "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]"
        )
    console.print(checks)


def run_tasks(
    tasks: list[RunTask], *, workers: int | None, scheduler: str | None, label: str
) -> list[RunDigest]:
    """Every task, locally or on Dask, with a progress bar over all runs."""
    where = f"on {scheduler}" if scheduler else "locally"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task(f"{label} {where}", total=len(tasks))
        return execute(
            run_task,
            tasks,
            workers=workers,
            scheduler=scheduler,
            done=lambda n: progress.update(bar, completed=n),
        )


def _interval_text(low: float, high: float, n: int) -> str:
    if n < 2:
        return "(one value)"
    return f"[{low:.4g}, {high:.4g}]" if high != float("inf") else f"[{low:.4g}, ∞)"


def _print_summary(s: VariantSummary) -> None:
    table = Table(title=f"{s.variant}: {len(s.seeds)} replications, mean and 95 % interval")
    table.add_column("measure")
    table.add_column("mean", justify="right")
    table.add_column("95 % interval", justify="right")
    for key, iv in s.metrics.items():
        if iv is None:
            table.add_row(key, "—", "—")
        else:
            table.add_row(key, f"{iv.mean:,.4g}", _interval_text(iv.low, iv.high, iv.n))
    console.print(table)
    checks = Table(title="expectations, judged on the 95 % interval")
    checks.add_column("expectation")
    checks.add_column("mean", justify="right")
    checks.add_column("95 % interval", justify="right")
    checks.add_column("bound", justify="right")
    checks.add_column("result")
    colour = {"pass": "green", "fail": "red", "undecided": "yellow"}
    for v in s.verdicts:
        iv = v.interval
        bound = " ".join(
            part
            for part in (
                f"≥ {v.min:g}" if v.min is not None else "",
                f"≤ {v.max:g}" if v.max is not None else "",
            )
            if part
        )
        checks.add_row(
            v.label,
            "—" if iv is None else f"{iv.mean:.4g}",
            "—" if iv is None else _interval_text(iv.low, iv.high, iv.n),
            bound,
            f"[{colour[v.outcome]}]{v.outcome.upper()}[/{colour[v.outcome]}]",
        )
    console.print(checks)


def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    duration: Annotated[
        float | None, typer.Option(help="override the simulated duration (s)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    set: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a field: dotted.key=value (repeatable)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="report folder (default: runs/<scenario name>)")
    ] = None,
    replications: Annotated[
        int, typer.Option(min=1, help="independent replications (seeds derived from --seed)")
    ] = 1,
    workers: Annotated[int | None, typer.Option(min=1, help=WORKERS_HELP)] = None,
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
) -> None:
    """Run a scenario in virtual time; report, plot, and judge its expectations."""
    overrides = _overrides(set or [])
    try:
        variants = load_scenario(scenario, duration=duration, seed=seed, overrides=overrides)
    except ConfigFileError as error:
        console.print(f"[red]invalid scenario[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    folder = out if out is not None else Path("runs") / variants[0].name
    shown: dict[str, object] = dict(overrides)
    if duration is not None:
        shown["duration"] = duration
    if seed is not None:
        shown["seed"] = seed
    if replications > 1 or scheduler is not None:
        _replicate(variants, replications, workers, scheduler, folder, scenario, shown)
        return
    results: list[RunResult] = []
    walls: list[float] = []
    total = sum(v.duration for v in variants)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} virtual s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("building", total=total)
        done = 0.0
        for variant in variants:
            progress.update(task, description=f"{variant.name}/{variant.variant}")
            started = time.perf_counter()
            world = World(variant)
            base = done

            def advance(t: float, base: float = base) -> None:
                progress.update(task, completed=base + t)

            result = world.run(advance)
            walls.append(time.perf_counter() - started)
            results.append(result)
            done += variant.duration
    for result, wall in zip(results, walls, strict=True):
        _print_result(result, wall)
    from sim.report import write_report  # matplotlib only once there is something to plot

    write_report(results, folder, source=scenario, overrides=shown)
    passed = all(r.passed for r in results)
    console.print(
        f"report in {folder}/ (report.html, summary.json, timeseries-*.csv, *.png): "
        + ("[green]PASS[/green]" if passed else "[red]FAIL[/red]")
    )
    if not passed:
        raise typer.Exit(1)


def _replicate(
    variants: list[Scenario],
    replications: int,
    workers: int | None,
    scheduler: str | None,
    folder: Path,
    source: Path,
    shown: dict[str, object],
) -> None:
    tasks = plan_replications(variants, replications)
    digests = run_tasks(
        tasks, workers=workers, scheduler=scheduler, label=f"{variants[0].name} replications"
    )
    summaries = summarise(digests)
    for s in summaries:
        _print_summary(s)
    from sim.report import write_replication_report

    write_replication_report(
        summaries,
        digests,
        variants,
        folder,
        confidence=CONFIDENCE,
        source=source,
        overrides=shown,
    )
    passed = all(s.passed for s in summaries)
    console.print(
        f"report in {folder}/ (report.html, summary.json, replications.csv, *.png): "
        + ("[green]PASS[/green]" if passed else "[red]FAIL[/red]")
        + " (each expectation judged on its 95 % interval)"
    )
    if not passed:
        raise typer.Exit(1)


def schema() -> None:
    """Print the JSON Schema of scenario files (for editors and validation)."""
    typer.echo(scenario_json_schema())
