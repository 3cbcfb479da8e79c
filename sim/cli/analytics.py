"""``ogsim analytics``: an operator's product analytics as tables, CSV and PNG.

Each command asks the operator's admin analytics pages for their JSON (and CSV): from a
running operator with ``--url`` (and ``--admin-secret``, sent as HTTP Basic), or from its
database file with ``--db`` (and ``--config``). The file is only ever opened read-only: it
is copied with SQLite's backup API (a consistent copy even while the operator writes) into a
temporary directory, and the same pages are served in this process over the copy (no port,
no background work), so both ways answer alike and the operator's file is never written. A
file that is no SQLite database or keeps no analytics records is refused naming ``--db``.
The pages validate the options; one they refuse is printed naming its flag, with exit
status 2, as is an output file that cannot be written.

Commands: ``funnel``, ``cohorts``, ``anomalies``, ``segments``, ``revenue``; each prints rich
tables, ``--csv FILE`` writes the page's CSV, ``--json FILE`` its JSON, and ``--png FILE``
draws it (:mod:`sim.analytics_plots`: funnel bars, a cohort heat map, revenue bars, alerts per
day).
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
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from operators import Operator, create_operator_app
from sim.analytics_plots import (
    Bars,
    RevenuePanel,
    alerts_plot,
    cohort_plot,
    funnel_plot,
    revenue_plot,
)
from sim.cli.options import (
    DEFAULT_ADMIN_SECRET,
    AdminSecretOption,
    OperatorConfigOption,
    load_operator,
)

__all__ = ["app"]

PANEL = "Analytics (funnels, cohorts, anomalies, segments, revenue)"
BASE = "/portal/admin/analytics"

console = Console()
errors = Console(stderr=True)

Report = dict[str, Any]

DbOption = Annotated[
    Path | None, typer.Option(help="the operator's SQLite database file (its storage)")
]
UrlOption = Annotated[
    str | None, typer.Option(help="a running operator's origin instead of --db (its admin pages)")
]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="also write the table as CSV here")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="also write the JSON here")]
PngOption = Annotated[Path | None, typer.Option("--png", help="also draw it into this PNG")]
ANALYTICS_TABLES = ("analytics_activities", "analytics_usage_buckets")
"""Tables an operator database with analytics records has (its activity log and buckets)."""
SIGNING_KEYS = "identity_signing_keys"
"""The identity server's table of private signing keys (sealed at rest)."""


def _fail(message: str, code: int = 2) -> NoReturn:
    errors.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(code)


@dataclass(frozen=True)
class Source:
    """Where the pages are: a database file (with its config) or a running operator."""

    db: Path | None
    config: Path | None
    url: str | None
    admin_secret: str

    def check(self) -> None:
        if (self.db is None) == (self.url is None):
            _fail("give either --db PATH (a database file) or --url URL")
        if self.db is not None and not self.db.is_file():
            _fail(f"--db: no database file at {self.db}")


def _flag(parameter: str) -> str:
    return {"developer_id": "--developer", "format": "--format"}.get(
        parameter, f"--{parameter.replace('_', '-')}"
    )


def _refused(answer: httpx.Response, where: str) -> NoReturn:
    """Exit naming the flag behind a refused parameter (2), or saying why else (1)."""
    try:
        body = answer.json()
    except ValueError:
        body = {"message": answer.text.strip()}
    parameter = body.get("parameter")
    if answer.status_code in (400, 404) and parameter:
        message = str(body.get("message", "")).removeprefix(f"{parameter}: ")
        _fail(f"{_flag(parameter)}: {message}")
    _fail(f"{where} answered {answer.status_code}: {body.get('message', '')}", 1)


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
        _fail(f"--url: cannot reach {source.url}: {error}", 1)
    return answers


