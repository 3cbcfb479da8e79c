"""Invoices from the operator's own stores: reproducible bytes, stable numbers, JSON and CSV
shapes, grouping per organisation, drafts for the current month."""

from __future__ import annotations

import csv
import io
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from operators.billing import (
    CSV_COLUMNS,
    CustomerKind,
    InvoiceStatus,
    application_invoices,
    invoice_number,
    invoices_csv,
    invoices_json,
    organisation_invoice,
    organisation_invoices,
)
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database

from .support import DAY, MARCH, FakeClock, event, priced_operator

OWNERS = {"shop-app": "acme", "shop-batch": "acme", "bank-app": "bank"}
AFTER_MARCH = MARCH.end + 5 * DAY


def _operator_month(path: Path) -> tuple[PlanSubscriptions, UsageLedger]:
    """An operator database with a March of subscriptions, changes and calls."""
    config = priced_operator(str(path))
    db = Database(str(path))
    clock = FakeClock(MARCH.start - DAY)
    plans = PlanSubscriptions(config, db, clock=clock)
    ledger = UsageLedger(db)
    plans.subscribe("shop-app", "sim-swap", "enterprise")
    plans.subscribe("bank-app", "kyc-match", "growth")
    rng = random.Random(5)
    for i in range(300):
        client = rng.choice(sorted(OWNERS))
        api = rng.choice(("sim-swap", "kyc-match"))
        ledger.record(event(client, f"c{i:03d}", MARCH.start + rng.uniform(0, MARCH.seconds), api))
    clock.now = MARCH.start + 20 * DAY
    plans.subscribe("shop-app", "sim-swap", "bulk")
    return plans, ledger


def _bytes(path: Path, month_now: float = AFTER_MARCH) -> bytes:
    plans, ledger = _operator_month(path)
    found = application_invoices(
        plans.config, plans, ledger.events(), MARCH, now=month_now
    ) + organisation_invoices(plans.config, plans, ledger.events(), MARCH, OWNERS, now=month_now)
    return invoices_json([invoice.document() for invoice in found])


def test_rerating_the_same_events_and_history_gives_the_same_bytes(tmp_path: Path) -> None:
    first = _bytes(tmp_path / "a.sqlite3")
    assert first == _bytes(tmp_path / "b.sqlite3")
    plans, ledger = _operator_month(tmp_path / "c.sqlite3")
    shuffled = ledger.events()
    random.Random(1).shuffle(shuffled)  # the order events arrive in changes nothing
    reread = PlanSubscriptions(plans.config, Database(plans.db.path))  # another process
    again = application_invoices(plans.config, reread, shuffled, MARCH, now=AFTER_MARCH)
    again += organisation_invoices(plans.config, reread, shuffled, MARCH, OWNERS, now=AFTER_MARCH)
    assert invoices_json([invoice.document() for invoice in again]) == first


def test_the_json_document_adds_up_and_traces_every_call(tmp_path: Path) -> None:
    plans, ledger = _operator_month(tmp_path / "op.sqlite3")
    (acme, bank) = organisation_invoices(
        plans.config, plans, ledger.events(), MARCH, OWNERS, now=AFTER_MARCH
    )
    doc = json.loads(invoices_json(acme.document()))
    assert set(doc) == {
        "invoice_number", "party", "customer", "month", "period", "status", "as_of",
        "currency", "rounding", "applications", "total",
    }  # fmt: skip
    assert (doc["customer"], doc["month"], doc["status"], doc["currency"]) == (
        {"kind": "organisation", "id": "acme"},
        "2025-03",
        "final",
        "EUR",
    )
    assert [a["client_id"] for a in doc["applications"]] == ["shop-app", "shop-batch"]
    total = Decimal(0)
    for application in doc["applications"]:
        subtotal = sum(Decimal(line["amount"]) for api in application["apis"]
                       for line in api["lines"])  # fmt: skip
        assert Decimal(application["subtotal"]) == subtotal
        total += subtotal
        for api in application["apis"]:
            for line in api["lines"]:
                assert len(line["amount"].partition(".")[2]) == 2  # cents, always
    assert Decimal(doc["total"]) == total
    traced = [tuple(e) for i in (acme, bank) for line in i.lines for e in line.events]
    billed = [(e.client_id, e.correlator) for e in ledger.events()]
    assert sorted(traced) == sorted(billed)  # every call once, on its owner's invoice


