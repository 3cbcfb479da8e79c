"""The portal's invoice pages: the signed-in developer's organisation's invoice only, as a
page, JSON and CSV; a draft for the current month; bad months are pages, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from operators.billing import Month
from operators.config import TokenLifetimes, example_operator
from operators.gateway.metering import UsageEvent
from operators.operator import Operator, create_operator_app
from operators.portal.invoices_page import build_invoice_pages
from tests.operators.portal.conftest import ADMIN_SECRET, FRAUD, Browser, FakeClock, Portal


@dataclass
class Customer:
    browser: Browser
    org_id: str
    client_id: str


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    clock = FakeClock()
    config = example_operator().model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0), "admin_secret": ADMIN_SECRET}
    )
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    served = Portal(operator, app, clock)
    parts = served.parts
    app.include_router(build_invoice_pages(parts.host, parts.accounts, parts.guard))
    yield served
    for http in served.opened:
        await http.aclose()


async def _customer(portal: Portal, email: str, organisation: str, calls: int) -> Customer:
    browser = portal.browser()
    assert (await browser.sign_up(email, organisation=organisation)).status_code == 303
    developer = portal.parts.accounts.by_email(email)
    assert developer is not None
    application, _ = portal.parts.accounts.create_application(
        developer, f"{organisation} app", ["sim-swap"], [FRAUD], None
    )
    ledger = portal.operator.gateway.ledger
    for i in range(calls):
        ledger.record(
            UsageEvent(application.client_id, f"{email}-{i}", "sim-swap", "checkSimSwap",
                       "pay-as-you-go", 0.01, "EUR", 200, portal.clock() + i)
        )  # fmt: skip
    return Customer(browser, developer.org_id, application.client_id)


async def test_a_developer_sees_their_organisations_invoice_only(portal: Portal) -> None:
    acme = await _customer(portal, "ada@acme.example", "Acme", 3)
    bank = await _customer(portal, "bob@bank.example", "Bank", 5)
    portal.clock.advance(3600)
    month = str(Month.of(portal.clock()))

    listing = await acme.browser.get("/portal/invoices")
    assert listing.status_code == 200
    assert f'id="invoice-{month}"' in listing.text and "draft" in listing.text

    page = await acme.browser.get(f"/portal/invoices/{month}")
    assert page.status_code == 200
    assert acme.client_id in page.text and bank.client_id not in page.text
    assert "Total 0.03 EUR" in page.text  # 3 calls at 0.01 on the default plan
    assert f'href="/portal/invoices/{month}.json"' in page.text

    for path in (
        f"/portal/invoices/{month}.json",
        f"/portal/invoices/{month}.json?org_id={bank.org_id}",
        f"/portal/invoices/{month}.json?org={bank.org_id}&client_id={bank.client_id}",
    ):
        answer = await acme.browser.get(path)
        doc = json.loads(answer.content)
        assert doc["customer"] == {"kind": "organisation", "id": acme.org_id}, path
        events = [e for a in doc["applications"] for api in a["apis"] for line in api["lines"]
                  for e in line["events"]]  # fmt: skip
        assert {client for client, _ in events} == {acme.client_id}
        assert len(events) == 3
    theirs = json.loads((await bank.browser.get(f"/portal/invoices/{month}.json")).content)
    assert (theirs["customer"]["id"], theirs["total"]) == (bank.org_id, "0.05")

    csv_answer = await acme.browser.get(f"/portal/invoices/{month}.csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert bank.client_id not in csv_answer.text and acme.client_id in csv_answer.text
    assert "attachment" in csv_answer.headers["content-disposition"]


async def test_signed_out_visitors_are_sent_to_sign_in(portal: Portal) -> None:
    await _customer(portal, "ada@acme.example", "Acme", 1)
    month = str(Month.of(portal.clock()))
    stranger = portal.browser("198.51.100.4")
    for path in ("/portal/invoices", f"/portal/invoices/{month}", f"/portal/invoices/{month}.json"):
        answer = await stranger.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/sign-in"


async def test_bad_months_are_pages_naming_the_problem(portal: Portal) -> None:
    acme = await _customer(portal, "ada@acme.example", "Acme", 1)
    later = Month.of(portal.clock()).next()
    for path, said in (
        ("/portal/invoices/2026-13", "YYYY-MM"),
        ("/portal/invoices/september", "YYYY-MM"),
        (f"/portal/invoices/{later}", "not begun"),
        (f"/portal/invoices/{later}.csv", "not begun"),
    ):
        answer = await acme.browser.get(path)
        assert answer.status_code == 404, path
        assert said in answer.text and "text/html" in answer.headers["content-type"]


async def test_a_past_month_is_final_with_the_drafts_number(portal: Portal) -> None:
    acme = await _customer(portal, "ada@acme.example", "Acme", 2)
    month = Month.of(portal.clock())
    draft = json.loads((await acme.browser.get(f"/portal/invoices/{month}.json")).content)
    portal.clock.now = month.end + 60
    assert (await acme.browser.sign_in("ada@acme.example")).status_code == 303  # days later
    final = json.loads((await acme.browser.get(f"/portal/invoices/{month}.json")).content)
    assert (draft["status"], final["status"]) == ("draft", "final")
    assert draft["invoice_number"] == final["invoice_number"]
    listing = (await acme.browser.get("/portal/invoices")).text
    assert f'id="invoice-{month}"' in listing and f'id="invoice-{month.next()}"' in listing


async def test_a_disabled_application_pays_its_fee_until_it_was_cut_off(portal: Portal) -> None:
    """A disabled (or suspended) application can serve nothing: its plan's monthly fee runs
    from its creation to its cut-off and not after. The portal, the admin API and the CLI
    (the same terms) draw the same invoice."""
    acme = await _customer(portal, "ada@acme.example", "Acme", 0)
    september = Month.of(portal.clock())
    created = portal.clock()
    portal.operator.gateway.admission.plans.subscribe(acme.client_id, "sim-swap", "enterprise")
    portal.clock.advance(3 * 86400)  # three of September's 30 days on enterprise: 200.00
    portal.parts.accounts.disable_application(acme.org_id, acme.client_id)
    application = portal.parts.accounts.application(acme.client_id)
    assert application is not None and application.ended_at == created + 3 * 86400
    portal.clock.now = september.end + 5 * 86400
    assert (await acme.browser.sign_in("ada@acme.example")).status_code == 303

    def fee(document: dict[str, object]) -> str:
        return str(document["total"])

    cut_off = json.loads((await acme.browser.get(f"/portal/invoices/{september}.json")).content)
    assert fee(cut_off) == "200.00"
    after = json.loads((await acme.browser.get(f"/portal/invoices/{september.next()}.json"))
                       .content)
    assert fee(after) == "0.00" and after["applications"] == [], "no fee once it was cut off"
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    http = portal.http()
    for month, total in ((september, "200.00"), (september.next(), None)):
        answer = await http.get("/admin/invoices", params={"month": str(month)}, headers=admin)
        assert answer.status_code == 200, answer.text
        mine = [i for i in answer.json()["invoices"]
                if i["customer"]["id"] == acme.client_id]
        assert [i["total"] for i in mine] == ([] if total is None else [total]), month
