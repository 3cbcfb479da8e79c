"""A closed month's invoice is issued once and kept: a later price change, a plan removed or a
restart does not re-rate it; before the month closes, late usage still counts."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from operators.billing import (
    LATE_USAGE,
    IssuedInvoices,
    Month,
    application_invoices,
    build_invoice_admin_router,
    invoices_json,
    organisation_invoice,
    organisation_invoices,
)
from operators.config import OperatorConfig
from operators.gateway import install_camara_error_handlers
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database
from sim.cli import app

from .support import DAY, MARCH, FakeClock, event, priced_operator

CLOSED = MARCH.end + LATE_USAGE
"""The first moment March's invoices are issued when drawn."""


def _repriced(config: OperatorConfig) -> OperatorConfig:
    """The same operator after its ``growth`` plan's monthly fee doubled (31 -> 62)."""
    plans = tuple(
        plan.model_copy(update={"monthly_fee": 62.0}) if plan.name == "growth" else plan
        for plan in config.plans
    )
    return config.model_copy(update={"plans": plans})


def _march(db: Database, config: OperatorConfig, calls: int = 8) -> UsageLedger:
    """``app`` on ``growth`` from March's first second, one call a day."""
    clock = FakeClock(MARCH.start)
    PlanSubscriptions(config, db, clock=clock).subscribe("app", "sim-swap", "growth")
    ledger = UsageLedger(db)
    for i in range(calls):
        ledger.record(event("app", f"c{i}", MARCH.start + i * DAY))
    return ledger


def _total(config: OperatorConfig, db: Database, now: float,
           issued: IssuedInvoices | None) -> str:
    (invoice,) = application_invoices(
        config, PlanSubscriptions(config, db), UsageLedger(db).events(), MARCH, now=now,
        issued=issued,
    )
    return str(invoice.document()["total"])


def test_a_closed_months_invoice_is_not_re_rated_after_a_price_change() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    issued = IssuedInvoices(db)
    # 31.00 fee + 5 x 0.10 + 1.00 + 3 x 0.05
    assert _total(config, db, CLOSED, issued) == "32.65"
    repriced = _repriced(config)
    assert _total(repriced, db, CLOSED + DAY, None) == "63.65", "rating alone follows the config"
    assert _total(repriced, db, CLOSED + DAY, issued) == "32.65", "the issued invoice stands"


def test_a_plan_removed_from_the_config_leaves_the_issued_invoice_whole() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    issued = IssuedInvoices(db)
    (first,) = application_invoices(
        config, PlanSubscriptions(config, db), UsageLedger(db).events(), MARCH, now=CLOSED,
        issued=issued,
    )
    without = config.model_copy(
        update={"plans": tuple(p for p in config.plans if p.name != "growth")}
    )
    (again,) = application_invoices(
        without, PlanSubscriptions(without, db), UsageLedger(db).events(), MARCH,
        now=CLOSED + 40 * DAY, issued=issued,
    )
    assert again == first
    assert invoices_json(again.document()) == invoices_json(first.document())


def test_usage_committed_late_counts_until_the_month_closes_and_not_after() -> None:
    config, db = priced_operator(), Database()
    ledger = _march(db, config, calls=1)
    issued = IssuedInvoices(db)
    just_ended = MARCH.end + 60
    assert _total(config, db, just_ended, issued) == "32.10"  # fee + the first band's flat 1.00
    ledger.record(event("app", "late", MARCH.end - 0.5))  # admitted before midnight
    assert _total(config, db, just_ended + 60, issued) == "32.20"
    assert _total(config, db, CLOSED, issued) == "32.20"  # issued now
    ledger.record(event("app", "later-still", MARCH.end - 0.25))
    assert _total(config, db, CLOSED + 60, issued) == "32.20"


