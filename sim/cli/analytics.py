"""``ogsim analytics``: an operator's product analytics as tables, CSV and PNG.

Each command asks the operator's admin analytics pages for their JSON (and CSV): from a
running operator with ``--url`` (and ``--admin-secret``, sent as HTTP Basic), or from its
database file with ``--db`` (and ``--config``), in which case the same pages are served in
this process over the file (no port, no background work), so both ways answer alike. The
pages validate the options; one they refuse is printed naming its flag, with exit status 2.

Commands: ``funnel``, ``cohorts``, ``anomalies``, ``segments``, ``revenue``; each prints rich
tables, ``--csv FILE`` writes the page's CSV, ``--json FILE`` its JSON, and ``--png FILE``
draws it with matplotlib (funnel bars, a cohort heat map, revenue bars, alerts per day).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from operators import Operator, create_operator_app
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


@dataclass(frozen=True)
class Source:
    """Where the pages are: a database file (with its config) or a running operator."""

    db: Path | None
    config: Path | None
    url: str | None
    admin_secret: str

    def check(self) -> None:
        if (self.db is None) == (self.url is None):
            errors.print("[red]give either --db PATH (a database file) or --url URL[/red]")
            raise typer.Exit(2)
        if self.db is not None and not self.db.is_file():
            errors.print(f"[red]--db: no database file at {self.db}[/red]")
            raise typer.Exit(2)


def _flag(parameter: str) -> str:
    return {"developer_id": "--developer", "format": "--format"}.get(
        parameter, f"--{parameter.replace('_', '-')}"
    )


def _refused(answer: httpx.Response, where: str) -> None:
    """Exit naming the flag behind a refused parameter (2), or saying why else (1)."""
    try:
        body = answer.json()
    except ValueError:
        body = {"message": answer.text.strip()}
    parameter = body.get("parameter")
    if answer.status_code in (400, 404) and parameter:
        message = str(body.get("message", "")).removeprefix(f"{parameter}: ")
        errors.print(f"[red]{_flag(parameter)}: {message}[/red]")
        raise typer.Exit(2)
    errors.print(f"[red]{where} answered {answer.status_code}: {body.get('message', '')}[/red]")
    raise typer.Exit(1)


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
        errors.print(f"[red]--url: cannot reach {source.url}: {error}[/red]")
        raise typer.Exit(1) from error
    return answers


def _from_db(source: Source, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """The operator's pages served in this process over its database file."""
    assert source.db is not None
    config = load_operator(source.config, errors).model_copy(update={"storage": str(source.db)})
    operator = Operator.from_config(config)
    try:
        app = create_operator_app(operator)

        async def ask() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            answers = []
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://127.0.0.1",
                headers=_basic(config.admin_secret),
            ) as http:
                for fmt in ("json", "csv"):
                    answers.append(await http.get(path, params={**params, "format": fmt}))
                    if answers[-1].status_code != 200:
                        break
            return answers

        return asyncio.run(ask())
    finally:
        operator.close()


def fetch(source: Source, path: str, params: dict[str, str | None]) -> tuple[Report, str]:
    """The page's JSON report and its CSV; exits naming a refused flag."""
    source.check()
    given = {k: v for k, v in params.items() if v is not None}
    fetcher = _from_db if source.db is not None else _from_url
    answers = fetcher(source, f"{BASE}{path}", given)
    for answer in answers:
        if answer.status_code != 200:
            _refused(answer, source.url or str(source.db))
    report: Report = answers[0].json()
    return report, answers[1].text


def _outputs(
    report: Report,
    text: str,
    csv_file: Path | None,
    json_file: Path | None,
    png_file: Path | None,
    draw: Callable[[Report, Path], None] | None,
) -> None:
    if csv_file is not None:
        csv_file.write_text(text, encoding="utf-8")
        console.print(f"CSV in {csv_file}")
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        console.print(f"JSON in {json_file}")
    if png_file is not None:
        if draw is None:
            errors.print(f"[red]--png: the {report['report']} report has no plot[/red]")
            raise typer.Exit(2)
        draw(report, png_file)
        console.print(f"plot in {png_file}")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# -- drawing ---------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _draw_funnel(report: Report, path: Path) -> None:
    pyplot = _pyplot()
    steps = report["steps"]
    figure, axes = pyplot.subplots(figsize=(8, 4))
    names = [s["name"] for s in steps]
    bars = axes.bar(names, [s["entered"] for s in steps], color="tab:green")
    for bar, step in zip(bars, steps, strict=True):
        axes.annotate(
            _share(step["overall"]),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    axes.set_ylabel("developers")
    axes.set_title(f"Funnel: {report['api']}, window {report['windowText']}")
    axes.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _draw_cohorts(report: Report, path: Path) -> None:
    import numpy as np

    pyplot = _pyplot()
    cohorts = report["cohorts"]
    weeks = report["weeks"]
    grid = np.full((max(1, len(cohorts)), weeks), np.nan)
    for i, cohort in enumerate(cohorts):
        for k, share in enumerate(cohort["retention"]):
            if share is not None:
                grid[i, k] = share
    figure, axes = pyplot.subplots(figsize=(1.2 + 0.7 * weeks, 1.5 + 0.45 * len(grid)))
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
                    fontsize=8,
                )
    axes.set_xticks(range(weeks), [f"w{k}" for k in range(weeks)])
    axes.set_yticks(range(len(cohorts)), [f"{c['weekStart']} ({c['size']})" for c in cohorts])
    axes.set_title("Retention by sign-up week")
    figure.colorbar(image, ax=axes, label="share active")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _draw_revenue(report: Report, path: Path) -> None:
    pyplot = _pyplot()
    revenue = report["revenue"]
    figure, axes = pyplot.subplots(1, 3, figsize=(12, 4))
    for ax, (title, key) in zip(
        axes, (("API", "byApi"), ("plan", "byPlan"), ("organisation", "byOrg")), strict=True
    ):
        rows = revenue[key]
        labels = [r.get("name") or r["group"] for r in rows]
        ax.bar(labels, [float(r["amount"]) for r in rows], color="tab:blue")
        currencies = sorted({r["currency"] for r in rows})
        ax.set_title(f"per {title}")
        ax.set_ylabel(", ".join(currencies) or "amount")
        ax.tick_params(axis="x", labelrotation=20)
    figure.suptitle(f"Revenue {revenue['month']} ({revenue['status']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _draw_anomalies(report: Report, path: Path) -> None:
    pyplot = _pyplot()
    days = report["perDay"]
    figure, axes = pyplot.subplots(figsize=(10, 4))
    labels = [d["date"][5:] for d in days]
    bottom = [0] * len(days)
    for kind, count in report["counts"].items():
        if not count:
            continue
        values = [d[kind] for d in days]
        axes.bar(labels, values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("alerts")
    axes.set_title("Alerts per day")
    if any(report["counts"].values()):
        axes.legend()
    axes.tick_params(axis="x", labelrotation=60)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


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
    report, text = fetch(source, "/funnel", {"api": api, "window": window, "steps": steps})
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
    report, text = fetch(source, "/cohorts", {"weeks": None if weeks is None else str(weeks)})
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
    report, text = fetch(source, "/anomalies", params)
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
    report, text = fetch(source, "/segments", {"segment": segment})
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
    report, text = fetch(source, "", {"month": month, "days": None if days is None else str(days)})
    _print_revenue(report)
    _outputs(report, text, csv_file, json_file, png_file, _draw_revenue)


app = typer.Typer()
app.add_typer(analytics_app, name="analytics", rich_help_panel=PANEL)
