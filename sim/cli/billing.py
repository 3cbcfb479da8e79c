"""The billing command: ``ogsim invoices``, a month's invoices of one operator.

From the operator's database file (``--db``, what its config's ``storage`` names; the config
``--config`` gives the plans and prices) or from a running operator's admin API (``--url``
with ``--admin-secret``: ``GET /admin/invoices?month=YYYY-MM``). The current month is a
draft (month to date); ``--format`` json (the admin API's bytes), csv or a table.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from operators import Database
from operators.billing import (
    IssuedInvoices,
    Month,
    MonthError,
    application_invoices,
    invoices_csv,
    invoices_json,
)
from operators.gateway import PlanSubscriptions, UsageLedger
from operators.portal import application_terms
from sim.cli.options import (
    DEFAULT_ADMIN_SECRET,
    AdminSecretOption,
    OperatorConfigOption,
    load_operator,
    refuse_unwritable,
    require_operator_database,
)

__all__ = ["app", "invoices"]

PANEL = "Billing (metering, rating, invoices)"

console = Console()
errors = Console(stderr=True)


class InvoiceFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    TABLE = "table"


def _month(text: str | None) -> str | None:
    """``--month``'s check: YYYY-MM or a message naming the flag."""
    if text is not None:
        try:
            Month.parse(text)
        except MonthError as error:
            raise typer.BadParameter(str(error), param_hint="'--month'") from error
    return text


def _from_database(db: Path, config: Path | None, month: Month | None) -> dict[str, Any]:
    if not db.is_file():
        errors.print(f"[red]--db: no database file at {db}[/red]")
        raise typer.Exit(2)
    require_operator_database(db, ("usage_events", "plan_subscriptions"), errors)
    operator = load_operator(config, errors)
    database = Database.snapshot_of(str(db))  # a live operator's file is only read
    try:
        now = time.time()
        month = month or Month.of(now)
        if month.start > now:
            errors.print(f"[red]--month: {month} has not begun[/red]")
            raise typer.Exit(2)
        plans = PlanSubscriptions(operator, database)
        events = UsageLedger(database).events(since=month.start, until=month.end)
        found = application_invoices(
            operator, plans, events, month, now=now, terms=application_terms(database),
            issued=IssuedInvoices(database),  # the copy's: what the operator issued is read
        )
    finally:
        database.close()
    return {
        "party": operator.id,
        "month": str(month),
        "status": "final" if now >= month.end else "draft",
        "invoices": [invoice.document() for invoice in found],
    }


