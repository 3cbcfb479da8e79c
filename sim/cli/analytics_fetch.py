"""Where ``ogsim analytics`` reads an operator's analytics pages, and where it writes them.

From a running operator (``--url``, the admin credential as HTTP Basic) or from its database
file (``--db``). The file is only ever opened read-only: it is copied with SQLite's backup API
(a consistent copy even while the operator writes) into a temporary directory, without the
identity server's sealed signing keys (the pages never sign, so no key-encryption key is
needed), and the same pages are served in this process over the copy (no port, no background
work): both ways answer alike and the operator's file is never written. A file that is no
SQLite database or keeps no analytics records is refused naming ``--db``; a parameter the
pages refuse is named by its flag, as is an output that cannot be written, with exit 2.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

from operators import Operator, create_operator_app
from sim.cli.options import load_operator

__all__ = ["BASE", "Page", "Report", "Source", "fail", "fetch", "image_problem", "write_outputs"]

BASE = "/portal/admin/analytics"

console = Console()
errors = Console(stderr=True)

Report = dict[str, Any]

ANALYTICS_TABLES = ("analytics_activities", "analytics_usage_buckets")
"""Tables an operator database with analytics records has (its activity log and buckets)."""
SIGNING_KEYS = "identity_signing_keys"
"""The identity server's table of private signing keys (sealed at rest)."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as it is (a path or a server's words may hold rich markup) and exit:
    2 for what the user gave, 1 for what went wrong elsewhere. Not wrapped, so a path in it
    can be copied whole."""
    errors.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@dataclass(frozen=True)
class Page:
    """One analytics page: its path under :data:`BASE`, the ``report`` its JSON names and the
    members a command reads, so an answer without them is refused before it is printed."""

    path: str
    report: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where the pages are: a database file (with its config) or a running operator."""

    db: Path | None
    config: Path | None
    url: str | None
    admin_secret: str

    def check(self) -> None:
        if (self.db is None) == (self.url is None):
            fail("give either --db PATH (a database file) or --url URL")
        if self.db is not None and not self.db.is_file():
            fail(f"--db: no database file at {self.db}")


def _flag(parameter: str) -> str:
    return {"developer_id": "--developer", "format": "--format"}.get(
        parameter, f"--{parameter.replace('_', '-')}"
    )


def _refused(answer: httpx.Response, where: str) -> NoReturn:
    """Exit naming the flag behind a refused parameter (2), or saying why else (1)."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):  # not the pages' error body: say what was answered
        body = {"message": answer.text.strip()[:200]}
    parameter = body.get("parameter")
    if answer.status_code in (400, 404) and parameter:
        message = str(body.get("message", "")).removeprefix(f"{parameter}: ")
        fail(f"{_flag(parameter)}: {message}")
    fail(f"{where} answered {answer.status_code}: {body.get('message', '')}", 1)


def _basic(secret: str) -> dict[str, str]:
    token = base64.b64encode(f"admin:{secret}".encode()).decode()
    return {"authorization": f"Basic {token}", "accept": "application/json"}


def _from_url(source: Source, path: str, params: dict[str, str]) -> list[httpx.Response]:
    assert source.url is not None
    base = source.url.rstrip("/")
    answers = []
    try:
        with httpx.Client(base_url=base, headers=_basic(source.admin_secret), timeout=60) as http:
            for fmt in ("json", "csv"):
                answers.append(http.get(path, params={**params, "format": fmt}))
                if answers[-1].status_code != 200:
                    break
    except httpx.HTTPError as error:
        fail(f"--url: cannot reach {source.url}: {error}", 1)
    return answers


def _snapshot(db: Path, copy: Path) -> None:
    """Copy ``db``, opened read-only, into ``copy``; exit naming ``--db`` when it is no SQLite
    database or keeps no analytics records."""
    try:
        source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        fail(f"--db: cannot open {db} read-only: {error}")
    try:
        rows = source.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        missing = [t for t in ANALYTICS_TABLES if t not in {row[0] for row in rows}]
        if missing:
            fail(
                f"--db: {db} keeps no analytics records (no {', '.join(missing)} table);"
                " give an operator's database file"
            )
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
            _forget_signing_keys(target)
        finally:
            target.close()
    except sqlite3.Error as error:
        fail(f"--db: {db} is not an operator's SQLite database ({error})")
    finally:
        source.close()


def _forget_signing_keys(copy: sqlite3.Connection) -> None:
    """Drop the identity server's private signing keys from the copy: the pages never sign,
    the copy need not hold them, and the operator built over it then makes its own instead of
    opening the file's (which would need the operator's key-encryption key)."""
    found = copy.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SIGNING_KEYS,)
    ).fetchone()
    if found is not None:
        copy.execute(f"DELETE FROM {SIGNING_KEYS}")
        copy.commit()


def _from_db(source: Source, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """The operator's pages served in this process over a read-only copy of its database."""
    assert source.db is not None
    with tempfile.TemporaryDirectory(prefix="ogsim-analytics-") as folder:
        copy = Path(folder) / "operator.sqlite3"
        _snapshot(source.db, copy)
        config = load_operator(source.config, errors).model_copy(update={"storage": str(copy)})
        operator = Operator.from_config(config)
        try:
            return asyncio.run(
                _ask(create_operator_app(operator), config.admin_secret, path, params)
            )
        finally:
            operator.close()


