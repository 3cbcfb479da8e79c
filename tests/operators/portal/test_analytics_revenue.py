"""The analytics overview's revenue of a closed month is its issued invoices: a price changed
after the month-end run moves neither the invoices nor the overview (page and CLI); an open
month is rated as it stands."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import yaml
from typer.testing import CliRunner

from operators.billing import LATE_USAGE, CustomerKind, Month
from operators.config import OperatorConfig, example_operator
from operators.gateway.metering import UsageEvent
from operators.operator import Operator, create_operator_app
from sim.cli import app as cli

MARCH = Month(2025, 3)
ADMIN_SECRET = "admin-s3cret"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_SECRET}".encode()).decode()}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _config(path: Path, price: float) -> OperatorConfig:
    """The example operator over ``path`` with pay-as-you-go at ``price`` a call."""
    base = example_operator(storage=str(path)).model_copy(update={"admin_secret": ADMIN_SECRET})
    plans = tuple(
        plan.model_copy(update={"price_per_call": price}) if plan.name == "pay-as-you-go" else plan
        for plan in base.plans
    )
    return base.model_copy(update={"plans": plans})


async def _looked_at(operator: Operator, month: Month) -> tuple[list[str], dict[str, str]]:
    """The admin's invoice totals and the overview's revenue totals of ``month``."""
    served = httpx.ASGITransport(app=create_operator_app(operator))
    async with httpx.AsyncClient(transport=served, base_url="http://op") as http:
        invoices = await http.get(f"/admin/invoices?month={month}", headers=ADMIN)
        overview = await http.get(
            f"/portal/admin/analytics?month={month}&format=json", headers=ADMIN
        )
    assert invoices.status_code == overview.status_code == 200, overview.text
    totals = [doc["total"] for doc in invoices.json()["invoices"]]
    return totals, overview.json()["revenue"]["totals"]


def test_a_closed_months_revenue_is_its_issued_invoices_after_a_price_change(
    tmp_path: Path,
) -> None:
    path = tmp_path / "telco-es.sqlite3"
    clock = Clock(MARCH.end + LATE_USAGE + 60)
    operator = Operator.from_config(_config(path, 0.01), clock=clock, monotonic=clock)
    for k in range(3):
        operator.gateway.ledger.record(
            UsageEvent("app1", f"c{k}", "sim-swap", "checkSimSwap", "pay-as-you-go", 0.01, "EUR",
                       200, MARCH.start + 100 + k)
        )  # fmt: skip
    assert operator.invoice_run.run() == {str(MARCH): 1}
    assert asyncio.run(_looked_at(operator, MARCH)) == (["0.03"], {"EUR": "0.03"})
    operator.close()

    clock.now += 86_400  # the next day, pay-as-you-go costs five times as much
    repriced = _config(path, 0.05)
    operator = Operator.from_config(repriced, clock=clock, monotonic=clock)
    try:
        assert asyncio.run(_looked_at(operator, MARCH)) == (["0.03"], {"EUR": "0.03"})
    finally:
        operator.close()

    config_file = tmp_path / "operator.yaml"
    config_file.write_text(yaml.safe_dump(repriced.model_dump(mode="json")))
    out = tmp_path / "revenue.json"
    result = CliRunner().invoke(cli, [
        "analytics", "revenue", "--db", str(path), "-c", str(config_file),
        "--month", str(MARCH), "--json", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["revenue"]["totals"] == {"EUR": "0.03"}


async def test_an_open_or_unissued_month_is_rated_as_it_stands_and_not_issued(
    tmp_path: Path,
) -> None:
    path = tmp_path / "telco-es.sqlite3"
    clock = Clock(MARCH.start + 86_400)
    operator = Operator.from_config(_config(path, 0.05), clock=clock, monotonic=clock)
    try:
        operator.gateway.ledger.record(
            UsageEvent("app1", "c0", "sim-swap", "checkSimSwap", "pay-as-you-go", 0.05, "EUR",
                       200, MARCH.start + 100)
        )  # fmt: skip
        assert (await _looked_at(operator, MARCH))[1] == {"EUR": "0.05"}  # a draft
        clock.now = MARCH.end + LATE_USAGE + 60  # closed, and no run has issued it yet
        served = httpx.ASGITransport(app=create_operator_app(operator))
        async with httpx.AsyncClient(transport=served, base_url="http://op") as http:
            overview = await http.get(
                f"/portal/admin/analytics?month={MARCH}&format=json", headers=ADMIN
            )
        assert overview.json()["revenue"]["totals"] == {"EUR": "0.05"}
        assert operator.issued.issued(MARCH, CustomerKind.APPLICATION) == [], "only read"
    finally:
        operator.close()
