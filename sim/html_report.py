"""One self-contained HTML file: headings, tables, code and PNG figures embedded as base64.

Nothing is fetched when the file opens (no scripts, fonts or style sheets from the network),
so a report can be mailed or attached to a ticket as one file. :class:`HtmlDocument` is a
small append-only builder; every text passes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Cell", "Figure", "HtmlDocument", "verdict_cell"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.pass { background: #dff3df; color: #185c18; font-weight: bold; }
td.fail { background: #f8dddd; color: #8a1111; font-weight: bold; }
td.undecided { background: #fff1cc; color: #7a5a00; font-weight: bold; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto;
      font-size: 0.85em; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
p.note { color: #444; background: #f4f8ff; border-left: 4px solid #7aa7e0; padding: 0.4em 0.8em; }
"""


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell with a CSS class (``num``, ``pass``, ``fail``, ``undecided``)."""

    text: str
    css: str = ""


@dataclass(frozen=True, slots=True)
class Figure:
    """A PNG image with a caption."""

    title: str
    png: bytes

    @classmethod
    def from_file(cls, path: Path, title: str | None = None) -> Figure:
        return cls(title or path.stem, path.read_bytes())

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def verdict_cell(outcome: str) -> Cell:
    """PASS, FAIL or UNDECIDED, coloured."""
    return Cell(outcome.upper(), outcome.lower())


def _cell(value: str | Cell | float | int | None) -> str:
    if isinstance(value, Cell):
        css = f' class="{value.css}"' if value.css else ""
        return f"<td{css}>{html.escape(value.text)}</td>"
    if value is None:
        return "<td>—</td>"
    if isinstance(value, bool):
        return f"<td>{value}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:,.4g}</td>'
    return f"<td>{html.escape(value)}</td>"


class HtmlDocument:
    """An HTML page built section by section and rendered to one string."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, note: bool = False) -> None:
        css = ' class="note"' if note else ""
        self._parts.append(f"<p{css}>{html.escape(text)}</p>")

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str | Cell | float | int | None]],
    ) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def code(self, text: str, summary: str | None = None) -> None:
        block = f"<pre>{html.escape(text)}</pre>"
        if summary is not None:
            block = f"<details><summary>{html.escape(summary)}</summary>{block}</details>"
        self._parts.append(block)

    def figure(self, figure: Figure) -> None:
        self._parts.append(
            f'<figure><img src="{figure.data_uri}" alt="{html.escape(figure.title)}">'
            f"<figcaption>{html.escape(figure.title)}</figcaption></figure>"
        )

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(self._parts)
            + "\n</body></html>\n"
        )

    def write(self, path: Path) -> Path:
        path.write_text(self.render(), encoding="utf-8")
        return path