def test_the_issued_invoices_survive_a_restart_exactly(tmp_path: Path) -> None:
    path = str(tmp_path / "telco-es.sqlite3")
    config = priced_operator(path)
    db = Database(path)
    _march(db, config)
    drawn = application_invoices(
        config, PlanSubscriptions(config, db), UsageLedger(db).events(), MARCH, now=CLOSED,
        issued=IssuedInvoices(db),
    )
    db.close()
    reopened = Database(path)
    kept = IssuedInvoices(reopened).keep([], MARCH, drawn[0].customer_kind, CLOSED + DAY)
    assert kept == drawn  # every field, money to the last digit, event ids included
    assert sum(len(line.events) for line in kept[0].lines) == 8
    reopened.close()


def test_an_organisations_invoice_is_issued_even_with_nothing_owed() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    issued = IssuedInvoices(db)
    plans, events = PlanSubscriptions(config, db), UsageLedger(db).events()
    owners = {"app": "acme", "idle": "quiet"}
    nothing = organisation_invoice(
        config, plans, events, MARCH, "quiet", owners, now=CLOSED, issued=issued
    )
    acme = organisation_invoice(
        config, plans, events, MARCH, "acme", owners, now=CLOSED, issued=issued
    )
    assert (str(nothing.total), str(acme.total)) == ("0", "32.65")
    both = organisation_invoices(config, plans, events, MARCH, owners, now=CLOSED, issued=issued)
    assert [invoice.customer for invoice in both] == ["acme", "quiet"]
    only = organisation_invoices(
        config, plans, events, MARCH, {"app": "acme"}, now=CLOSED, issued=issued
    )
    assert [invoice.customer for invoice in only] == ["acme"], "only the organisations asked"


def test_a_draft_is_never_issued() -> None:
    config, db = priced_operator(), Database()
    _march(db, config)
    issued = IssuedInvoices(db)
    assert _total(config, db, MARCH.start + 20 * DAY, issued) != "32.65"
    assert db.all("SELECT number FROM billing_issued_invoices") == []
    assert not issued.closed(Month.of(MARCH.start + 20 * DAY), MARCH.end + LATE_USAGE - 1)


async def test_the_admin_api_gives_the_issued_invoice_after_a_price_change() -> None:
    config, db = priced_operator(), Database()
    ledger = _march(db, config)
    issued = IssuedInvoices(db)
    clock = FakeClock(CLOSED)

    def served(operator: OperatorConfig) -> httpx.AsyncClient:
        api = FastAPI()
        install_camara_error_handlers(api)
        api.include_router(build_invoice_admin_router(
            operator, PlanSubscriptions(operator, db), ledger, clock, issued=issued
        ))  # fmt: skip
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://op")

    admin = {"authorization": "Bearer admin-secret"}
    before = await served(config).get("/admin/invoices?month=2025-03", headers=admin)
    clock.now = CLOSED + 10 * DAY
    after = await served(_repriced(config)).get("/admin/invoices?month=2025-03", headers=admin)
    assert before.status_code == after.status_code == 200
    assert after.content == before.content
    assert [doc["total"] for doc in after.json()["invoices"]] == ["32.65"]


def test_the_cli_reads_what_the_operator_issued(tmp_path: Path) -> None:
    """``ogsim invoices --db`` gives the invoice the operator issued, not a re-rating under
    the config file it is handed."""
    path = tmp_path / "telco-es.sqlite3"
    config = priced_operator(str(path))
    db = Database(str(path))
    _march(db, config)
    assert _total(config, db, CLOSED, IssuedInvoices(db)) == "32.65"
    db.close()
    config_path = tmp_path / "operator.yaml"
    config_path.write_text(yaml.safe_dump(_repriced(config).model_dump(mode="json")))
    result = CliRunner().invoke(
        app,
        ["invoices", "--db", str(path), "-c", str(config_path), "--month", "2025-03",
         "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [doc["total"] for doc in json.loads(result.output)["invoices"]] == ["32.65"]
