"""Parameter sweeps: a grid of ``--set`` overrides, replications at each point, table and plots.

A dimension is a dotted key as ``--set`` takes it (``seed`` and ``duration`` included) with a
list of values; the grid is their Cartesian product, each point runs every variant of the
scenario ``replications`` times (seeds derived from the point's seed), and each metric gets
its mean and 95 % interval per (point, variant). The table is ``sweep.csv``; the comparison is
a line plot with interval bands for one dimension and an annotated heatmap for two (the first
two, with one panel per variant). A sweep file (YAML) records a sweep so it can be rerun::

    scenario: retry_storm.yaml        # relative to the sweep file
    replications: 3
    metric: goodput after the spike
    vary:
      traffic.applications.herd-app.spikes.0.factor: [1, 5, 10, 20]
      traffic.applications.herd-app.client.retry:    # a mapping: label -> value
        immediate: {policy: immediate, max_attempts: 4}
        backoff: {policy: backoff, max_attempts: 4}
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from operators import ConfigFileError
from sim.replications import (
    CONFIDENCE,
    RunDigest,
    RunTask,
    VariantSummary,
    plan_replications,
    summarise,
)
from sim.results import CONSENT_TOTALS, TOTALS
from sim.scenario import ConsentRevocation, Scenario, load_scenario

__all__ = [
    "Dimension",
    "SweepFile",
    "SweepPlan",
    "load_sweep_file",
    "metric_names",
    "parse_vary",
    "plan_sweep",
    "write_sweep_report",
    "yaml_problem",
]


@dataclass(frozen=True, slots=True)
class Dimension:
    """One swept key, its values and the labels shown for them."""

    key: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets, braces and quotes (``{a: 1, b: 2},3`` is two);
    empty parts are kept, for the caller to refuse."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def parse_vary(text: str) -> Dimension:
    """``key=v1,v2,...`` (each value a YAML scalar or flow mapping/list) as a dimension."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--vary {text!r} is not of the form key=v1,v2,...")
    items = _split_top_level(raw)
    if not any(items):
        raise ValueError(f"--vary {key.strip()}: no values")
    if not all(items):  # "1,,2": a value was lost between the commas, not meant to be dropped
        raise ValueError(f"--vary {key.strip()}: an empty value in {raw!r}")
    values = []
    for item in items:
        try:
            values.append(yaml.safe_load(item))
        except yaml.YAMLError as error:
            raise ValueError(f"--vary {key.strip()}: {yaml_problem(item, error)}") from error
    return Dimension(key.strip(), tuple(values), tuple(items))


def yaml_problem(raw: str, error: yaml.YAMLError) -> str:
    """One line on why ``raw`` (a value given on the command line) is not YAML."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    hint = " (quote it: 'key=\"...\"')" if raw.strip()[:1] in "@`*&!|>%" else ""
    return f"{raw!r} is not a YAML value: {problem}{hint}"


def dimension(key: str, values: Sequence[Any] | Mapping[str, Any]) -> Dimension:
    """A dimension from a sweep file: a list of values, or a mapping label -> value."""
    if isinstance(values, Mapping):
        return Dimension(key, tuple(values.values()), tuple(str(k) for k in values))
    return Dimension(key, tuple(values), tuple(_label(v) for v in values))


class SweepFile(BaseModel):
    """A sweep written down: the scenario, its fixed overrides, the grid, what to plot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    description: str = ""
    replications: int = Field(default=1, ge=1)
    duration: float | None = Field(default=None, gt=0)
    metric: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    vary: dict[str, list[Any] | dict[str, Any]] = Field(min_length=1)

    @field_validator("vary")
    @classmethod
    def _values_to_vary(
        cls, value: dict[str, list[Any] | dict[str, Any]]
    ) -> dict[str, list[Any] | dict[str, Any]]:
        empty = [key for key, values in value.items() if not values]
        if empty:
            raise ValueError(f"no values to vary for {', '.join(empty)} (the grid would be empty)")
        return value