def _from_admin_api(url: str, secret: str, month: Month | None) -> dict[str, Any]:
    params = {} if month is None else {"month": str(month)}
    try:
        answer = httpx.get(
            f"{url.rstrip('/')}/admin/invoices",
            params=params,
            headers={"authorization": f"Bearer {secret}"},
            timeout=30.0,
        )
    except httpx.HTTPError as error:
        errors.print(f"[red]--url: cannot reach {url}: {error}[/red]")
        raise typer.Exit(1) from error
    if answer.status_code != 200:
        try:
            message = answer.json().get("message", answer.text)
        except ValueError:
            message = answer.text
        errors.print(f"[red]{url} answered {answer.status_code}: {message}[/red]")
        raise typer.Exit(1)
    try:
        payload = answer.json()
    except ValueError:
        payload = None
    problem = _invoices_problem(payload)
    if problem is not None:
        errors.print(f"{url} did not answer as an ogsim operator's admin API ({problem})",
                     style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    return dict(payload)


INVOICE_KEYS = ("invoice_number", "customer", "month", "status", "currency", "applications")
"""What the table and the CSV read of each invoice document."""


def _invoices_problem(payload: Any) -> str | None:
    """What keeps ``payload`` from being ``GET /admin/invoices``'s answer, or None: checked
    before it is printed or written (other JSON ended in a KeyError, other text in a
    JSONDecodeError)."""
    if not isinstance(payload, dict):
        return "no JSON object"
    missing = [key for key in ("month", "status", "invoices") if key not in payload]
    if missing:
        return f"no {', '.join(missing)}"
    invoices = payload["invoices"]
    if not isinstance(invoices, list) or not all(
        isinstance(doc, dict) and all(key in doc for key in INVOICE_KEYS) for doc in invoices
    ):
        return "invoices is not a list of invoice documents"
    return None


def _print_tables(payload: dict[str, Any]) -> None:
    if not payload["invoices"]:
        console.print(f"no invoice for {payload['month']} ({payload['status']})")
    for doc in payload["invoices"]:
        currency = doc["currency"]
        table = Table(
            title=f"{doc['invoice_number']}: {doc['customer']['kind']} {doc['customer']['id']},"
            f" {doc['month']} ({doc['status']}, as of {doc['as_of']})"
        )
        for column in ("application", "API", "line"):
            table.add_column(column)
        for column in ("quantity", "unit price", "flat fee", f"amount ({currency})"):
            table.add_column(column, justify="right")
        for application in doc["applications"]:
            for api in application["apis"]:
                for line in api["lines"]:
                    table.add_row(
                        application["client_id"],
                        api["api"],
                        line["description"],
                        f"{line['quantity']:,}",
                        line["unit_price"],
                        line["flat_fee"],
                        line["amount"],
                    )
            table.add_row(
                application["client_id"], "", "subtotal", "", "", "", application["subtotal"]
            )
        table.add_row("", "", "[bold]total[/bold]", "", "", "", f"[bold]{doc['total']}[/bold]")
        console.print(table)


def invoices(
    month: Annotated[
        str | None,
        typer.Option(callback=_month, help="YYYY-MM (default: the current month, a draft to date)"),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="the operator's SQLite database file (its storage)")
    ] = None,
    config: OperatorConfigOption = None,
    url: Annotated[
        str | None,
        typer.Option(help="a running operator's origin instead of --db (its admin API)"),
    ] = None,
    admin_secret: AdminSecretOption = DEFAULT_ADMIN_SECRET,
    output: Annotated[
        InvoiceFormat, typer.Option("--format", help="json, csv or table")
    ] = InvoiceFormat.TABLE,
    out: Annotated[Path | None, typer.Option(help="write to this file instead of stdout")] = None,
) -> None:
    """A month's invoices per application: line items per API and tier, totals, currency."""
    wanted = None if month is None else Month.parse(month)
    if out is not None:
        refuse_unwritable(out, "--out", errors, folder=False)
    if (db is None) == (url is None):
        errors.print(
            "[red]give either --db PATH (a database file) or --url URL (the admin API)[/red]"
        )
        raise typer.Exit(2)
    if db is not None:
        payload = _from_database(db, config, wanted)
    else:
        assert url is not None
        payload = _from_admin_api(url, admin_secret, wanted)
    if output is InvoiceFormat.TABLE:
        if out is not None:
            errors.print("[red]--format table prints; give --format json or csv with --out[/red]")
            raise typer.Exit(2)
        _print_tables(payload)
        return
    if output is InvoiceFormat.CSV:
        data = invoices_csv(payload["invoices"]).encode()
    else:
        data = invoices_json(payload)
    if out is None:
        typer.echo(data.decode(), nl=False)
    else:
        _write(out, data)
        console.print(f"{len(payload['invoices'])} invoice(s) for {payload['month']} in {out}")


def _write(out: Path, data: bytes) -> None:
    """Write ``--out``; exit 2 naming it when the file cannot be made after all (permission
    bits, all that was checked first, pass root in /proc or on a read-only mount)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as error:
        errors.print(f"--out: cannot write {out} ({error.strerror or error})", style="red",
                     markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error


app = typer.Typer()
app.command("invoices", rich_help_panel=PANEL)(invoices)