def test_the_csv_has_a_row_per_line_then_subtotals_and_the_total(tmp_path: Path) -> None:
    plans, ledger = _operator_month(tmp_path / "op.sqlite3")
    found = application_invoices(plans.config, plans, ledger.events(), MARCH, now=AFTER_MARCH)
    text = invoices_csv([invoice.document() for invoice in found])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    for invoice in found:
        mine = [row for row in rows if row["invoice_number"] == invoice.number]
        kinds = [row["kind"] for row in mine]
        assert kinds[-2:] == ["subtotal", "total"]  # one application per invoice here
        assert set(kinds[:-2]) <= {"monthly_fee", "calls"}
        lines = [row for row in mine if row["kind"] in ("monthly_fee", "calls")]
        assert len(lines) == len(invoice.lines)
        assert sum(Decimal(row["amount"]) for row in lines) == Decimal(mine[-1]["amount"])
        assert sum(int(row["events"]) for row in lines) == sum(
            len(line.events) for line in invoice.lines
        )


def test_the_number_is_the_party_customer_and_month(tmp_path: Path) -> None:
    number = invoice_number("telco-es", CustomerKind.ORGANISATION, "acme", MARCH)
    assert number.startswith("TELCO-ES-202503-O-")
    assert number == invoice_number("telco-es", CustomerKind.ORGANISATION, "acme", MARCH)
    others = {
        invoice_number("telco-fr", CustomerKind.ORGANISATION, "acme", MARCH),
        invoice_number("telco-es", CustomerKind.APPLICATION, "acme", MARCH),
        invoice_number("telco-es", CustomerKind.ORGANISATION, "bank", MARCH),
        invoice_number("telco-es", CustomerKind.ORGANISATION, "acme", MARCH.next()),
    }
    assert number not in others and len(others) == 4


def test_the_current_month_is_a_draft_to_date_with_the_final_number(tmp_path: Path) -> None:
    plans, ledger = _operator_month(tmp_path / "op.sqlite3")
    now = MARCH.start + 10 * DAY
    draft = organisation_invoice(
        plans.config, plans, ledger.events(), MARCH, "acme", OWNERS, now=now
    )
    final = organisation_invoice(
        plans.config, plans, ledger.events(), MARCH, "acme", OWNERS, now=AFTER_MARCH
    )
    assert (draft.status, final.status) == (InvoiceStatus.DRAFT, InvoiceStatus.FINAL)
    assert draft.number == final.number and draft.as_of == now
    assert all(line.period_end <= now for line in draft.lines)
    fee = next(line for line in draft.lines if line.kind == "monthly_fee")
    assert fee.quantity == 10 * DAY  # enterprise for ten days so far
    nobody = organisation_invoice(
        plans.config, plans, ledger.events(), MARCH, "nobody", OWNERS, now=now
    )
    assert nobody.applications == () and nobody.total == 0
    with pytest.raises(ValueError, match="not begun"):
        organisation_invoice(plans.config, plans, [], MARCH.next(), "acme", OWNERS, now=now)


def test_the_ledger_reads_one_months_events_for_its_invoice() -> None:
    """An invoice reads its month's events, not the whole ledger, and rates them the same."""
    from operators.gateway.metering import UsageLedger
    from operators.storage import Database

    ledger = UsageLedger(Database())
    for i, at in enumerate((MARCH.start - 1, MARCH.start, MARCH.end - 0.5, MARCH.end)):
        ledger.record(event("app", f"c{i}", at))
    march = ledger.events(since=MARCH.start, until=MARCH.end)
    assert [e.correlator for e in march] == ["c1", "c2"]
    assert [e.correlator for e in ledger.events("app", since=MARCH.end)] == ["c3"]
    assert [e.correlator for e in ledger.events("other", since=MARCH.start)] == []