def load_sweep_file(path: Path) -> tuple[SweepFile, Path] | None:
    """A sweep file and its scenario's path, or None when ``path`` is a scenario file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigFileError(str(path), [f"{path}: not UTF-8 text ({error.reason})"]) from error
    except (OSError, yaml.YAMLError) as error:
        raise ConfigFileError(str(path), [f"{path}: {error}"]) from error
    if not isinstance(data, dict) or "vary" not in data or "topology" in data:
        return None
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError(
            str(path),
            [
                f"{path}: {'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                for item in error.errors()
            ],
        ) from error
    return spec, (path.parent / spec.scenario)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The grid's points (labels and values per dimension) and every run to make."""

    source: Path
    dimensions: tuple[Dimension, ...]
    points: tuple[tuple[int, ...], ...]
    """For each point, the index of its value in each dimension."""
    variants: tuple[tuple[Scenario, ...], ...]
    """For each point, its variants as loaded (base seeds)."""
    tasks: tuple[RunTask, ...]
    replications: int

    def labels(self, point: int) -> dict[str, str]:
        return {
            d.key: d.labels[i] for d, i in zip(self.dimensions, self.points[point], strict=True)
        }


def plan_sweep(
    source: Path,
    dimensions: Sequence[Dimension],
    *,
    replications: int = 1,
    overrides: Mapping[str, Any] | None = None,
    duration: float | None = None,
    seed: int | None = None,
) -> SweepPlan:
    """Load the scenario at every grid point and plan its replications.

    ``seed`` and ``duration`` as dimension keys set the run's seed and duration; other keys
    are dotted overrides applied after ``overrides``. Raises ConfigFileError for a point whose
    scenario is invalid (the message names the point).
    """
    points = tuple(itertools.product(*(range(len(d.values)) for d in dimensions)))
    variants: list[tuple[Scenario, ...]] = []
    tasks: list[RunTask] = []
    for number, indices in enumerate(points):
        point_overrides = dict(overrides or {})
        point_seed, point_duration = seed, duration
        for d, i in zip(dimensions, indices, strict=True):
            # seed and duration go in uncoerced: the scenario's own fields check them, so a
            # value that is no integer (seed=a, seed=1.7) is named, not truncated or a crash
            value = d.values[i]
            if d.key in ("seed", "duration") and (value is None or isinstance(value, bool)):
                raise ConfigFileError(
                    str(source), [f"--vary {d.key}: {d.labels[i]!r} is not a number"]
                )
            if d.key == "seed":
                point_seed = value
            elif d.key == "duration":
                point_duration = value
            else:
                point_overrides[d.key] = value
        try:
            loaded = load_scenario(
                source, duration=point_duration, seed=point_seed, overrides=point_overrides
            )
        except ConfigFileError as error:
            where = ", ".join(
                f"{d.key}={d.labels[i]}" for d, i in zip(dimensions, indices, strict=True)
            )
            raise ConfigFileError(
                error.path, [f"at {where}: {line}" for line in error.problems]
            ) from error
        variants.append(tuple(loaded))
        tasks.extend(plan_replications(loaded, replications, point=number))
    return SweepPlan(source, tuple(dimensions), points, tuple(variants), tuple(tasks), replications)


def metric_names(plan: SweepPlan) -> set[str]:
    """What ``--metric`` may name, known before any run: every expectation's label at every
    point and variant, and the totals (those of consent waves when a variant has one)."""
    names = set(TOTALS)
    for point in plan.variants:
        for scenario in point:
            names.update(e.label for e in scenario.expectations)
            if any(isinstance(f, ConsentRevocation) for f in scenario.faults):
                names.update(CONSENT_TOTALS)
    return names


# -- outputs --------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


EXPECTATION = "expectation: "
"""Marks an expectation's column in sweep.csv and runs.csv, apart from the totals (an
expectation may be named ``availability`` and measure one application's)."""


