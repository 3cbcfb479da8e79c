"""``GET /admin/invoices``: the admin credential, a month's invoices, bad input as CAMARA."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI

from operators.billing import application_invoices, build_invoice_admin_router, invoices_json
from operators.gateway import install_camara_error_handlers
from operators.gateway.metering import UsageLedger
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database

from .support import DAY, MARCH, FakeClock, event, priced_operator

ADMIN = {"authorization": "Bearer admin-secret"}


def _client(
    now: float, owners: dict[str, str] | None = None
) -> tuple[httpx.AsyncClient, UsageLedger]:
    config = priced_operator()
    db = Database(":memory:")
    clock = FakeClock(MARCH.start)
    plans = PlanSubscriptions(config, db, clock=clock)
    plans.subscribe("app", "sim-swap", "growth")
    ledger = UsageLedger(db)
    for i in range(8):
        ledger.record(event("app", f"c{i}", MARCH.start + i * DAY))
    clock.now = now
    app = FastAPI()
    install_camara_error_handlers(app)
    app.include_router(
        build_invoice_admin_router(
            config, plans, ledger, clock, owners=None if owners is None else lambda: owners
        )
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://op"), ledger


async def test_the_admin_credential_is_required() -> None:
    client, _ = _client(MARCH.end + DAY)
    answer = await client.get("/admin/invoices?month=2025-03")
    assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"


async def test_a_past_month_is_final_and_the_same_bytes_as_the_library_gives() -> None:
    client, _ = _client(MARCH.end + DAY)
    answer = await client.get("/admin/invoices", params={"month": "2025-03"}, headers=ADMIN)
    assert answer.status_code == 200
    payload = answer.json()
    assert (payload["party"], payload["month"], payload["status"]) == (
        "telco-es",
        "2025-03",
        "final",
    )
    (doc,) = payload["invoices"]
    assert doc["customer"] == {"kind": "application", "id": "app"}
    # 31.00 fee + 5 x 0.10 + 1.00 + 3 x 0.05 = 32.65
    assert doc["total"] == "32.65"
    assert answer.content == invoices_json(payload)


async def test_without_a_month_it_is_the_current_draft() -> None:
    client, _ = _client(MARCH.start + 3.5 * DAY)
    payload = (await client.get("/admin/invoices", headers=ADMIN)).json()
    assert (payload["month"], payload["status"]) == ("2025-03", "draft")
    (doc,) = payload["invoices"]
    assert sum(len(line["events"]) for a in doc["applications"] for api in a["apis"]
               for line in api["lines"]) == 4  # fmt: skip


async def test_by_organisation_when_the_party_knows_owners() -> None:
    client, _ = _client(MARCH.end + DAY, owners={"app": "acme"})
    payload = (
        await client.get("/admin/invoices?month=2025-03&by=organisation", headers=ADMIN)
    ).json()
    assert [doc["customer"] for doc in payload["invoices"]] == [
        {"kind": "organisation", "id": "acme"}
    ]


async def test_bad_input_is_a_camara_error_naming_the_parameter() -> None:
    client, _ = _client(MARCH.end + DAY)
    for query, named in (
        ("month=2025-13", "month:"),
        ("month=March", "month:"),
        ("month=2025-05", "month: 2025-05 has not begun"),
        ("month=2025-03&by=team", "by:"),
        ("month=2025-03&by=organisation", "by:"),  # no owners handed to this router
    ):
        answer = await client.get(f"/admin/invoices?{query}", headers=ADMIN)
        body = answer.json()
        assert answer.status_code == 400, query
        assert body["code"] == "INVALID_ARGUMENT" and body["message"].startswith(named), body


async def test_the_library_and_the_endpoint_agree_on_a_draft() -> None:
    client, ledger = _client(MARCH.start + 3.5 * DAY)
    config = priced_operator()
    plans = PlanSubscriptions(config, ledger.db)
    docs = [
        i.document()
        for i in application_invoices(
            config, plans, ledger.events(), MARCH, now=MARCH.start + 3.5 * DAY
        )
    ]
    assert (await client.get("/admin/invoices", headers=ADMIN)).json()["invoices"] == json.loads(
        invoices_json(docs)
    )
