"""The analytics pages' one chart :mod:`operators.portal.charts` lacks: a shaded table.

A retention table reads best as a grid whose cells darken with the share they hold. The
pages' Content-Security-Policy forbids inline styles, so the shading cannot be a ``style`` on
HTML cells: the grid is inline SVG, each cell a ``<rect>`` with a ``fill`` attribute, its
figure written inside and a ``<title>`` the browser shows on hover. Every text is escaped
here, as in :mod:`operators.portal.charts`.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["heat_table", "shade"]

_CELL_W = 62
_CELL_H = 26
_LABEL_W = 150
_TOP = 46
_LOW = (0xF1, 0xF8, 0xE9)
_HIGH = (0x1B, 0x5E, 0x20)


def shade(share: float) -> str:
    """A green from pale (0) to dark (1), as ``#rrggbb``; shares outside [0, 1] are clipped."""
    t = min(1.0, max(0.0, share))
    red, green, blue = (round(lo + (hi - lo) * t) for lo, hi in zip(_LOW, _HIGH, strict=True))
    return f"#{red:02x}{green:02x}{blue:02x}"


def heat_table(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    shares: Sequence[Sequence[float | None]],
    texts: Sequence[Sequence[str]],
) -> Markup:
    """One row per label in ``rows``, one column per label in ``columns``; a cell is shaded
    by its share (None: no figure yet, left blank) and shows its text."""
    width = _LABEL_W + _CELL_W * max(1, len(columns)) + 8
    height = _TOP + _CELL_H * max(1, len(rows)) + 8
    parts = [
        f'<svg class="chart heat-table" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="16" font-size="13" font-weight="bold" fill="currentColor">'
        f"{escape(title)}</text>",
    ]
    for j, column in enumerate(columns):
        x = _LABEL_W + _CELL_W * (j + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP - 8}" font-size="11" text-anchor="middle" '
            f'fill="currentColor">{escape(column)}</text>'
        )
    for i, row in enumerate(rows):
        y = _TOP + _CELL_H * i
        parts.append(
            f'<text x="4" y="{y + _CELL_H / 2 + 4:.1f}" font-size="11" fill="currentColor">'
            f"{escape(row)}</text>"
        )
        for j, column in enumerate(columns):
            share = shares[i][j] if j < len(shares[i]) else None
            text = texts[i][j] if j < len(texts[i]) else ""
            x = _LABEL_W + _CELL_W * j
            fill = "#ffffff" if share is None else shade(share)
            ink = "#ffffff" if share is not None and share > 0.55 else "#222222"
            parts.append(
                f'<g class="heat-cell"><rect x="{x}" y="{y}" width="{_CELL_W - 2}" '
                f'height="{_CELL_H - 2}" fill="{fill}" stroke="#d0d0d0" stroke-width="1">'
                f"<title>{escape(row)}, {escape(column)}: {escape(text or 'not yet')}</title>"
                f'</rect><text x="{x + (_CELL_W - 2) / 2:.1f}" y="{y + _CELL_H / 2 + 3:.1f}" '
                f'font-size="11" text-anchor="middle" fill="{ink}">{escape(text)}</text></g>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # every text above went through escape()
