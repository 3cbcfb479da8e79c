"""``ogsim sweep``: run a scenario over a grid of overrides, with replications, and compare.

``SCENARIO`` is a scenario file (then ``--vary`` gives the grid) or a sweep file that names
its scenario, replications, metric and grid (``--vary`` then adds or replaces dimensions).
Runs go to local worker processes (``--workers``) or to a Dask cluster (``--scheduler``),
with one progress bar over every run. Writes sweep.csv, runs.csv, summary.json, the plot
(sweep.png for one dimension, heatmap.png for two) and report.html under ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from operators.config_file import ConfigFileError
from sim.commands.run import SCHEDULER_HELP, WORKERS_HELP, _overrides, console, run_tasks
from sim.sweep import Dimension, dimension, load_sweep_file, parse_vary, plan_sweep

__all__ = ["sweep"]


def sweep(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file, or a sweep file")],
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary", help="key=v1,v2,... as --set takes keys, seed included (repeatable)"
        ),
    ] = None,
    replications: Annotated[
        int | None, typer.Option(min=1, help="replications per grid point (default 1)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: runs/<scenario name>-sweep)")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="metric to plot: a summary measure or an expectation's name"),
    ] = None,
    set: Annotated[
        list[str] | None,
        typer.Option("--set", help="fixed override for every point: dotted.key=value"),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="override the simulated duration (s)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help=WORKERS_HELP)] = None,
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
) -> None:
    """Run a grid of overrides with replications; write a table, a plot and report.html."""
    try:
        found = load_sweep_file(scenario)
    except ConfigFileError as error:
        console.print(f"[red]invalid sweep file[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    dimensions: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    source = scenario
    if found is not None:
        spec, source = found
        fixed.update(spec.set)
        dimensions.update({key: dimension(key, values) for key, values in spec.vary.items()})
        replications = replications or spec.replications
        metric = metric or spec.metric
        duration = duration if duration is not None else spec.duration
    fixed.update(_overrides(set or []))
    for item in vary or []:
        try:
            d = parse_vary(item)
        except ValueError as error:
            console.print(f"[red]bad --vary[/red]: {error}")
            raise typer.Exit(2) from error
        dimensions[d.key] = d
    if not dimensions:
        console.print("[red]nothing to sweep[/red]: give --vary key=v1,v2,... or a sweep file")
        raise typer.Exit(2)
    count = replications or 1
    try:
        plan = plan_sweep(
            source,
            list(dimensions.values()),
            replications=count,
            overrides=fixed,
            duration=duration,
            seed=seed,
        )
    except ConfigFileError as error:
        console.print(f"[red]invalid scenario[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    name = plan.variants[0][0].name
    folder = out if out is not None else Path("runs") / f"{name}-sweep"
    console.print(
        f"{name}: {len(plan.points)} points x {len(plan.variants[0])} variant(s) x "
        f"{count} replications = {len(plan.tasks)} runs"
    )
    digests = run_tasks(list(plan.tasks), workers=workers, scheduler=scheduler, label=name)
    from sim.sweep import write_sweep_report

    try:
        summaries, chosen, plot = write_sweep_report(plan, digests, folder, metric=metric)
    except ValueError as error:
        console.print(f"[red]bad --metric[/red]: {error}")
        raise typer.Exit(2) from error
    table = Table(title=f"{chosen}: mean and 95 % interval at each point")
    for d in plan.dimensions:
        table.add_column(d.key.rsplit(".", 2)[-1] if len(d.key) > 24 else d.key)
    table.add_column("variant")
    table.add_column("mean", justify="right")
    table.add_column("95 % interval", justify="right")
    table.add_column("expectations")
    for s in summaries:
        iv = s.metrics.get(chosen)
        outcomes = {v.outcome for v in s.verdicts}
        verdict = (
            "[green]pass[/green]"
            if outcomes <= {"pass"}
            else "[red]fail[/red]"
            if "fail" in outcomes
            else "[yellow]undecided[/yellow]"
        )
        table.add_row(
            *plan.labels(s.point).values(),
            s.variant,
            "—" if iv is None else f"{iv.mean:.4g}",
            "—" if iv is None or iv.n < 2 else f"[{iv.low:.4g}, {iv.high:.4g}]",
            verdict,
        )
    console.print(table)
    shown = f", {plot.name}" if plot is not None else ""
    console.print(f"sweep in {folder}/ (report.html, sweep.csv, runs.csv, summary.json{shown})")