def _snapshot(db: Path, copy: Path) -> None:
    """Copy ``db``, opened read-only, into ``copy``; exit naming ``--db`` when it is no SQLite
    database or keeps no analytics records."""
    try:
        source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        _fail(f"--db: cannot open {db} read-only: {error}")
    try:
        rows = source.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        missing = [t for t in ANALYTICS_TABLES if t not in {row[0] for row in rows}]
        if missing:
            _fail(
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
        _fail(f"--db: {db} is not an operator's SQLite database ({error})")
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
    for flag, path in (("--csv", csv_file), ("--json", json_file), ("--png", png_file)):
        if path is None:
            continue
        if path.is_dir():
            _fail(f"{flag}: {path} is a directory; give a file name")
        if not path.parent.is_dir():
            _fail(f"{flag}: no directory {path.parent} to write {path.name} into")


def fetch(
    source: Source,
    path: str,
    params: dict[str, str | None],
    outputs: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> tuple[Report, str]:
    """The page's JSON report and its CSV; exits naming a refused flag (the outputs' too)."""
    source.check()
    check_outputs(*outputs)
    given = {k: v for k, v in params.items() if v is not None}
    fetcher = _from_db if source.db is not None else _from_url
    answers = fetcher(source, f"{BASE}{path}", given)
    for answer in answers:
        if answer.status_code != 200:
            _refused(answer, source.url or str(source.db))
    report: Report = answers[0].json()
    return report, answers[1].text


def _write(flag: str, path: Path, write: Callable[[Path], object], what: str) -> None:
    try:
        write(path)
    except OSError as error:
        _fail(f"{flag}: cannot write {path}: {error.strerror or error}")
    console.print(f"{what} in {path}")


def _outputs(
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
            _fail(f"--png: the {report['report']} report has no plot")
        _write("--png", png_file, lambda p: draw(report, p), "plot")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# -- drawing ---------------------------------------------------------------------------------


def _draw_funnel(report: Report, path: Path) -> None:
    steps = report["steps"]
    funnel_plot(
        path,
        [s["name"] for s in steps],
        [Bars("developers", [s["entered"] for s in steps], "tab:green")],
        notes=[_share(s["overall"]) for s in steps],
        ylabel="developers",
        title=f"Funnel: {report['api']}, window {report['windowText']}",
    )


def _draw_cohorts(report: Report, path: Path) -> None:
    cohorts = report["cohorts"]
    cohort_plot(
        path,
        [f"{c['weekStart']} ({c['size']})" for c in cohorts],
        [c["retention"] for c in cohorts],
        weeks=report["weeks"],
        title="Retention by sign-up week",
    )


def _draw_revenue(report: Report, path: Path) -> None:
    revenue = report["revenue"]
    panels = []
    for title, key in (("API", "byApi"), ("plan", "byPlan"), ("organisation", "byOrg")):
        rows = revenue[key]
        panels.append(
            RevenuePanel(
                f"per {title}",
                [r.get("name") or r["group"] for r in rows],
                [float(r["amount"]) for r in rows],
                ", ".join(sorted({r["currency"] for r in rows})) or "amount",
            )
        )
    revenue_plot(path, panels, title=f"Revenue {revenue['month']} ({revenue['status']})")


def _draw_anomalies(report: Report, path: Path) -> None:
    days = report["perDay"]
    alerts_plot(
        path,
        [d["date"][5:] for d in days],
        {kind: [d[kind] for d in days] for kind in report["counts"]},
        title="Alerts per day",
    )


# -- printing --------------------------------------------------------------------------------


def _who(row: Report) -> str:
    return str(row.get("email") or row.get("developerId") or "-")


def _print_funnel(report: Report) -> None:
    table = Table(title=f"Funnel: {report['api']}, window {report['windowText']}")
    for column in ("step", "developers", "from previous", "from first", "in window", "stuck"):
        table.add_column(column, justify="left" if column in ("step", "stuck") else "right")
    for step in report["steps"]:
        table.add_row(
            step["name"],
            str(step["entered"]),
            _share(step["conversion"]),
            _share(step["overall"]),
            str(step["inProgress"]),
            ", ".join(f"{_who(w)} ({w.get('organisation') or w['orgId']})" for w in step["stuck"]),
        )
    console.print(table)


def _print_cohorts(report: Report) -> None:
    table = Table(title=f"Retention by sign-up week (since {report['since']})")
    table.add_column("week of")
    table.add_column("developers", justify="right")
    for k in range(report["weeks"]):
        table.add_column(f"w{k}", justify="right")
    for cohort in report["cohorts"]:
        table.add_row(cohort["weekStart"], str(cohort["size"]), *map(_share, cohort["retention"]))
    console.print(table)


def _print_anomalies(report: Report) -> None:
    table = Table(title=f"{report['total']} alert(s) over {report['days']} days, newest first")
    for column in (
        "raised",
        "kind",
        "application",
        "API",
        "developer",
        "score",
        "observed",
        "baseline",
        "detail",
    ):
        table.add_column(column)
    for alert in report["alerts"]:
        table.add_row(
            alert["raisedAt"],
            alert["kind"],
            alert["clientId"],
            alert["api"] or "-",
            _who(alert),
            f"{alert['score']:.1f}",
            f"{alert['observed']:g}",
            f"{alert['baseline']:g}",
            alert["detail"],
        )
    console.print(table)


def _print_segments(report: Report) -> None:
    for name, entries in report["segments"].items():
        table = Table(title=f"{name.replace('_', ' ')} ({len(entries)})")
        for column in ("application", "developer", "organisation", "API", "reason"):
            table.add_column(column)
        for entry in entries:
            table.add_row(
                entry["clientId"],
                _who(entry),
                entry.get("organisation") or entry["orgId"],
                entry["api"] or "-",
                entry["reason"],
            )
        console.print(table)


def _print_revenue(report: Report) -> None:
    revenue = report["revenue"]
    totals = ", ".join(f"{a} {c}" for c, a in revenue["totals"].items()) or "nothing billed"
    console.print(f"Revenue {revenue['month']} ({revenue['status']}): {totals}")
    for title, key in (("API", "byApi"), ("plan", "byPlan"), ("organisation", "byOrg")):
        table = Table(title=f"per {title}")
        table.add_column(title)
        table.add_column("amount", justify="right")
        table.add_column("billed calls", justify="right")
        for row in revenue[key]:
            label = row.get("name") or row["group"]
            table.add_row(label, f"{row['amount']} {row['currency']}", f"{row['calls']:,}")
        console.print(table)
    active = Table(title=f"Active applications since {report['from']}")
    for column in ("application", "developer", "organisation", "calls", "errors", "throttled"):
        active.add_column(
            column, justify="right" if column in ("calls", "errors", "throttled") else "left"
        )
    for row in report["activeApplications"]:
        active.add_row(
            row["clientId"],
            _who(row),
            row.get("organisation") or row["orgId"] or "-",
            f"{row['calls']:,}",
            f"{row['errors']:,}",
            f"{row['throttled']:,}",
        )
    console.print(active)


# -- commands --------------------------------------------------------------------------------

analytics_app = typer.Typer(
    help="An operator's product analytics: funnel, cohorts, anomalies, segments, revenue.",
    no_args_is_help=True,
)


@analytics_app.command("funnel")
def funnel(
    api: Annotated[str | None, typer.Option(help="the API of the first-success step")] = None,
    window: Annotated[
        str | None, typer.Option(help="conversion window, e.g. 24h, 90m, 7d (default 24h)")
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            help="milestones in order, comma-separated (default signed_up,"
            "application_created,first_token,first_success)"
        ),
    ] = None,
    db: DbOption = None,
    config: OperatorConfigOption = None,
    url: UrlOption = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    csv_file: CsvOption = None,
    json_file: JsonOption = None,
    png_file: PngOption = None,
) -> None:
    """Developers through ordered milestones within a window; who is stuck at each step."""
    source = Source(db, config, url, admin_secret)
    report, text = fetch(
        source,
        "/funnel",
        {"api": api, "window": window, "steps": steps},
        (csv_file, json_file, png_file),
    )
    _print_funnel(report)
    _outputs(report, text, csv_file, json_file, png_file, _draw_funnel)


@analytics_app.command("cohorts")
def cohorts(
    weeks: Annotated[int | None, typer.Option(help="weeks after sign-up, 1 to 12 (8)")] = None,
    db: DbOption = None,
    config: OperatorConfigOption = None,
    url: UrlOption = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    csv_file: CsvOption = None,
    json_file: JsonOption = None,
    png_file: PngOption = None,
) -> None:
    """Retention by sign-up week: the share active (a successful call) in each week after."""
    source = Source(db, config, url, admin_secret)
    weeks_text = None if weeks is None else str(weeks)
    report, text = fetch(source, "/cohorts", {"weeks": weeks_text}, (csv_file, json_file, png_file))
    _print_cohorts(report)
    _outputs(report, text, csv_file, json_file, png_file, _draw_cohorts)


@analytics_app.command("anomalies")
def anomalies(
    kind: Annotated[
        str | None,
        typer.Option(
            help="volume_spike, error_spike, enumeration, off_hours, new_source or quota_farming"
        ),
    ] = None,
    application: Annotated[str | None, typer.Option(help="one application's client id")] = None,
    days: Annotated[int | None, typer.Option(help="how far back, in days (30)")] = None,
    db: DbOption = None,
    config: OperatorConfigOption = None,
    url: UrlOption = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    csv_file: CsvOption = None,
    json_file: JsonOption = None,
    png_file: PngOption = None,
) -> None:
    """The alerts the operator's monitor raised, newest first."""
    source = Source(db, config, url, admin_secret)
    params = {"kind": kind, "application": application, "days": None if days is None else str(days)}
    report, text = fetch(source, "/anomalies", params, (csv_file, json_file, png_file))
    _print_anomalies(report)
    _outputs(report, text, csv_file, json_file, png_file, _draw_anomalies)


@analytics_app.command("segments")
def segments(
    segment: Annotated[
        str | None,
        typer.Option(help="churn_risk, power_users, upsell or dormant (default: all)"),
    ] = None,
    db: DbOption = None,
    config: OperatorConfigOption = None,
    url: UrlOption = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    csv_file: CsvOption = None,
    json_file: JsonOption = None,
) -> None:
    """Churn risk, power users, upsell candidates and dormant applications, with reasons."""
    source = Source(db, config, url, admin_secret)
    report, text = fetch(source, "/segments", {"segment": segment}, (csv_file, json_file, None))
    _print_segments(report)
    _outputs(report, text, csv_file, json_file, None, None)


@analytics_app.command("revenue")
def revenue(
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM (default: the current month, a draft)")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="days of calls for the active applications (30)")
    ] = None,
    db: DbOption = None,
    config: OperatorConfigOption = None,
    url: UrlOption = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    csv_file: CsvOption = None,
    json_file: JsonOption = None,
    png_file: PngOption = None,
) -> None:
    """Revenue per API, plan and organisation (rated as invoices are) and active applications."""
    source = Source(db, config, url, admin_secret)
    params = {"month": month, "days": None if days is None else str(days)}
    report, text = fetch(source, "", params, (csv_file, json_file, png_file))
    _print_revenue(report)
    _outputs(report, text, csv_file, json_file, png_file, _draw_revenue)


app = typer.Typer()
app.add_typer(analytics_app, name="analytics", rich_help_panel=PANEL)