async def _ask(app: Any, secret: str, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """The page's JSON, then (when that was answered) its CSV, from an app in this process."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=_basic(secret)
    ) as http:
        for fmt in ("json", "csv"):
            answers.append(await http.get(path, params={**params, "format": fmt}))
            if answers[-1].status_code != 200:
                break
    return answers


def check_outputs(csv_file: Path | None, json_file: Path | None, png_file: Path | None) -> None:
    """Exit naming the flag of an output file that cannot be written where it is asked for
    (before anything is read)."""
    seen: dict[Path, str] = {}
    for flag, path in (("--csv", csv_file), ("--json", json_file), ("--png", png_file)):
        if path is None:
            continue
        if path.resolve() in seen:  # the second write replaced the first without a word
            fail(f"{flag}: {path} is also {seen[path.resolve()]}'s file; give each its own")
        seen[path.resolve()] = flag
        if path.is_dir():
            fail(f"{flag}: {path} is a directory; give a file name")
        if not path.parent.is_dir():
            fail(f"{flag}: no directory {path.parent} to write {path.name} into")
    if png_file is not None:
        problem = image_problem(png_file)
        if problem is not None:
            fail(f"--png: {problem}")


UNDRAWABLE = frozenset({"pgf"})
"""Formats matplotlib lists but cannot write without other programs (pgf needs LaTeX)."""


def image_problem(path: Path) -> str | None:
    """Why matplotlib cannot draw into ``path``, judged by its extension, or None (none:
    matplotlib draws a PNG); its own ValueError came only after the page was read."""
    suffix = path.suffix.lower().removeprefix(".")
    if not suffix:
        return None
    from matplotlib.backend_bases import FigureCanvasBase  # only when --png is given

    drawable = sorted(set(FigureCanvasBase.get_supported_filetypes()) - UNDRAWABLE)
    if suffix in drawable:
        return None
    return f"{path.name}: cannot draw a .{suffix} file; give .png (or {', '.join(drawable)})"


def fetch(
    source: Source,
    page: Page,
    params: dict[str, str | None],
    outputs: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> tuple[Report, str]:
    """The page's JSON report and its CSV; exits naming a refused flag (the outputs' too), or
    saying the URL is not an operator's when its answer is not the page's."""
    source.check()
    check_outputs(*outputs)
    given = {k: v for k, v in params.items() if v is not None}
    fetcher = _from_db if source.db is not None else _from_url
    answers = fetcher(source, f"{BASE}{page.path}", given)
    where = source.url or str(source.db)
    for answer in answers:
        if answer.status_code != 200:
            _refused(answer, where)
    return _report(answers[0], page, where), answers[1].text


def _report(answer: httpx.Response, page: Page, where: str) -> Report:
    """The JSON of ``page`` in ``answer``; exit 1 when it is not (a server that answered 200
    with other text or JSON ended in a JSONDecodeError or a KeyError)."""
    try:
        report = answer.json()
    except ValueError:
        report = None
    problem = _report_problem(report, page)
    if problem is not None:
        fail(f"{where} did not answer as an ogsim operator's admin API ({problem})", 1)
    return dict(report)


def _report_problem(report: Any, page: Page) -> str | None:
    """What keeps ``report`` from being ``page``'s JSON, or None."""
    if not isinstance(report, dict) or report.get("report") != page.report:
        return f"no {page.report} report"
    missing = [member for member in page.members if member not in report]
    return f"its {page.report} report has no {', '.join(missing)}" if missing else None


def _write(flag: str, path: Path, write: Callable[[Path], object], what: str) -> None:
    try:
        write(path)
    except OSError as error:
        fail(f"{flag}: cannot write {path}: {error.strerror or error}")
    console.print(f"{what} in {path}")


def write_outputs(
    report: Report,
    text: str,
    csv_file: Path | None,
    json_file: Path | None,
    png_file: Path | None,
    draw: Callable[[Report, Path], None] | None,
) -> None:
    if csv_file is not None:
        _write("--csv", csv_file, lambda p: p.write_text(text, encoding="utf-8"), "CSV")
    if json_file is not None:
        body = json.dumps(report, indent=2, sort_keys=True) + "\n"
        _write("--json", json_file, lambda p: p.write_text(body, encoding="utf-8"), "JSON")
    if png_file is not None:
        if draw is None:
            fail(f"--png: the {report['report']} report has no plot")
        _write("--png", png_file, lambda p: draw(report, p), "plot")
