"""Two run folders side by side: a table of differences in each metric, overlaid time series.

A folder is what ``ogsim run`` wrote: ``summary.json`` and ``timeseries-<variant>.csv``, from
a single run (each metric's value) or from ``--replications`` (each metric's mean and 95 %
interval; the time series are per-second means). Variants are paired by name; two folders
with one variant each are paired whatever their names. Runs of different scenarios, seeds or
durations can be compared, but their totals are then not like for like: :func:`mismatches`
says so. Each time-series point is drawn at the middle of the second it counts.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.metrics import row_midpoint

__all__ = [
    "Difference",
    "RunFolder",
    "compare_html",
    "compare_png",
    "differences",
    "mismatches",
    "pairs",
]

SERIES = (
    ("goodput", "goodput (ops/s)"),
    ("attempts", "attempts (ops/s)"),
    ("latency_p99", "p99 latency (s)"),
)


@dataclass(frozen=True, slots=True)
class Measured:
    """A metric's value, or its mean and interval when the run was replicated."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def text(self) -> str:
        if self.value is None:
            return "—"
        if self.low is not None and self.high is not None:
            high = "∞" if math.isinf(self.high) else f"{self.high:.4g}"
            return f"{self.value:.4g} [{self.low:.4g}, {high}]"
        return f"{self.value:.4g}"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return float(value)


def _interval(iv: Any) -> Measured:
    if iv is None:
        return Measured(None)
    return Measured(_number(iv["mean"]), _number(iv["low"]), _number(iv["high"]))


@dataclass(slots=True)
class RunFolder:
    """A report folder read back: per variant, its metrics and its per-second series."""

    path: Path
    scenario: str
    replicated: bool
    duration: float | None = None
    """Virtual seconds simulated, as summary.json says (None if it does not)."""
    seed: int | None = None
    """The run's seed, or a replicated run's base seed (None if summary.json has none)."""
    metrics: dict[str, dict[str, Measured]] = field(default_factory=dict)
    """Per variant, its totals by name."""
    expectations: dict[str, dict[str, Measured]] = field(default_factory=dict)
    """Per variant, its expectations' values by label: apart from the totals, since an
    expectation may be named like one (``availability`` of one application)."""
    series: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    events: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> RunFolder:
        """The run ``ogsim run`` wrote to ``path``; ValueError naming the folder for anything
        else (a sweep, a business run, a summary edited by hand)."""
        summary_path = path / "summary.json"
        if not summary_path.exists():
            raise FileNotFoundError(f"{path}: no summary.json (not an ogsim run folder)")
        try:
            data = json.loads(summary_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: summary.json is not JSON ({error})") from error
        if isinstance(data, dict) and "points" in data:
            raise ValueError(f"{path}: a sweep folder; compare two run folders")
        if not isinstance(data, dict) or not isinstance(data.get("variants"), dict):
            raise ValueError(f"{path}: no variants in summary.json: not the folder of a"
                             " capacity scenario's run (ogsim run)")
        try:
            return cls._parse(path, data)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"{path}: summary.json is damaged ({error!r})") from error

    @classmethod
    def _parse(cls, path: Path, data: dict[str, Any]) -> RunFolder:
        replicated = "confidence" in data
        seed = data.get("base_seed" if replicated else "seed")
        folder = cls(
            path,
            str(data.get("scenario", path.name)),
            replicated,
            _number(data.get("duration")),
            None if seed is None else int(seed),
        )
        for variant, body in data.get("variants", {}).items():
            measured: dict[str, Measured] = {}
            checks: dict[str, Measured] = {}
            if replicated:
                for name, iv in body.get("metrics", {}).items():
                    measured[name] = _interval(iv)
                for expectation in body.get("expectations", []):
                    checks[expectation["name"]] = _interval(expectation.get("interval"))
            else:
                for name, value in body.get("totals", {}).items():
                    measured[name] = Measured(_number(value))
                for expectation in body.get("expectations", []):
                    checks[expectation["name"]] = Measured(_number(expectation["value"]))
                folder.events[variant] = {
                    name: (float(span[0]), float(span[1]))
                    for name, span in body.get("events", {}).items()
                }
            folder.expectations[variant] = checks
            folder.metrics[variant] = measured
            csv_path = path / f"timeseries-{variant}.csv"
            if csv_path.exists():
                folder.series[variant] = _read_series(csv_path)
        return folder


