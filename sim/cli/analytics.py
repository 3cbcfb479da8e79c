"""``ogsim analytics``: an operator's product analytics as tables, CSV and PNG.

Each command asks the operator's admin analytics pages for their JSON (and CSV), from a
running operator (``--url``) or read-only from its database file (``--db``):
:mod:`sim.cli.analytics_fetch` says how, and names a refused flag (exit 2).

Commands: ``funnel``, ``cohorts``, ``anomalies``, ``segments``, ``revenue``; each prints rich
tables, ``--csv FILE`` writes the page's CSV, ``--json FILE`` its JSON, and ``--png FILE``
draws it (:mod:`sim.analytics_plots`: funnel bars, a cohort heat map, revenue bars, alerts per
day).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sim.analytics_plots import (
    Bars,
    RevenuePanel,
    alerts_plot,
    cohort_plot,
    funnel_plot,
    revenue_plot,
)
from sim.cli.analytics_fetch import Page, Report, Source, console, fetch, write_outputs
from sim.cli.options import DEFAULT_ADMIN_SECRET, AdminSecretOption, OperatorConfigOption

__all__ = ["app"]

PANEL = "Analytics (funnels, cohorts, anomalies, segments, revenue)"

DbOption = Annotated[
    Path | None, typer.Option(help="the operator's SQLite database file (its storage)")
]
UrlOption = Annotated[
    str | None, typer.Option(help="a running operator's origin instead of --db (its admin pages)")
]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="also write the table as CSV here")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="also write the JSON here")]
PngOption = Annotated[Path | None, typer.Option("--png", help="also draw it into this PNG")]

FUNNEL = Page("/funnel", "funnel", ("api", "windowText", "steps"))
COHORTS = Page("/cohorts", "cohorts", ("since", "weeks", "cohorts"))
ANOMALIES = Page("/anomalies", "anomalies", ("total", "days", "counts", "perDay", "alerts"))
SEGMENTS = Page("/segments", "segments", ("segments",))
REVENUE = Page("", "overview", ("from", "revenue", "activeApplications"))
"""The pages the commands read, with the members their tables and plots use."""


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
        FUNNEL,
        {"api": api, "window": window, "steps": steps},
        (csv_file, json_file, png_file),
    )
    _print_funnel(report)
    write_outputs(report, text, csv_file, json_file, png_file, _draw_funnel)


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
    report, text = fetch(source, COHORTS, {"weeks": weeks_text}, (csv_file, json_file, png_file))
    _print_cohorts(report)
    write_outputs(report, text, csv_file, json_file, png_file, _draw_cohorts)


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
    report, text = fetch(source, ANOMALIES, params, (csv_file, json_file, png_file))
    _print_anomalies(report)
    write_outputs(report, text, csv_file, json_file, png_file, _draw_anomalies)


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
    report, text = fetch(source, SEGMENTS, {"segment": segment}, (csv_file, json_file, None))
    _print_segments(report)
    write_outputs(report, text, csv_file, json_file, None, None)


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
    report, text = fetch(source, REVENUE, params, (csv_file, json_file, png_file))
    _print_revenue(report)
    write_outputs(report, text, csv_file, json_file, png_file, _draw_revenue)


app = typer.Typer()
app.add_typer(analytics_app, name="analytics", rich_help_panel=PANEL)
