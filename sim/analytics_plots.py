"""The analytics' figures as PNG files, drawn the same for a live operator and a simulated one.

``ogsim analytics`` draws an operator's pages (funnel, cohorts, revenue, alerts per day) and a
simulated API business's report draws its funnel against the truth, its cohorts and its
revenue; both hand plain labels and numbers to these functions, so a funnel or a cohort table
looks alike wherever it comes from. matplotlib (Agg backend) is imported on the first figure,
not when a command line merely starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Bars", "RevenuePanel", "alerts_plot", "cohort_plot", "funnel_plot", "revenue_plot"]

DPI = 100


@dataclass(frozen=True)
class Bars:
    """One group of bars: a value per step, drawn in one colour."""

    label: str
    values: Sequence[float]
    colour: str


@dataclass(frozen=True)
class RevenuePanel:
    """Revenue per one dimension (API, plan, organisation): a bar per group."""

    title: str
    labels: Sequence[str]
    amounts: Sequence[float]
    unit: str


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(pyplot: Any, figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)


def funnel_plot(
    path: Path,
    steps: Sequence[str],
    groups: Sequence[Bars],
    *,
    notes: Sequence[str],
    ylabel: str,
    title: str,
) -> None:
    """Bars per funnel step, one group beside the other (e.g. measured and true), with
    ``notes`` written above the first group's bars."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(max(7.0, 1.6 * len(steps)), 4))
    width = 0.8 / max(1, len(groups))
    for g, group in enumerate(groups):
        at = [k + (g - (len(groups) - 1) / 2) * width for k in range(len(steps))]
        bars = axes.bar(at, group.values, width=width, color=group.colour, label=group.label)
        if g == 0:
            for bar, note in zip(bars, notes, strict=False):
                axes.annotate(
                    note,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    axes.set_xticks(range(len(steps)), list(steps), fontsize=8)
    axes.tick_params(axis="x", labelrotation=15)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if len(groups) > 1:
        axes.legend(fontsize=8)
    _save(pyplot, figure, path)


def cohort_plot(
    path: Path,
    cohorts: Sequence[str],
    retention: Sequence[Sequence[float | None]],
    *,
    weeks: int,
    title: str,
) -> None:
    """A heat map of retention, a row per sign-up cohort and a column per week after it,
    each cell's share written in it (a week not yet over left blank)."""
    import numpy as np

    pyplot = _pyplot()
    grid = np.full((max(1, len(cohorts)), weeks), np.nan)
    for i, row in enumerate(retention):
        for k, share in enumerate(row[:weeks]):
            if share is not None:
                grid[i, k] = share
    figure, axes = pyplot.subplots(
        figsize=(max(6.0, 1.6 + 0.7 * weeks), max(3.0, 1.5 + 0.4 * len(grid)))
    )
    image = axes.imshow(grid, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    for i in range(len(cohorts)):
        for k in range(weeks):
            if not np.isnan(grid[i, k]):
                axes.text(
                    k,
                    i,
                    f"{grid[i, k]:.0%}",
                    ha="center",
                    va="center",
                    color="white" if grid[i, k] > 0.55 else "black",
                    fontsize=7,
                )
    axes.set_xticks(range(weeks), [f"w{k}" for k in range(weeks)], fontsize=7)
    axes.set_yticks(range(len(cohorts)), list(cohorts), fontsize=7)
    axes.set_xlabel("weeks after sign-up")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.04, label="share active")
    _save(pyplot, figure, path)


def revenue_plot(path: Path, panels: Sequence[RevenuePanel], *, title: str) -> None:
    """Revenue bars side by side, a panel per dimension."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.bar(range(len(panel.labels)), list(panel.amounts), color="tab:blue")
        ax.set_xticks(
            range(len(panel.labels)), list(panel.labels), rotation=25, ha="right", fontsize=8
        )
        ax.set_title(panel.title)
        ax.set_ylabel(panel.unit)
    figure.suptitle(title)
    _save(pyplot, figure, path)


def alerts_plot(
    path: Path, days: Sequence[str], counts: Mapping[str, Sequence[int]], *, title: str
) -> None:
    """Alerts per day stacked by kind (kinds with no alert left out)."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(10, 4))
    bottom = [0] * len(days)
    drawn = False
    for kind, values in counts.items():
        if not any(values):
            continue
        axes.bar(list(days), list(values), bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        drawn = True
    axes.set_ylabel("alerts")
    axes.set_title(title)
    if drawn:
        axes.legend()
    axes.tick_params(axis="x", labelrotation=60)
    _save(pyplot, figure, path)
