"""The simulate commands: ``run``, ``sweep``, ``compare``, ``schema`` and ``validate``.

``run`` shows a progress bar, then for each variant a summary table, Little's law and the
PASS/FAIL of every expectation; it writes the report folder (with ``report.html``) and exits 1
when an expectation fails, 2 when the scenario file is invalid (the message names the field
and its line). With ``--replications N`` it runs N independent replications of every variant
in worker processes (``--workers``) or on a Dask cluster (``--scheduler``), with a progress
bar over all runs, and judges each expectation on its 95 % interval.

``sweep`` runs a scenario over a grid of overrides (``--vary``, or a sweep file naming its
scenario, replications, metric and grid), with one progress bar over every run, and writes
sweep.csv, runs.csv, summary.json, the plot and report.html under ``--out``. ``compare``
sets two run folders side by side; ``schema`` prints the scenario files' JSON Schema;
``validate`` holds the network core against queueing theory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
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

from operators import ConfigFileError, parse_override
from sim.business import is_business_file
from sim.cli.options import probe_out, refuse_unwritable
from sim.cli.result_tables import print_result, print_summary
from sim.compare import (
    RunFolder,
    compare_html,
    compare_png,
    differences,
    mismatches,
    pairs,
)
from sim.engine import World
from sim.expectations import windows_past_the_end
from sim.replications import (
    CONFIDENCE,
    RunDigest,
    RunTask,
    execute,
    plan_replications,
    run_task,
    summarise,
)
from sim.results import RunResult
from sim.scenario import Scenario, load_scenario, scenario_json_schema
from sim.sweep import (
    Dimension,
    dimension,
    load_sweep_file,
    metric_names,
    parse_vary,
    plan_sweep,
    yaml_problem,
)
from sim.validate import render as render_validation
from sim.validate import run_validation

__all__ = ["app", "compare", "run", "run_tasks", "schema", "sweep", "validate"]

WORKERS_HELP = "local worker processes (default: one per CPU; 1 runs in this process)"
SCHEDULER_HELP = (
    "Dask scheduler address (tcp://host:8786): run on that cluster instead of local processes"
)
PANEL = "Simulate (virtual time)"


def scheduler_address(value: str | None) -> str | None:
    """A Dask scheduler address as Dask writes one (``tcp://host:8786``, or ``host:8786``):
    refused naming the flag before any run, rather than as Dask's traceback after loading."""
    if value is None:
        return None
    scheme, sep, rest = value.rpartition("://")
    host, colon, port = rest.rpartition(":")
    if (
        not (colon and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536)
        or (sep and not scheme.isalpha())
        or any(char.isspace() or char == "/" for char in host)
    ):
        raise typer.BadParameter(f"{value!r} is not a scheduler address (tcp://host:8786)")
    return value

console = Console()
MAX_REPLICATIONS = 10_000
"""More is a typo: each replication's plan is made before the first runs."""


def _overrides(items: list[str]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except ValueError as error:
            console.print(f"bad --set: {error}", style="red", markup=False, highlight=False)
            raise typer.Exit(2) from error
        except yaml.YAMLError as error:
            key, _, raw = item.partition("=")
            console.print(
                f"bad --set {key.strip()}: {yaml_problem(raw, error)}",
                style="red",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from error
        overrides[key] = value
    return overrides


def _warn_past_the_end(variants: list[Scenario]) -> None:
    """Before a run: the events and expectation windows a run this short does not reach (a
    ``--duration`` shorter than the story), each said once."""
    said: set[str] = set()
    for variant in variants:
        late = variant.events_after_the_end()
        lines = []
        if late:
            lines.append(
                f"{variant.variant}: {', '.join(late)}: after the run's end "
                f"({variant.duration:g} s); it does not happen, and expectations about it "
                "cannot be judged"
            )
        lines.extend(f"{variant.variant}: {line}" for line in windows_past_the_end(variant))
        for line in lines:
            if line not in said:
                said.add(line)
                console.print(
                    f"warning: {line}",
                    style="yellow",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )


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


def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    duration: Annotated[
        float | None, typer.Option(help="override the simulated duration (s)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    set: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help='override a field: dotted.key=value (repeatable); quote a new key that holds'
            ' dots: apis."a.b"=1',
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="report folder (default: runs/<scenario name>)")
    ] = None,
    replications: Annotated[
        int, typer.Option(min=1, max=MAX_REPLICATIONS,
                          help="independent replications (seeds derived from --seed)")
    ] = 1,
    workers: Annotated[int | None, typer.Option(min=1, help=WORKERS_HELP)] = None,
    scheduler: Annotated[
        str | None, typer.Option(help=SCHEDULER_HELP, callback=scheduler_address)
    ] = None,
) -> None:
    """Run a scenario in virtual time; report, plot, and judge its expectations."""
    overrides = _overrides(set or [])
    if is_business_file(scenario):
        _run_business(scenario, duration, seed, overrides, out, replications)
        return
    try:
        variants = load_scenario(scenario, duration=duration, seed=seed, overrides=overrides)
    except ConfigFileError as error:
        console.print(f"[red]invalid scenario[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    folder = out if out is not None else Path("runs") / variants[0].name
    probe_out(folder, "--out", console)
    _warn_past_the_end(variants)
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
        print_result(console, result, wall)
    from sim.report import write_report  # matplotlib only once there is something to plot

    write_report(results, folder, source=scenario, overrides=shown)
    passed = all(r.passed for r in results)
    console.print(
        f"report in {folder}/ (report.html, summary.json, timeseries-*.csv, *.png): "
        + ("[green]PASS[/green]" if passed else "[red]FAIL[/red]")
    )
    if not passed:
        raise typer.Exit(1)


def _run_business(
    source: Path,
    duration: float | None,
    seed: int | None,
    overrides: dict[str, object],
    out: Path | None,
    replications: int,
) -> None:
    """A ``kind: api_business`` scenario (sim.business); ``--duration`` is in seconds."""
    from sim.business import load_business_scenario, run_business_file

    if replications > 1:
        console.print("[red]--replications[/red] is not supported for api_business scenarios")
        raise typer.Exit(2)
    days = None if duration is None else duration / 86400
    try:
        scenario = load_business_scenario(source, seed=seed, days=days, overrides=overrides)
    except ConfigFileError as error:
        console.print(f"[red]invalid scenario[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    folder = out if out is not None else Path("runs") / scenario.name
    probe_out(folder, "--out", console)
    if not run_business_file(scenario, console, folder, source):
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
        print_summary(console, s)
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


def sweep(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file, or a sweep file")],
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary", help="key=v1,v2,... as --set takes keys, seed included (repeatable)"
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_REPLICATIONS, help="replications per grid point (default 1)"),
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
    scheduler: Annotated[
        str | None, typer.Option(help=SCHEDULER_HELP, callback=scheduler_address)
    ] = None,
) -> None:
    """Run a grid of overrides with replications; write a table, a plot and report.html."""
    try:
        found = load_sweep_file(scenario)
    except ConfigFileError as error:
        console.print(f"[red]invalid sweep file[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    dimensions: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    metric_flag = "--metric"
    source = scenario
    if found is not None:
        spec, source = found
        fixed.update(spec.set)
        dimensions.update({key: dimension(key, values) for key, values in spec.vary.items()})
        replications = replications or spec.replications
        if metric is None and spec.metric is not None:
            metric, metric_flag = spec.metric, f"metric (of {scenario})"
        duration = duration if duration is not None else spec.duration
    fixed.update(_overrides(set or []))
    varied: list[str] = []
    for item in vary or []:
        try:
            d = parse_vary(item)
            if d.key in varied:  # the later one silently replaced the earlier
                raise ValueError(f"--vary {d.key} is given twice: put its values in one flag")
        except ValueError as error:
            console.print(
                f"bad {error}", style="red", markup=False, highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from error
        varied.append(d.key)
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
    known = metric_names(plan)
    if metric is not None and metric not in known:
        console.print(
            f"bad {metric_flag}: unknown metric {metric!r} (known: {', '.join(sorted(known))})",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    folder = out if out is not None else Path("runs") / f"{name}-sweep"
    probe_out(folder, "--out", console)
    _warn_past_the_end([variant for point in plan.variants for variant in point])
    console.print(
        f"{name}: {len(plan.points)} points x {len(plan.variants[0])} variant(s) x "
        f"{count} replications = {len(plan.tasks)} runs"
    )
    digests = run_tasks(list(plan.tasks), workers=workers, scheduler=scheduler, label=name)
    from sim.sweep import write_sweep_report

    try:
        summaries, chosen, plot = write_sweep_report(plan, digests, folder, metric=metric)
    except ValueError as error:  # not measured after all: keep the runs, plot the default
        console.print(
            f"warning: {metric_flag}: {error}; plotting the default instead",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        summaries, chosen, plot = write_sweep_report(plan, digests, folder)
    table = Table(title=f"{chosen}: mean and 95 % interval at each point")
    for d in plan.dimensions:
        table.add_column(d.key.rsplit(".", 2)[-1] if len(d.key) > 24 else d.key)
    table.add_column("variant")
    table.add_column("mean", justify="right")
    table.add_column("95 % interval", justify="right")
    table.add_column("expectations")
    for s in summaries:
        iv = s.measure(chosen)
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


def compare(
    run_a: Annotated[Path, typer.Argument(help="report folder of run A (ogsim run --out)")],
    run_b: Annotated[Path, typer.Argument(help="report folder of run B")],
    out: Annotated[
        Path | None,
        typer.Option(help="file to write: .html (tables and plots) or .png (plots only)"),
    ] = None,
) -> None:
    """Compare two runs: differences in each metric and overlaid time series."""
    if out is not None:
        refuse_unwritable(out, "--out", console, folder=False)
    try:
        a, b = RunFolder.read(run_a), RunFolder.read(run_b)
    except (OSError, ValueError) as error:
        console.print(f"[red]cannot compare[/red]: {error}")
        raise typer.Exit(2) from error
    pairing = pairs(a, b)
    if not pairing:
        console.print(
            f"[red]cannot compare[/red]: no common variant ({', '.join(a.metrics)} vs "
            f"{', '.join(b.metrics)})"
        )
        raise typer.Exit(2)
    for line in mismatches(a, b):
        console.print(
            f"warning: {line}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )
    for va, vb in pairing:
        table = Table(title=f"{va} (A: {run_a}) vs {vb} (B: {run_b})")
        for column in ("metric", "A", "B", "B - A", "change"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for d in differences(a, b, va, vb):
            table.add_row(
                d.title,
                d.a.text(),
                d.b.text(),
                "—" if d.delta is None else f"{d.delta:+.4g}",
                "—" if d.relative is None else f"{d.relative:+.1%}" + (" *" if d.distinct else ""),
            )
        console.print(table)
    if a.replicated or b.replicated:
        console.print("* the two 95 % intervals are disjoint")
    target = out if out is not None else Path(f"compare-{run_a.name}-{run_b.name}.html")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix.lower() == ".png":
            compare_png(a, b, target)
        else:
            compare_html(a, b, target)
    except OSError as error:  # permission bits pass root in /proc or on a read-only mount
        console.print(f"--out: cannot write {target} ({error.strerror or error})",
                      style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error
    console.print(f"comparison in {target}")


def validate(
    quick: Annotated[bool, typer.Option(help="a short run for tests (seconds)")] = False,
    seed: Annotated[int, typer.Option(help="seed of every replication")] = 1,
    replications: Annotated[
        int, typer.Option(min=2, max=MAX_REPLICATIONS, help="SimPy replications per model")
    ] = 10,
    live: Annotated[
        bool, typer.Option(help="also time the live asyncio function (on wall time, machine-bound)")
    ] = True,
) -> None:
    """Check the network core against Erlang C, the loss formula and Little's law.

    The SimPy function the engine runs and the live asyncio one; exits 1 when one fails.
    """
    if quick:
        rows = run_validation(
            quick=True, seed=seed, replications=min(replications, 3), live=live
        )
    else:
        with Progress(console=console, transient=True) as progress:
            rows = run_validation(
                seed=seed, replications=replications, progress=progress, live=live
            )
    console.print(render_validation(rows))
    failed = sum(1 for row in rows if not row.passed)
    console.print(f"validate: {len(rows) - failed} passed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


app = typer.Typer()
app.command("run", rich_help_panel=PANEL)(run)
app.command("sweep", rich_help_panel=PANEL)(sweep)
app.command("compare", rich_help_panel=PANEL)(compare)
app.command("schema", rich_help_panel=PANEL)(schema)
app.command("validate", rich_help_panel=PANEL)(validate)