def _read_series(path: Path) -> dict[str, list[float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else []
    return {
        column: [float(row[column]) if row[column] not in ("", None) else math.nan for row in rows]
        for column in columns
    }


def mismatches(a: RunFolder, b: RunFolder) -> list[str]:
    """Lines saying what differs between the two runs besides what they were run to compare:
    the scenario, the seed and the duration (totals over 300 s against totals over 150 s are
    no like-for-like comparison, and the table alone does not show it)."""
    found = []
    if a.scenario != b.scenario:
        found.append(f"the runs are of different scenarios: A {a.scenario}, B {b.scenario}")
    if a.duration != b.duration:
        found.append(
            f"the runs differ in duration: A {_seconds(a.duration)}, B {_seconds(b.duration)};"
            " counts and time series cover different spans"
        )
    if a.seed != b.seed:
        kind = "base seed" if a.replicated and b.replicated else "seed"
        found.append(f"the runs differ in {kind}: A {a.seed}, B {b.seed}")
    return found


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g} s"


def pairs(a: RunFolder, b: RunFolder) -> list[tuple[str, str]]:
    """Variants of ``a`` and ``b`` to compare: same names, or the only one of each."""
    shared = [v for v in a.metrics if v in b.metrics]
    if shared:
        return [(v, v) for v in shared]
    if len(a.metrics) == 1 and len(b.metrics) == 1:
        return [(next(iter(a.metrics)), next(iter(b.metrics)))]
    return []


@dataclass(frozen=True, slots=True)
class Difference:
    """One metric in A and in B, their difference, and whether the intervals overlap."""

    metric: str
    a: Measured
    b: Measured
    expectation: bool = False
    """``metric`` is an expectation's label, not a total's name."""

    @property
    def title(self) -> str:
        """The row's name in a table: an expectation's marked as one."""
        return f"expectation: {self.metric}" if self.expectation else self.metric

    @property
    def delta(self) -> float | None:
        if self.a.value is None or self.b.value is None:
            return None
        if math.isinf(self.a.value) or math.isinf(self.b.value):
            return None if self.a.value == self.b.value else self.b.value - self.a.value
        return self.b.value - self.a.value

    @property
    def relative(self) -> float | None:
        delta = self.delta
        if delta is None or self.a.value in (None, 0.0) or math.isinf(delta):
            return None
        assert self.a.value is not None
        return delta / abs(self.a.value)

    @property
    def distinct(self) -> bool | None:
        """Whether the two 95 % intervals are disjoint (None without intervals)."""
        a, b = self.a, self.b
        if None in (a.low, a.high, b.low, b.high):
            return None
        assert a.low is not None and a.high is not None and b.low is not None
        assert b.high is not None
        return a.high < b.low or b.high < a.low


def differences(a: RunFolder, b: RunFolder, variant_a: str, variant_b: str) -> list[Difference]:
    """Every total of either side, in A's order then B's extras; then every expectation."""
    found: list[Difference] = []
    for expectation, (ma, mb) in (
        (False, (a.metrics[variant_a], b.metrics[variant_b])),
        (True, (a.expectations.get(variant_a, {}), b.expectations.get(variant_b, {}))),
    ):
        for n in dict.fromkeys([*ma, *mb]):
            found.append(
                Difference(n, ma.get(n, Measured(None)), mb.get(n, Measured(None)), expectation)
            )
    return found


def _plot(a: RunFolder, b: RunFolder, pairing: list[tuple[str, str]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(SERIES), len(pairing), figsize=(7 * len(pairing), 2.6 * len(SERIES)), squeeze=False
    )
    fig.suptitle(f"A = {a.path}   vs   B = {b.path}", fontsize=9)
    for column, (va, vb) in enumerate(pairing):
        sa, sb = a.series.get(va, {}), b.series.get(vb, {})
        for row, (key, label) in enumerate(SERIES):
            ax = axes[row][column]
            for series, name, style in ((sa, f"A {va}", "-"), (sb, f"B {vb}", "--")):
                if key in series and "t" in series:
                    middles = [row_midpoint(t) for t in series["t"]]
                    ax.plot(middles, series[key], style, lw=1.0, label=name)
            for events, colour in (
                (a.events.get(va, {}), "tab:red"),
                (b.events.get(vb, {}), "tab:purple"),
            ):
                for start, end in events.values():
                    ax.axvspan(start, end, color=colour, alpha=0.08)
            ax.set_ylabel(label, fontsize=8)
            if row == 0:
                ax.set_title(f"{va} vs {vb}", fontsize=9)
                ax.legend(fontsize=7)
            if row == len(SERIES) - 1:
                ax.set_xlabel("virtual time (s), each second drawn at its middle")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_png(a: RunFolder, b: RunFolder, path: Path) -> Path:
    """The overlaid time series of every pair of variants, as one PNG."""
    return _plot(a, b, pairs(a, b), path)


def compare_html(a: RunFolder, b: RunFolder, path: Path) -> Path:
    """Tables of differences and the overlaid time series, as one self-contained HTML file."""
    import tempfile

    from sim.html_report import Cell, Figure, HtmlDocument

    pairing = pairs(a, b)
    doc = HtmlDocument(f"compare {a.scenario} (A) with {b.scenario} (B)")
    doc.paragraph(f"A: {a.path}{' (replicated)' if a.replicated else ''}")
    doc.paragraph(f"B: {b.path}{' (replicated)' if b.replicated else ''}")
    for line in mismatches(a, b):
        doc.paragraph(f"warning: {line}", note=True)
    if a.replicated or b.replicated:
        doc.paragraph(
            "Replicated runs show each metric's mean and 95 % interval; 'distinct' marks "
            "disjoint intervals (a conservative sign that the difference is not noise).",
            note=True,
        )
    for va, vb in pairing:
        doc.heading(f"{va} (A) vs {vb} (B)")
        doc.table(
            ["metric", "A", "B", "B - A", "change", "intervals"],
            [
                [
                    d.title,
                    Cell(d.a.text(), "num"),
                    Cell(d.b.text(), "num"),
                    d.delta,
                    Cell("—" if d.relative is None else f"{d.relative:+.1%}", "num"),
                    "—" if d.distinct is None else ("distinct" if d.distinct else "overlap"),
                ]
                for d in differences(a, b, va, vb)
            ],
        )
    if not pairing:
        doc.paragraph("no variants to pair: the folders have different variant names")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            png = _plot(a, b, pairing, Path(tmp) / "compare.png")
            doc.figure(Figure.from_file(png, "A solid, B dashed; events shaded"))
    return doc.write(path)
