"""An application on the operator's default plan holds it from its creation, for each API it
was created for: a default plan's monthly fee is billed in a month without calls, prorated
from the creation, on the portal's invoice, the admin API, the CLI and the analytics
overview alike (README: fees run from an application's creation until it is stopped)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from operators.billing import Month, rate_month, round_line
from operators.config import Plan, TokenLifetimes, example_operator
from operators.gateway.subscriptions import InMemoryPlans
from operators.operator import Operator, create_operator_app
from operators.portal import application_terms
from operators.portal.invoices_page import build_invoice_pages
from tests.operators.portal.conftest import ADMIN_SECRET, FRAUD, FakeClock, Portal

from .support import MARCH

FEE = 30.0
TWO_APIS = ("sim-swap", "device-reachability-status")


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    """The example operator whose default plan, ``basic``, costs 30.00 a month per API."""
    clock = FakeClock()
    base = example_operator()
    basic = Plan(name="basic", rate_per_second=5, burst=5, monthly_fee=FEE)
    config = base.model_copy(update={
        "plans": (basic, *base.plans), "default_plan": "basic",
        "lifetimes": TokenLifetimes(ciba_interval=0), "admin_secret": ADMIN_SECRET,
    })  # fmt: skip
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    served = Portal(operator, app, clock)
    parts = served.parts
    app.include_router(build_invoice_pages(parts.host, parts.accounts, parts.guard))
    yield served
    for http in served.opened:
        await http.aclose()


def test_rating_bills_the_plan_held_from_creation_without_calls() -> None:
    base = example_operator()
    basic = Plan(name="basic", rate_per_second=5, burst=5, monthly_fee=FEE)
    plans = InMemoryPlans((basic, *base.plans), "basic")
    created = MARCH.start + 10 * 86_400.5
    lines = rate_month(
        [], plans.history, MARCH, since={"quiet": created}, apis={"quiet": ("sim-swap",)}
    )
    (fee,) = lines
    assert (fee.client_id, fee.api, fee.plan) == ("quiet", "sim-swap", "basic")
    assert fee.quantity == MARCH.end - math.floor(created)
    assert fee.amount == round_line(Decimal("30") * fee.quantity / MARCH.seconds, "EUR")
    assert rate_month([], plans.history, MARCH, since={"quiet": created}) == [], (
        "an application nobody says exists owes nothing"
    )


async def test_a_default_plans_fee_is_billed_in_a_month_without_calls(portal: Portal) -> None:
    browser = portal.browser()
    assert (await browser.sign_up("ada@acme.example", organisation="Acme")).status_code == 303
    developer = portal.parts.accounts.by_email("ada@acme.example")
    assert developer is not None
    application, _ = portal.parts.accounts.create_application(
        developer, "Quiet app", list(TWO_APIS), [FRAUD], None
    )
    client_id, created = application.client_id, application.created_at
    month = Month.of(created)
    prorated = round_line(
        Decimal("30") * int(month.end - math.floor(created)) / month.seconds, "EUR"
    )
    portal.clock.now = month.next().end + 7200  # both months closed; not one call made
    assert (await browser.sign_in("ada@acme.example")).status_code == 303
    http = portal.http()
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    for asked, each in ((month, prorated), (month.next(), Decimal("30.00"))):
        page = json.loads((await browser.get(f"/portal/invoices/{asked}.json")).content)
        assert page["total"] == str(2 * each), asked
        (charges,) = page["applications"]
        fees = [(api["api"], line["kind"], line["plan"], line["amount"])
                for api in charges["apis"] for line in api["lines"]]  # fmt: skip
        assert fees == [(api, "monthly_fee", "basic", str(each)) for api in sorted(TWO_APIS)]
        answer = await http.get("/admin/invoices", params={"month": str(asked)}, headers=admin)
        assert [doc["total"] for doc in answer.json()["invoices"]] == [str(2 * each)], asked
        basic = {"Authorization": "Basic " + base64.b64encode(
            f"admin:{ADMIN_SECRET}".encode()).decode()}  # fmt: skip
        overview = await http.get(
            "/portal/admin/analytics", params={"month": str(asked), "format": "json"},
            headers=basic,
        )
        assert overview.json()["revenue"]["totals"] == {"EUR": str(2 * each)}, asked
    # what ``ogsim invoices --db`` reads from the file: the same APIs, held from the creation
    assert application_terms(portal.operator.db).apis == {client_id: TWO_APIS}
