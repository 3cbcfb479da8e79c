"""Small charts drawn on the server as inline SVG: no script, no library, nothing fetched.

The pages' Content-Security-Policy forbids inline scripts and inline styles, so the charts are
plain SVG elements whose colours are presentation attributes (``fill``, ``stroke``), not
``style``; each bar and point carries a ``<title>`` the browser shows on hover. Every text that
reaches the markup (labels, titles, legend) is escaped here, so a caller may pass anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "stacked_bars"]

WIDTH = 640
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 28, 30
_MAX_X_LABELS = 10


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; None is a gap (a day without calls)."""

    name: str
    values: Sequence[float | None]
    colour: str
    """An SVG colour (``#1b7f3b``); never taken from user input."""


def _nice_top(value: float) -> tuple[float, float]:
    """An axis top at or above ``value`` and its gridline step (1, 2 or 5 times a power of
    ten), so the axis reads in round numbers."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return step * math.ceil(value / step), step


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _frame(title: str, labels: Sequence[str], top: float, step: float, unit: str) -> list[str]:
    """The chart's opening tag, title, horizontal gridlines with their values, x labels."""
    plot_h = HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold" '
        f'fill="currentColor">{escape(title)}</text>',
    ]
    ticks = round(top / step)
    for i in range(ticks + 1):
        y = _TOP + plot_h - plot_h * i / ticks
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="currentColor">{escape(_number(step * i))}{escape(unit)}</text>'
        )
    every = max(1, math.ceil(len(labels) / _MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(
                f'<text x="{_x_centre(i, len(labels)):.1f}" y="{HEIGHT - 10}" font-size="11" '
                f'text-anchor="middle" fill="currentColor">{escape(label)}</text>'
            )
    return parts


def _x_centre(index: int, count: int) -> float:
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, count)
    return _LEFT + slot * (index + 0.5)


def _legend(series: Sequence[Series]) -> list[str]:
    parts: list[str] = []
    x = WIDTH - _RIGHT
    for one in reversed(series):
        width = 22 + 7 * len(one.name)
        x -= width
        parts.append(
            f'<rect x="{x}" y="7" width="10" height="10" fill="{escape(one.colour)}"/>'
            f'<text x="{x + 14}" y="16" font-size="11" fill="currentColor">'
            f"{escape(one.name)}</text>"
        )
    return parts


def stacked_bars(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> Markup:
    """One bar per label, the series stacked bottom-up (e.g. successes, then errors)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top, step = _nice_top(max(totals, default=0))
    parts = _frame(title, labels, top, step, unit)
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    bar = max(1.0, slot * 0.7)
    for i, label in enumerate(labels):
        base = 0.0
        for one in series:
            value = one.values[i] or 0
            if value <= 0:
                continue
            y = _TOP + plot_h - plot_h * (base + value) / top
            height = plot_h * value / top
            parts.append(
                f'<rect x="{_x_centre(i, len(labels)) - bar / 2:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}" fill="{escape(one.colour)}">'
                f"<title>{escape(label)}: {escape(_number(value))}{escape(unit)} "
                f"{escape(one.name)}</title></rect>"
            )
            base += value
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))  # every text above went through escape()


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> Markup:
    """One line per series over the labels, broken where a value is None, with a dot and a
    hover title on every point."""
    values = [v for s in series for v in s.values if v is not None]
    top, step = _nice_top(max(values, default=0))
    parts = _frame(title, labels, top, step, unit)
    plot_h = HEIGHT - _TOP - _BOTTOM
    for one in series:
        runs: list[list[tuple[float, float]]] = [[]]
        dots: list[str] = []
        for i, value in enumerate(one.values):
            if value is None:
                runs.append([])
                continue
            x, y = _x_centre(i, len(labels)), _TOP + plot_h - plot_h * value / top
            runs[-1].append((x, y))
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{escape(one.colour)}">'
                f"<title>{escape(labels[i])}: {escape(_number(round(value, 1)))}"
                f"{escape(unit)} {escape(one.name)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{escape(one.colour)}" '
                    f'stroke-width="2"/>'
                )
        parts.extend(dots)
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))  # every text above went through escape()
