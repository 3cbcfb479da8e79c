"""``ogsim compare RUN_A RUN_B``: two run folders side by side, as HTML (or PNG) and a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sim.compare import RunFolder, compare_html, compare_png, differences, pairs

__all__ = ["compare"]

console = Console()


def compare(
    run_a: Annotated[Path, typer.Argument(help="report folder of run A (ogsim run --out)")],
    run_b: Annotated[Path, typer.Argument(help="report folder of run B")],
    out: Annotated[
        Path | None,
        typer.Option(help="file to write: .html (tables and plots) or .png (plots only)"),
    ] = None,
) -> None:
    """Compare two runs: differences in each metric and overlaid time series."""
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
    for va, vb in pairing:
        table = Table(title=f"{va} (A: {run_a}) vs {vb} (B: {run_b})")
        for column in ("metric", "A", "B", "B - A", "change"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for d in differences(a, b, va, vb):
            table.add_row(
                d.metric,
                d.a.text(),
                d.b.text(),
                "—" if d.delta is None else f"{d.delta:+.4g}",
                "—" if d.relative is None else f"{d.relative:+.1%}" + (" *" if d.distinct else ""),
            )
        console.print(table)
    if a.replicated or b.replicated:
        console.print("* the two 95 % intervals are disjoint")
    target = out if out is not None else Path(f"compare-{run_a.name}-{run_b.name}.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".png":
        compare_png(a, b, target)
    else:
        compare_html(a, b, target)
    console.print(f"comparison in {target}")
