"""Reconciliation of statements and invoices against a scripted federation (httpx's mock
transport answers for every party): an operator's invoices must bill the aggregator's client
for exactly the calls its statement says it served; an operator without invoices is noted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from federation.rate_card import RateCard
from federation.settlement import Month, StatementRecord, statement
from loadtests.federation_view import load_descriptor
from loadtests.reconciliation import reconcile, render

HUB, FR = "http://hub.test", "http://fr.test"
NOW = time.time()
MONTH = Month.of(NOW)


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    descriptor = tmp_path / "descriptor.json"
    descriptor.write_text(json.dumps({
        "operators": [{"id": "telco-fr", "country": "FR", "issuer": f"{FR}/oauth",
                       "apiRoot": FR, "testNumbers": {"approves": "+33610000001"}}],
        "aggregator": {"id": "hub", "issuer": f"{HUB}/oauth", "apiRoot": HUB,
                       "settlement": f"{HUB}/admin/settlement"},
    }))
    results = tmp_path / "run"
    results.mkdir()
    (results / "run.json").write_text(json.dumps({"runId": "r1", "startedAt": NOW,
                                                  "baseline": {}}))
    (results / "calls-a.json").write_text(json.dumps({
        "runId": "r1", "node": "a", "billable": [], "unresolved": [], "settled": {}}))
    return descriptor, results


def _statement(books: str) -> dict[str, Any]:
    records = [StatementRecord(f"app:c{i}", "sim-swap", "checkSimSwap", MONTH.start + i)
               for i in range(3)]
    return statement(books, "hub", "telco-fr", MONTH, RateCard(), records).as_json()  # type: ignore[arg-type]


def _invoices(calls: int) -> dict[str, Any]:
    line = {"kind": "calls", "quantity": calls, "plan": "free"}
    fee = {"kind": "monthly_fee", "quantity": 86400, "plan": "free"}
    return {"invoices": [{"applications": [
        {"client_id": "hub", "apis": [{"api": "sim-swap", "lines": [fee, line]}]},
        {"client_id": "shop", "apis": [{"api": "sim-swap", "lines": [line]}]},
    ]}]}


def _federation(invoices: Callable[[], httpx.Response]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        if url == f"{FR}/admin/usage":
            return httpx.Response(200, json=[])
        if url == f"{HUB}/admin/settlement/telco-fr":
            return httpx.Response(200, json={"records": []})
        if url == f"{HUB}/admin/statements":
            return httpx.Response(200, json=[_statement("aggregator")])
        if url == f"{FR}/admin/statements/hub":
            return httpx.Response(200, json=_statement("operator"))
        if url == f"{FR}/admin/invoices":
            return invoices()
        return httpx.Response(404, json={"status": 404, "code": "NOT_FOUND", "message": url})

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_invoices_must_bill_the_calls_the_statement_says_were_served(tmp_path: Path) -> None:
    descriptor, results = _folder(tmp_path)
    with _federation(lambda: httpx.Response(200, json=_invoices(3))) as http:
        agreed = reconcile(load_descriptor(descriptor), results, http)
    assert agreed.matches, render(agreed)
    assert [(i.invoiced, i.metered) for i in agreed.invoices] == [
        ({"sim-swap": 3}, {"sim-swap": 3})
    ]
    with _federation(lambda: httpx.Response(200, json=_invoices(2))) as http:
        short = reconcile(load_descriptor(descriptor), results, http)
    assert not short.matches
    assert "invoices" in render(short) and "billed 2 calls, metered 3  <-- differs" in render(
        short
    )


def test_an_operator_without_invoices_is_noted_not_judged(tmp_path: Path) -> None:
    descriptor, results = _folder(tmp_path)
    with _federation(lambda: httpx.Response(404, json={})) as http:
        report = reconcile(load_descriptor(descriptor), results, http)
    assert report.matches and report.invoices == []
    assert any("serves no /admin/invoices" in note for note in report.notes)
    assert len(report.statements) == 1 and report.statements[0].matches
