"""How ``ogsim run`` runs a business scenario on the terminal: a progress bar over simulated
days, then rich tables of detection, funnel, churn, revenue and the expectations."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.business.results import BusinessResult
from sim.business.run import result_of
from sim.business.scenario import ABUSE_KINDS, BusinessScenario
from sim.business.world import BusinessWorld

__all__ = ["peak_memory_mib", "print_business", "run_business_file", "run_with_progress"]


def peak_memory_mib() -> float:
    """The process's peak resident memory so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_with_progress(
    scenario: BusinessScenario, console: Console
) -> tuple[BusinessResult, float, float]:
    """Run with a progress bar over simulated days; the result, wall seconds, peak MiB."""
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[calls]} calls"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(scenario.name, total=scenario.days, calls="0")
        world = BusinessWorld(scenario)

        def on_day(days: int) -> None:
            progress.update(task, completed=days, calls=f"{world.calls:,}")

        world.run(on_day)
        progress.update(task, description=f"{scenario.name}: scoring")
        result = result_of(world)
    return result, time.perf_counter() - started, peak_memory_mib()


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def print_business(console: Console, result: BusinessResult, wall: float, memory: float) -> None:
    """The run's tables: population, detection per kind, funnel, churn, revenue, verdicts."""
    scenario = result.scenario
    calls = sum(d.calls for d in result.days)
    table = Table(title=f"{scenario.name}: {scenario.description}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.population.items():
        table.add_row(key, f"{value:,}")
    table.add_row("calls", f"{calls:,}")
    table.add_row("alerts", f"{len(result.alerts):,}")
    table.add_row("wall time (s)", f"{wall:.1f}")
    table.add_row("peak memory (MiB)", f"{memory:.0f}")
    table.add_row("simulated calls / wall s", f"{calls / wall:,.0f}" if wall > 0 else "—")
    console.print(table)
    detection = Table(title="detectors against the ground truth")
    for column in ("abuse kind", "cases", "detected", "flagged", "precision", "recall"):
        detection.add_column(column, justify="left" if column == "abuse kind" else "right")
    detection.add_column("time to detect median / p90 (h)", justify="right")
    for kind in ABUSE_KINDS:
        k = result.kinds[kind]
        detection.add_row(
            kind,
            str(k.cases),
            str(k.detected),
            str(k.flagged),
            _num(k.precision),
            _num(k.recall),
            f"{_num(k.time_to_detect_hours)} / {_num(k.time_to_detect_p90_hours)}",
        )
    console.print(detection)
    flagged, normal = result.false_alarms
    console.print(f"normal applications with an alert: {flagged} of {normal}")
    funnel = Table(title=f"funnel within {result.funnel.window / 3600:g} h (analytics vs truth)")
    for column in ("step", "entered", "overall", "truth"):
        funnel.add_column(column, justify="left" if column == "step" else "right")
    truth = result.funnel_score
    for step, true in zip(
        result.funnel.steps,
        [1.0, truth.true_token_conversion, truth.true_conversion],
        strict=False,
    ):
        funnel.add_row(step.name, f"{step.entered:,}", _num(step.overall), _num(true))
    console.print(funnel)
    churn = result.churn
    console.print(
        f"churn risk: {churn.flagged} developers flagged, precision {_num(churn.precision)}, "
        f"recall {_num(churn.recall)} ({churn.detected}/{churn.churning})"
    )
    money = Table(title="revenue per API (the operator's rating)")
    for column in ("API", "billable calls", "revenue"):
        money.add_column(column, justify="left" if column == "API" else "right")
    for row in result.revenue.by_api:
        money.add_row(row.group, f"{row.calls:,}", f"{row.amount} {row.currency}")
    console.print(money)
    verdicts = Table(title="expectations")
    for column in ("expectation", "value", "bound", "verdict"):
        verdicts.add_column(column)
    for v in result.verdicts:
        bound = " ".join(
            part
            for part in (
                f">= {v.min:g}" if v.min is not None else "",
                f"<= {v.max:g}" if v.max is not None else "",
            )
            if part
        )
        verdicts.add_row(
            v.label,
            _num(v.value, 4),
            bound,
            "[green]PASS[/green]" if v.passed else "[red]FAIL[/red]",
        )
    console.print(verdicts)


def run_business_file(
    scenario: BusinessScenario, console: Console, out: Path, source: Path | None
) -> bool:
    """Run, print, write the report folder; True when every expectation passed."""
    from sim.business.report import closing_note, write_business_report

    result, wall, memory = run_with_progress(scenario, console)
    print_business(console, result, wall, memory)
    write_business_report(result, out, cost=(wall, memory), source=source)
    console.print(closing_note(result, (wall, memory)), highlight=False)
    console.print(
        f"report in {out}/ (report.html, summary.json, *.csv, *.png): "
        + ("[green]PASS[/green]" if result.passed else "[red]FAIL[/red]")
    )
    return result.passed
