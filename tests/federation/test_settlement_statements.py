"""Settlement statements: the rate card, monthly statements from both parties' books, and their
reconciliation, on a scripted in-process federation whose clock crosses a month's end.

The aggregator's statement of what each operator served for it (its settlement ledger) and each
operator's own statement of what it served for the aggregator (its usage events of the hub's
client) agree call for call, a ported number and a brand included; a missing or tampered
record on either side is named by its correlator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from federation.config import (
    BRAND_NUMBER,
    PORTED_NUMBER,
    FederationConfig,
    default_federation,
    load_federation,
)
from federation.federation import Federation, quick_consent, start_federation
from federation.rate_card import RateCard, WholesaleRate
from federation.settlement import (
    Month,
    Statement,
    StatementError,
    StatementRecord,
    months_between,
    operator_correlator,
    reconcile_statements,
    statement,
)
from operators import ConfigFileError
from operators.billing import MonthError
from operators.camara import operation_named
from tests.federation.conftest import FakeClock

FRAUD = "dpv:FraudPreventionAndDetection"
SCOPE = "sim-swap:check location-verification:verify"
ADMIN = {"Authorization": "Bearer admin-secret"}
MARCH, APRIL = Month(2025, 3), Month(2025, 4)


# -- months and the rate card -------------------------------------------------------------------


def test_a_month_is_a_utc_calendar_month() -> None:
    assert Month.parse("2025-03") == MARCH and str(MARCH) == "2025-03"
    assert MARCH.end == APRIL.start and MARCH.holds(MARCH.end - 0.001)
    assert not MARCH.holds(MARCH.end)
    assert Month.parse("2024-12").next() == Month(2025, 1)
    assert months_between(MARCH.start + 5, APRIL.start + 5) == [MARCH, APRIL]
    full_width = "\uff12\uff10\uff12\uff15-\uff10\uff13"  # 2025-03 in full-width digits
    arabic_indic = "2025-\u0660\u0663"
    for bad in ("2025-13", "2025-3", "March", "", "2025-03-01", full_width, arabic_indic):
        with pytest.raises(MonthError, match="YYYY-MM"):
            Month.parse(bad)


def test_the_default_rate_card_prices_every_pair_per_api() -> None:
    card = default_federation().rate_card
    assert card.price("hub", "telco-es", "sim-swap").unit == Decimal("0.0200")
    assert card.price("hub", "telco-es", "qos-profiles").unit == Decimal("0.0100")
    gb = card.price("hub", "telco-gb", "sim-swap")
    assert (gb.unit, gb.currency) == (Decimal("0.0170"), "GBP")
    assert RateCard(default_price=None).priced("hub", "telco-es") is False
    with pytest.raises(KeyError, match="prices no calls"):
        RateCard(default_price=None).price("hub", "telco-es", "sim-swap")


def _write(tmp_path: Path, rate_card: str) -> Path:
    """The default federation as YAML with this rate card (indented under ``rate_card:``)."""
    import yaml

    data = default_federation().model_dump(mode="json")
    data.pop("rate_card")
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False) + "rate_card:\n" + rate_card)
    return path


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: -1}\n",
         "rate_card.rates.0.price_per_call: Input should be greater than or equal to 0"),
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: 0.0000001}\n",
         "rate_card.rates.0.price_per_call: Decimal input should have no more than 6 decimal"),
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: lots}\n",
         "rate_card.rates.0.price_per_call: Input should be a valid decimal"),
        ("  currency: euro\n",
         "rate_card.currency: String should match pattern"),
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: 1,"
         " apis: {sim-swop: 2}}\n",
         "rate_card.rates.0.apis: Value error, unknown API ['sim-swop']"),
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: 1, fee: 2}\n",
         "rate_card.rates.0.fee: Extra inputs are not permitted"),
        ("  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: 1}\n"
         "  - {aggregator: hub, operator: telco-es, price_per_call: 2}\n",
         "each (aggregator, operator) pair is priced once: hub -> telco-es"),
        ("  rates:\n  - {aggregator: hubb, operator: telco-es, price_per_call: 1}\n",
         "rate_card.rates.0.aggregator: 'hubb' is not an aggregator of the federation"),
        ("  rates:\n  - {aggregator: hub, operator: telco-xx, price_per_call: 1}\n",
         "rate_card.rates.0.operator: 'telco-xx' is not an operator of the federation"),
        ("  default_price: null\n"
         "  rates:\n  - {aggregator: hub, operator: telco-es, price_per_call: 1}\n",
         "every (aggregator, operator) pair needs a rate under rate_card.rates:"
         " hub -> telco-fr, hub -> telco-gb"),
    ],
)
def test_a_bad_rate_card_is_refused_naming_the_field(
    tmp_path: Path, card: str, message: str
) -> None:
    path = _write(tmp_path, card)
    with pytest.raises(ConfigFileError) as refused:
        load_federation(path)
    assert message in str(refused.value), str(refused.value)
    assert f"{path}:" in str(refused.value)


def test_a_rate_card_in_yaml_prices_as_written(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  currency: EUR\n  default_price: null\n  rates:\n"
        "  - {aggregator: hub, operator: telco-es, price_per_call: 0.011, apis: {kyc-match: 0.1}}\n"
        "  - {aggregator: hub, operator: telco-fr, price_per_call: '0.012'}\n"
        "  - {aggregator: hub, operator: telco-gb, price_per_call: 0.013, currency: GBP}\n",
    )
    card = load_federation(path).rate_card
    assert card.price("hub", "telco-es", "kyc-match").unit == Decimal("0.1")
    assert card.price("hub", "telco-es", "sim-swap").unit == Decimal("0.011")
    assert card.price("hub", "telco-fr", "sim-swap").unit == Decimal("0.012")
    assert card.currency_of("hub", "telco-gb") == "GBP"


# -- statements from records --------------------------------------------------------------------


def _record(correlator: str, api: str = "sim-swap", at: float | None = None) -> StatementRecord:
    return StatementRecord(correlator, api, "op", MARCH.start + 60 if at is None else at)


def test_a_statement_is_exact_money_and_deterministic_json() -> None:
    card = RateCard(rates=(WholesaleRate(aggregator="hub", operator="telco-es",
                                         price_per_call=Decimal("0.1"),
                                         apis={"sim-swap": Decimal("0.000003")}),))
    records = [_record(f"a:{i}") for i in range(3)] + [_record("a:x", "kyc-match")]
    records.append(_record("a:late", at=APRIL.start))  # next month: not in March's statement
    made = statement("aggregator", "hub", "telco-es", MARCH, card, reversed(records))
    assert [(line.api, line.calls, line.amount) for line in made.lines] == [
        ("kyc-match", 1, Decimal("0.1")),
        ("sim-swap", 3, Decimal("0.000009")),
    ]
    assert made.total == Decimal("0.100009") and made.calls == 4
    again = statement("aggregator", "hub", "telco-es", MARCH, card, records)
    assert made.to_json() == again.to_json()
    assert Statement.from_json(made.as_json()) == made
    with pytest.raises(StatementError, match="not a settlement statement"):
        Statement.from_json({"books": "aggregator"})


def test_reconciliation_names_each_difference_by_correlator() -> None:
    card = RateCard()
    ours = [_record("a:1"), _record("a:2"), _record("a:3", "kyc-match")]
    theirs = [_record("a:1"), _record("a:3", "sim-swap"), _record("a:4")]
    check = reconcile_statements(
        statement("aggregator", "hub", "telco-es", MARCH, card, ours),
        statement("operator", "hub", "telco-es", MARCH, card, theirs),
    )
    assert not check.matches
    assert [(d.correlator, d.kind, d.aggregator_api, d.operator_api)
            for d in check.differences] == [
        ("a:2", "missing at operator", "sim-swap", None),
        ("a:3", "api differs", "kyc-match", "sim-swap"),
        ("a:4", "missing at aggregator", None, "sim-swap"),
    ]
    same_counts = reconcile_statements(
        statement("aggregator", "hub", "telco-es", MARCH, card, [_record("a:1")]),
        statement("operator", "hub", "telco-es", MARCH, card, [_record("a:9")]),
    )
    assert all(line.matches for line in same_counts.lines) and not same_counts.matches
    with pytest.raises(StatementError, match="different pairs or months"):
        reconcile_statements(
            statement("aggregator", "hub", "telco-es", MARCH, card, []),
            statement("operator", "hub", "telco-fr", MARCH, card, []),
        )


# -- a scripted federation ----------------------------------------------------------------------


@dataclass
class Script:
    fed: Federation
    clock: FakeClock
    token: str

    @property
    def hub(self) -> str:
        return self.fed.aggregator.api_root

    async def check(self, number: str, correlator: str) -> httpx.Response:
        return await self.fed.http.post(
            f"{self.hub}/sim-swap/v2/check",
            json={"phoneNumber": number, "maxAge": 24},
            headers={"Authorization": f"Bearer {self.token}", "x-correlator": correlator,
                     "Idempotency-Key": correlator},
        )

    def number(self, operator: str, role: str = "approves") -> str:
        return self.fed.operator(operator).subscribers.test_number(role)

    async def statements(self, month: Month) -> list[tuple[Statement, Statement]]:
        """Each pair's two statements, as the two parties' admin APIs give them."""
        hub = await self.fed.http.get(
            f"{self.hub}/admin/statements", params={"month": str(month)}, headers=ADMIN
        )
        assert hub.status_code == 200, hub.text
        pairs = []
        for ours in hub.json():
            operator = self.fed.members[ours["operator"]].api_root
            theirs = await self.fed.http.get(
                f"{operator}/admin/statements/hub", params={"month": str(month)}, headers=ADMIN
            )
            assert theirs.status_code == 200, theirs.text
            pairs.append((Statement.from_json(ours), Statement.from_json(theirs.json())))
        return pairs


@pytest.fixture
async def script(tmp_path: Path) -> AsyncIterator[Script]:
    """The default federation on a fake clock ten minutes before the end of March 2025."""
    clock = FakeClock(MARCH.end - 600)
    fed = await start_federation(
        quick_consent(default_federation()), tmp_path, clock=clock, monotonic=clock, probes=False
    )
    app = await fed.register_application("shop", SCOPE, [FRAUD])
    app.clock = clock  # its client assertions are dated by the federation's clock
    token = (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    yield Script(fed, clock, token)
    await fed.stop()


async def _play(script: Script) -> None:
    """March: every operator, the brand, the configured port, a port at run time, a retry, an
    unserved number; then April: one call."""
    calls = [
        (script.number("telco-es"), "es-1"),
        (script.number("telco-es", "recent-swap"), "es-2"),
        (PORTED_NUMBER, "ported"),  # Red Azul's number, ported in to telco-es
        (script.number("telco-fr"), "fr-1"),
        (script.number("telco-gb"), "gb-1"),
        (BRAND_NUMBER, "kite"),  # Kite Mobile, on telco-gb's network
        (script.number("telco-fr"), "fr-1"),  # a retry: the same call, settled once
        ("+34620000777", "late-port"),  # Red Azul's, nobody in the federation serves it: 404
    ]
    for number, correlator in calls:
        assert (await script.check(number, correlator)).status_code in (200, 404)
    script.fed.port("+34620000777", "telco-es")
    assert (await script.check("+34620000777", "after-port")).status_code == 200
    script.clock.advance(700)  # April
    assert (await script.check(script.number("telco-fr"), "fr-april")).status_code == 200


async def test_both_sides_agree_until_a_record_is_lost_or_altered(script: Script) -> None:
    await _play(script)
    march = {ours.operator: (ours, theirs) for ours, theirs in await script.statements(MARCH)}
    for ours, theirs in march.values():
        check = reconcile_statements(ours, theirs)
        assert check.matches, check.as_json()
    es, _ = march["telco-es"]
    assert [(line.api, line.calls, line.amount) for line in es.lines] == [
        ("sim-swap", 4, Decimal("0.0800"))
    ]
    # The ported numbers were served, metered and are paid at telco-es, the operator serving
    # them now (Red Azul, their range's holder, is no party to the call).
    served = {r.correlator: r.served_as for r in es.records}
    assert served[operator_correlator("shop", "ported")] == "telco-es"
    assert served[operator_correlator("shop", "after-port")] == "telco-es"
    assert operator_correlator("shop", "late-port") not in served  # 404: no sale
    fr, _ = march["telco-fr"]
    assert (fr.calls, fr.total, fr.currency) == (1, Decimal("0.0180"), "EUR")
    gb, gb_operator = march["telco-gb"]
    assert (gb.calls, gb.total, gb.currency) == (2, Decimal("0.0340"), "GBP")
    assert gb.served_as() == {"kite-gb": 1, "telco-gb": 1}  # the brand's call is telco-gb's
    assert gb_operator.books == "operator" and gb_operator.total == gb.total
    april = {ours.operator: reconcile_statements(ours, theirs)
             for ours, theirs in await script.statements(APRIL)}
    assert all(check.matches for check in april.values())
    assert [line.aggregator_calls for line in april["telco-fr"].lines] == [1]
    assert april["telco-es"].lines == () and april["telco-gb"].lines == ()
    first = await script.fed.http.get(
        f"{script.hub}/admin/statements/telco-es", params={"month": "2025-03"}, headers=ADMIN
    )
    second = await script.fed.http.get(
        f"{script.hub}/admin/statements/telco-es", params={"month": "2025-03"}, headers=ADMIN
    )
    assert first.content == second.content and first.json() == es.as_json()
    await _refusals(script)
    _invoices_bill_what_was_metered(script, march)
    await _tampered_books_differ(script)


def _invoices_bill_what_was_metered(
    script: Script, march: dict[str, tuple[Statement, Statement]]
) -> None:
    """Each operator's March invoices (operators.billing) bill exactly the calls it metered,
    and the hub's invoice exactly the calls of the pair's statements."""
    from operators.billing import ChargeKind, application_invoices
    from operators.billing import Month as BillingMonth

    for operator_id, (ours, _) in march.items():
        operator = script.fed.operator(operator_id)
        events = operator.gateway.ledger.events()
        invoices = application_invoices(
            operator.config, operator.gateway.admission.plans, events,
            BillingMonth.parse("2025-03"), now=script.clock(),
        )
        billed: dict[tuple[str, str], int] = {}
        for invoice in invoices:
            for line in invoice.lines:
                if line.kind is ChargeKind.CALLS:
                    key = (line.client_id, line.api)
                    billed[key] = billed.get(key, 0) + line.quantity
        metered: dict[tuple[str, str], int] = {}
        for event in events:
            if MARCH.holds(event.at):
                metered[(event.client_id, event.api)] = metered.get(
                    (event.client_id, event.api), 0) + 1
        assert billed == metered, operator_id
        assert {api: n for (client, api), n in billed.items() if client == "hub"} == {
            line.api: line.calls for line in ours.lines
        }


async def _tampered_books_differ(script: Script) -> None:
    """A record lost at an operator, one altered at the aggregator and one the aggregator
    never settled: each a difference named by its correlator (one federation start for all
    of this test's checks: starting one is what takes time)."""
    es = script.fed.operator("telco-es").db
    es.execute(  # the operator lost one event
        "DELETE FROM usage_events WHERE client_id = 'hub' AND correlator = ?",
        (operator_correlator("shop", "es-2"),),
    )
    hub = script.fed.aggregator.db
    hub.execute(  # the aggregator's book was altered: another API, dearer
        "UPDATE aggregator_settlement SET api = 'kyc-match' WHERE correlator = 'ported'"
    )
    row = script.fed.operator("telco-gb").db.one(
        "SELECT * FROM usage_events WHERE client_id = 'hub' LIMIT 1"
    )
    assert row is not None
    script.fed.operator("telco-gb").db.execute(  # a call the hub never settled
        "INSERT INTO usage_events (client_id, correlator, api, operation, plan, price,"
        " currency, status, at) VALUES ('hub', 'shop:ghost', 'sim-swap', 'checkSimSwap',"
        " 'free', 0, 'EUR', 200, ?)",
        (row["at"],),
    )
    checks = {ours.operator: reconcile_statements(ours, theirs)
              for ours, theirs in await script.statements(MARCH)}
    assert checks["telco-fr"].matches
    es_check = checks["telco-es"]
    assert not es_check.matches
    assert [(d.correlator, d.kind) for d in es_check.differences] == [
        ("shop:es-2", "missing at operator"),
        ("shop:ported", "api differs"),
    ]
    lines = {line.api: line for line in es_check.lines}
    assert (lines["kyc-match"].aggregator_calls, lines["kyc-match"].operator_calls) == (1, 0)
    assert es_check.aggregator_total == Decimal("0.0600") + Decimal("0.0500")  # 3 + KYC
    assert es_check.operator_total == Decimal("0.0600")
    gb_check = checks["telco-gb"]
    assert [(d.correlator, d.kind) for d in gb_check.differences] == [
        ("shop:ghost", "missing at aggregator")
    ]


async def _refusals(script: Script) -> None:
    """Bad requests to either party's statement API get CAMARA bodies, never a 500."""
    http, hub = script.fed.http, script.hub
    es = script.fed.members["telco-es"].api_root
    for url in (f"{hub}/admin/statements", f"{es}/admin/statements"):
        assert (await http.get(url, params={"month": "2025-03"})).status_code == 401
        for params in ({}, {"month": "2025-3"}, {"month": "x" * 5000}):
            refused = await http.get(url, params=params, headers=ADMIN)
            assert refused.status_code == 400, refused.text
            assert refused.json()["code"] == "INVALID_ARGUMENT"
    unknown = await http.get(f"{hub}/admin/statements/red-azul", params={"month": "2025-03"},
                             headers=ADMIN)
    assert unknown.status_code == 404 and "not a member operator" in unknown.json()["message"]
    nobody = await http.get(f"{es}/admin/statements/telco-fr", params={"month": "2025-03"},
                            headers=ADMIN)
    assert nobody.status_code == 404 and nobody.json()["code"] == "NOT_FOUND"
    listed = await http.get(f"{es}/admin/statements", params={"month": "2025-03"}, headers=ADMIN)
    assert [s["aggregator"] for s in listed.json()] == ["hub"]


def test_federation_config_without_a_rate_card_gets_the_default(
    federation: FederationConfig,
) -> None:
    data = federation.model_dump(mode="json")
    data.pop("rate_card")
    card = FederationConfig.model_validate(data).rate_card
    assert card == RateCard() and card.price("hub", "telco-fr", "sim-swap").unit == Decimal("0.01")


async def test_calls_to_an_api_with_a_narrow_correlator_reach_the_operator_and_reconcile(
    script: Script,
) -> None:
    """Device Status takes only letters, digits and hyphens in its x-correlator, which the
    hub passes on as the application sent it; the key the operator meters under is scoped
    the same way as the settlement's (a digest for this API's pattern), which both sides'
    statements then carry."""
    app = await script.fed.register_application(
        "reach", "device-reachability-status:read", [FRAUD]
    )
    app.clock = script.clock
    token = (await app.client_credentials(f"device-reachability-status:read {FRAUD}"))[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}", "x-correlator": "reach-1",
               "Idempotency-Key": "reach-1"}
    url = f"{script.hub}/device-reachability-status/v1/retrieve"
    body = {"device": {"phoneNumber": script.number("telco-fr")}}
    first = await script.fed.http.post(url, json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["x-correlator"] == "reach-1"
    again = await script.fed.http.post(url, json=body, headers=headers)
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    refused = await script.fed.http.post(
        url, json=body, headers={**headers, "x-correlator": "urn:reach:2"}
    )
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_ARGUMENT"
    events = script.fed.operator("telco-fr").gateway.ledger.events()
    narrow = operation_named("getReachabilityStatus").correlator
    assert [e.correlator for e in events] == [operator_correlator("reach", "reach-1", narrow)]
    assert narrow.match(events[0].correlator)
    (fr,) = [pair for pair in await script.statements(MARCH) if pair[0].operator == "telco-fr"]
    check = reconcile_statements(*fr)
    assert check.matches, check.as_json()
    assert [(line.api, line.calls) for line in fr[0].lines] == [("device-reachability-status", 1)]