def sweep_rows(plan: SweepPlan, summaries: Sequence[VariantSummary]) -> list[dict[str, str]]:
    """One row per (point, variant): the dimension labels, outcome, and each metric's interval."""
    rows = []
    for s in summaries:
        row: dict[str, str] = dict(plan.labels(s.point))
        row["variant"] = s.variant
        row["replications"] = str(len(s.seeds))
        row["expectations"] = "pass" if s.passed else "undecided" if _undecided(s) else "fail"
        columns = [
            *s.metrics.items(),
            *((f"{EXPECTATION}{v.label}", v.interval) for v in s.verdicts),
        ]
        for name, iv in columns:
            row[f"{name} mean"] = _fmt(None if iv is None else iv.mean)
            row[f"{name} low"] = _fmt(None if iv is None or iv.n < 2 else iv.low)
            row[f"{name} high"] = _fmt(None if iv is None or iv.n < 2 else iv.high)
        rows.append(row)
    return rows


def _undecided(s: VariantSummary) -> bool:
    outcomes = {v.outcome for v in s.verdicts}
    return "fail" not in outcomes and "undecided" in outcomes


def write_csv(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def run_rows(plan: SweepPlan, digests: Sequence[RunDigest]) -> list[dict[str, str]]:
    """One row per run: the dimension labels, variant, replication, seed and every metric."""
    rows = []
    for d in digests:
        row: dict[str, str] = dict(plan.labels(d.point))
        row.update(variant=d.variant, replication=str(d.replication), seed=str(d.seed))
        row.update({name: _fmt(value) for name, value in d.metrics.items()})
        row.update({f"{EXPECTATION}{v.label}": _fmt(v.value) for v in d.verdicts})
        rows.append(row)
    return rows


def default_metric(summaries: Sequence[VariantSummary]) -> str:
    """The first expectation's metric label, else goodput per second."""
    for s in summaries:
        if s.verdicts:
            return s.verdicts[0].label
    return "goodput_per_second"


def _plot_line(
    plan: SweepPlan, summaries: Sequence[VariantSummary], metric: str, out: Path
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = plan.dimensions[0]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in d.values)
    xs = list(d.values) if numeric else list(range(len(d.values)))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    variants = list(dict.fromkeys(s.variant for s in summaries))
    for variant in variants:
        mean, low, high = [], [], []
        for i in range(len(d.values)):
            s = next(x for x in summaries if x.variant == variant and plan.points[x.point][0] == i)
            iv = s.measure(metric)
            mean.append(math.nan if iv is None else iv.mean)
            low.append(math.nan if iv is None else iv.low)
            high.append(math.nan if iv is None else iv.high)
        ax.plot(xs, mean, "o-", label=variant)
        ax.fill_between(xs, low, high, alpha=0.2)
    if not numeric:
        ax.set_xticks(xs, list(d.labels), rotation=20, ha="right", fontsize=8)
    ax.set_xlabel(d.key)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean and {CONFIDENCE:.0%} interval ({plan.replications} replications)")
    if len(variants) > 1 or variants[0] != "default":
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "sweep.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_heatmap(
    plan: SweepPlan, summaries: Sequence[VariantSummary], metric: str, out: Path
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first, second = plan.dimensions[0], plan.dimensions[1]
    variants = list(dict.fromkeys(s.variant for s in summaries))
    fig, axes = plt.subplots(
        1,
        len(variants),
        figsize=(1.1 * len(first.values) * len(variants) + 3.5, 0.7 * len(second.values) + 2.4),
        squeeze=False,
    )
    grids = []
    for variant in variants:
        grid = np.full((len(second.values), len(first.values)), np.nan)
        marks = np.full(grid.shape, "", dtype=object)
        for s in summaries:
            if s.variant != variant:
                continue
            i, j = plan.points[s.point][0], plan.points[s.point][1]
            iv = s.measure(metric)
            if iv is not None and math.isfinite(iv.mean):
                grid[j, i] = iv.mean if np.isnan(grid[j, i]) else grid[j, i]
            half = "" if iv is None or math.isnan(iv.half_width) else f"\n±{iv.half_width:.2g}"
            marks[j, i] = ("—" if iv is None else f"{iv.mean:.3g}") + half
        grids.append((variant, grid, marks))
    finite = [g[np.isfinite(g)] for _, g, _ in grids]
    values = np.concatenate(finite) if finite else np.array([0.0])
    vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    for ax, (variant, grid, marks) in zip(axes[0], grids, strict=True):
        image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        for (j, i), text in np.ndenumerate(marks):
            value = grid[j, i]
            dark = not np.isnan(value) and value < (vmin + vmax) / 2
            ax.text(
                i, j, text, ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
        ax.set_xticks(
            range(len(first.labels)), list(first.labels), rotation=20, ha="right", fontsize=8
        )
        ax.set_yticks(range(len(second.labels)), list(second.labels), fontsize=8)
        ax.set_xlabel(first.key, fontsize=8)
        ax.set_ylabel(second.key, fontsize=8)
        if variant != "default":
            ax.set_title(variant)
        fig.colorbar(image, ax=ax, label=metric)
    fig.suptitle(
        f"{metric}: mean ± {CONFIDENCE:.0%} half-width over {plan.replications} replications",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "heatmap.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_sweep_report(
    plan: SweepPlan,
    digests: Sequence[RunDigest],
    out: Path,
    *,
    metric: str | None = None,
) -> tuple[list[VariantSummary], str, Path | None]:
    """sweep.csv, runs.csv, summary.json, the plot and report.html; returns summaries,
    the plotted metric and the plot's path (None for three dimensions or more)."""
    from sim.html_report import Figure, HtmlDocument, verdict_cell

    out.mkdir(parents=True, exist_ok=True)
    summaries = summarise(digests)
    chosen = metric or default_metric(summaries)
    known = {name for s in summaries for name in s.measures()}
    if chosen not in known:
        raise ValueError(f"unknown metric {chosen!r} (known: {', '.join(sorted(known))})")
    rows = sweep_rows(plan, summaries)
    write_csv(out / "sweep.csv", rows)
    write_csv(out / "runs.csv", run_rows(plan, digests))
    plot: Path | None = None
    if len(plan.dimensions) == 1:
        plot = _plot_line(plan, summaries, chosen, out)
    elif len(plan.dimensions) >= 2:
        plot = _plot_heatmap(plan, summaries, chosen, out) if len(plan.points) else None
        if len(plan.dimensions) > 2:
            plot = None
    first = plan.variants[0][0]
    digest = {
        "scenario": first.name,
        "source": str(plan.source),
        "replications": plan.replications,
        "confidence": CONFIDENCE,
        "metric": chosen,
        "dimensions": {d.key: list(d.labels) for d in plan.dimensions},
        "points": rows,
    }
    (out / "summary.json").write_text(
        json.dumps(digest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    doc = HtmlDocument(f"sweep of {first.name}: {chosen}")
    doc.paragraph(
        f"{first.description} — {len(plan.points)} grid points x "
        f"{len(plan.variants[0])} variant(s) x {plan.replications} replications = "
        f"{len(plan.tasks)} runs of {first.duration:g} virtual seconds, from {plan.source}."
    )
    doc.paragraph(
        f"Values are means over the replications with a {CONFIDENCE:.0%} Student-t interval. "
        "A point's expectations pass only when every expectation's whole interval lies within "
        "its bounds; 'undecided' means some interval straddles a bound.",
        note=True,
    )
    doc.heading("Grid")
    doc.table(["key", "values"], [[d.key, ", ".join(d.labels)] for d in plan.dimensions])
    if plot is not None:
        doc.figure(Figure.from_file(plot, f"{chosen} over the grid"))
    doc.heading(f"{chosen} at each point")
    doc.table(
        [
            *(d.key for d in plan.dimensions),
            "variant",
            "mean",
            f"{CONFIDENCE:.0%} interval",
            "expectations",
        ],
        [
            [
                *plan.labels(s.point).values(),
                s.variant,
                None if (iv := s.measure(chosen)) is None else iv.mean,
                "—" if iv is None or iv.n < 2 else f"[{iv.low:.4g}, {iv.high:.4g}]",
                verdict_cell("pass" if s.passed else "undecided" if _undecided(s) else "fail"),
            ]
            for s in summaries
        ],
    )
    doc.code(
        yaml.safe_dump(plan.variants[0][0].model_dump(mode="json"), sort_keys=False, width=100),
        summary="the scenario at the first grid point, every field",
    )
    doc.write(out / "report.html")
    return summaries, chosen, plot
