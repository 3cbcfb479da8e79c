"""The portal's records stay bounded, and the ledger's subscriber columns reach old files."""

from __future__ import annotations

from pathlib import Path

from operators.gateway import UsageLedger
from operators.gateway.metering import SCHEMA, UnbilledCall, UsageEvent
from operators.housekeeping import ACCESS_LOG_RETENTION
from operators.storage import Database
from tests.operators.gateway.conftest import FakeClock, Harness

from .conftest import Browser


def test_a_ledger_made_before_the_subscriber_columns_gains_them(tmp_path: Path) -> None:
    path = str(tmp_path / "old.sqlite3")
    old = Database(path)
    old.ensure_schema(SCHEMA.replace("    msisdn TEXT,\n    purpose TEXT,\n", ""))
    old.execute("INSERT INTO usage_events (client_id, correlator, api, operation, plan, price,"
                " currency, status, at) VALUES ('app', 'c1', 'sim-swap', 'check', 'free', 0,"
                " 'EUR', 200, 1)")
    old.close()
    ledger = UsageLedger(Database(path))
    assert ledger.events()[0].msisdn is None
    event = UsageEvent("app", "c2", "sim-swap", "check", "free", 0, "EUR", 200, 2.0,
                       msisdn="+34600000001", purpose="dpv:Marketing")
    assert ledger.record(event)
    assert ledger.about("+34600000001") == ([event], [])


async def test_housekeeping_drops_spent_codes_and_old_unbilled_calls(
    harness: Harness, browser: Browser, clock: FakeClock
) -> None:
    operator = harness.operator
    number = harness.number("approves")
    await browser.ask_code(number)
    operator.gateway.ledger.record_unbilled(
        UnbilledCall("fraud-app", number, "sim-swap", "checkSimSwap", None, 403, clock()))
    counts = operator.housekeeping.purge()
    assert (counts.get("portal_codes", 0), counts.get("unbilled_calls", 0)) == (0, 0)
    clock.advance(ACCESS_LOG_RETENTION + 1)
    counts = operator.housekeeping.purge()
    assert (counts["portal_codes"], counts["unbilled_calls"]) == (1, 1)
    assert operator.gateway.ledger.about(number) == ([], [])
