"""Usage in the developer portal: the report (calls, errors by code, percentiles, quota used
and left), its CSV and JSON, the charts, bad parameters, and another organisation's
applications staying out of sight."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest

from operators.config import Plan, Quota, QuotaPeriod
from operators.gateway.call_statistics import RELATIVE_ACCURACY, CallStatistics, day_of
from operators.gateway.subscriptions import InMemoryPlans
from operators.portal.charts import Series, line_chart, stacked_bars
from operators.portal.developers import Application, ApplicationStatus, Environment
from operators.portal.usage import (
    UsageQuery,
    UsageQueryError,
    parse_usage_query,
    usage_csv,
    usage_json,
    usage_report,
)
from operators.storage import Database
from tests.operators.portal.conftest import (
    FRAUD,
    START,
    Browser,
    FakeClock,
    Portal,
    client_id_of,
    private_key_of,
)

DAY = 86_400.0
TODAY = day_of(START)
APIS = ("sim-swap", "location-verification", "kyc-match")
PLANS = (
    Plan(name="daily", rate_per_second=10, burst=10, quota=Quota(limit=5)),
    Plan(name="monthly", rate_per_second=10, burst=10,
         quota=Quota(limit=100, period=QuotaPeriod.MONTH)),
    Plan(name="per-minute", rate_per_second=10, burst=10,
         quota=Quota(limit=60, period=QuotaPeriod.MINUTE)),
    Plan(name="unlimited", rate_per_second=10, burst=10),
)


def application(client_id: str, name: str = "Fraud checks", org_id: str = "org-a") -> Application:
    return Application(client_id, org_id, "dev-1", name, Environment.SANDBOX,
                       ApplicationStatus.ACTIVE, START)


def plans() -> InMemoryPlans:
    store = InMemoryPlans(PLANS, "unlimited")
    store.subscribe("app-1", "sim-swap", "daily")
    store.subscribe("app-1", "location-verification", "monthly")
    store.subscribe("app-2", "sim-swap", "per-minute")
    return store


# -- the report ------------------------------------------------------------------------------


def test_calls_errors_and_percentiles_per_application_api_and_day() -> None:
    clock = FakeClock()
    statistics = CallStatistics(Database(), clock)
    clock.advance(-DAY)  # yesterday: 100 successes, 1..100 ms, and two kinds of error
    for ms in range(1, 101):
        statistics.record("app-1", "sim-swap", 200, "", ms / 1000, counted=True)
    for _ in range(3):
        statistics.record("app-1", "sim-swap", 404, "IDENTIFIER_NOT_FOUND", 0.2, counted=True)
    statistics.record("app-1", "sim-swap", 429, "QUOTA_EXCEEDED", 0.001, counted=False)
    statistics.flush()
    clock.advance(DAY)  # today: not yet written, still in the report
    statistics.record("app-1", "location-verification", 200, "", 0.5, counted=True)
    statistics.record("app-2", "sim-swap", 503, "UNAVAILABLE", 1.0, counted=True)
    statistics.record("other-org-app", "sim-swap", 200, "", 0.5, counted=True)
    apps = [application("app-1"), application("app-2", "KYC")]
    query = UsageQuery(TODAY - timedelta(days=13), TODAY)
    report = usage_report(statistics, plans(), apps, query, now=clock(), apis=APIS)

    assert (report.calls, report.errors) == (106, 5)
    assert report.errors_by_code == (("404 IDENTIFIER_NOT_FOUND", 3),
                                     ("429 QUOTA_EXCEEDED", 1), ("503 UNAVAILABLE", 1))
    yesterday = TODAY - timedelta(days=1)
    rows = {(r.client_id, r.api, r.day): r for r in report.rows}
    assert set(rows) == {("app-1", "sim-swap", yesterday),
                         ("app-1", "location-verification", TODAY), ("app-2", "sim-swap", TODAY)}
    swap = rows["app-1", "sim-swap", yesterday]
    assert (swap.calls, swap.errors, swap.successes) == (104, 4, 100)
    assert swap.application == "Fraud checks"
    # 104 latencies: 0.001 (the 429), 1..100 ms, 3 x 200 ms; exact ranks 51 and 97 (0-based)
    ordered = sorted([0.001] + [ms / 1000 for ms in range(1, 101)] + [0.2] * 3)
    for q, estimate in ((0.5, swap.p50), (0.95, swap.p95)):
        exact = ordered[int(q * (len(ordered) - 1))]
        assert estimate == pytest.approx(exact, rel=RELATIVE_ACCURACY)
    assert [d.day for d in report.daily] == query.days and len(report.daily) == 14
    assert [(d.successes, d.errors) for d in report.daily[-2:]] == [(100, 4), (1, 1)]
    assert report.daily[0].p50 is None and report.daily[0].successes == 0
    ranges = {(r.client_id, r.api): r.calls for r in report.ranges}
    assert ranges == {("app-1", "location-verification"): 1, ("app-1", "sim-swap"): 104,
                      ("app-2", "sim-swap"): 1}

    only = usage_report(statistics, plans(), apps, UsageQuery(TODAY, TODAY, "app-1", "sim-swap"),
                        now=clock(), apis=APIS)
    assert only.calls == 0 and only.rows == []


def test_quota_used_and_left_for_the_plan_in_force() -> None:
    clock = FakeClock()
    clock.now = 1_789_000_000.0  # 2026-09-10, mid-month
    statistics = CallStatistics(Database(), clock)
    clock.advance(-20 * DAY)  # last month: outside every current period
    statistics.record("app-1", "location-verification", 200, "", 0.1, counted=True)
    clock.advance(19 * DAY)  # yesterday
    statistics.record("app-1", "sim-swap", 200, "", 0.1, counted=True)
    for _ in range(7):
        statistics.record("app-1", "location-verification", 200, "", 0.1, counted=True)
    statistics.flush()
    clock.advance(DAY)  # today
    for _ in range(3):
        statistics.record("app-1", "sim-swap", 200, "", 0.1, counted=True)
    statistics.record("app-1", "sim-swap", 404, "IDENTIFIER_NOT_FOUND", 0.1, counted=True)
    statistics.record("app-1", "sim-swap", 429, "QUOTA_EXCEEDED", 0.1, counted=False)
    statistics.record("app-1", "sim-swap", 403, "PERMISSION_DENIED", 0.1, counted=False)
    statistics.record("app-1", "location-verification", 200, "", 0.1, counted=True)
    statistics.record("app-2", "sim-swap", 200, "", 0.1, counted=True)
    statistics.record("app-2", "kyc-match", 200, "", 0.1, counted=True)
    today = day_of(clock())
    apps = [application("app-1"), application("app-2", "KYC")]
    report = usage_report(statistics, plans(), apps, UsageQuery(today, today),
                          now=clock(), apis=APIS)
    quotas = {(q.client_id, q.api): q for q in report.quotas}
    daily = quotas["app-1", "sim-swap"]  # 5 a day: 3 successes and a 404 counted today
    assert (daily.plan, daily.limit, daily.period, daily.since) == ("daily", 5, "day", today)
    assert (daily.used, daily.left) == (4, 1)
    monthly = quotas["app-1", "location-verification"]  # 100 a month: 7 yesterday + 1 today
    assert (monthly.used, monthly.left, monthly.since) == (8, 92, today.replace(day=1))
    minute = quotas["app-2", "sim-swap"]  # finer than the daily statistics: not shown
    assert (minute.limit, minute.used, minute.left) == (60, None, None)
    unlimited = quotas["app-2", "kyc-match"]
    assert (unlimited.plan, unlimited.limit, unlimited.used) == ("unlimited", None, None)

    for _ in range(9):
        statistics.record("app-1", "sim-swap", 200, "", 0.1, counted=True)
    again = usage_report(statistics, plans(), apps, UsageQuery(today, today, api="sim-swap"),
                         now=clock(), apis=APIS)
    assert [(q.client_id, q.used, q.left) for q in again.quotas] == [
        ("app-1", 13, 0), ("app-2", None, None)]


def test_query_parameters_are_checked_and_named() -> None:
    apps = [application("app-1")]

    def parse(**params: str) -> UsageQuery:
        return parse_usage_query(params, today=TODAY, applications=apps, apis=APIS)

    default = parse()
    assert (default.first, default.last, len(default.days)) == (
        TODAY - timedelta(days=13), TODAY, 14)
    assert parse(**{"from": "", "to": "", "application": "", "api": ""}) == default
    chosen = parse(**{"from": "2026-01-01", "to": "2026-12-31", "application": "app-1",
                      "api": "kyc-match"})
    assert chosen == UsageQuery(date(2026, 1, 1), date(2026, 12, 31), "app-1", "kyc-match")
    assert chosen.params() == {"from": "2026-01-01", "to": "2026-12-31",
                               "application": "app-1", "api": "kyc-match"}
    assert len(parse(**{"from": "2024-01-01", "to": "2024-12-31"}).days) == 366
    refused = {
        "from": (dict(**{"from": "2026-02-30"}), 400),
        "to": (dict(to="yesterday"), 400),
        "application": (dict(application="someone-elses"), 404),
        "api": (dict(api="<script>"), 400),
    }
    # Dates the day arithmetic cannot reach (year 1 minus 13 days overflowed into a 500)
    for params in (dict(to="0001-01-05"), dict(to="9999-12-31"), {"from": "1969-12-31"}):
        with pytest.raises(UsageQueryError) as out_of_range:
            parse(**params)
        (name,) = params
        assert (out_of_range.value.parameter, out_of_range.value.status) == (name, 400)
        assert "1970-01-01" in out_of_range.value.message
    for parameter, (params, status) in refused.items():
        with pytest.raises(UsageQueryError) as caught:
            parse(**params)
        assert (caught.value.parameter, caught.value.status) == (parameter, status)
    with pytest.raises(UsageQueryError) as backwards:
        parse(**{"from": "2026-03-02", "to": "2026-03-01"})
    assert backwards.value.parameter == "from" and "after" in backwards.value.message
    with pytest.raises(UsageQueryError) as too_long:
        parse(**{"from": "2024-01-01", "to": "2025-01-01"})
    assert too_long.value.parameter == "to" and "366" in too_long.value.message


def test_csv_rows_and_cells_a_spreadsheet_will_not_run() -> None:
    clock = FakeClock()
    statistics = CallStatistics(Database(), clock)
    statistics.record("app-1", "sim-swap", 200, "", 0.010, counted=True)
    statistics.record("app-1", "sim-swap", 422, "UNNECESSARY_IDENTIFIER", 0.010, counted=True)
    apps = [application("app-1", name='=HYPERLINK("http://evil","x")')]
    report = usage_report(statistics, plans(), apps, UsageQuery(TODAY, TODAY), now=clock(),
                          apis=APIS)
    rows = list(csv.reader(io.StringIO(usage_csv(report))))
    assert rows[0] == ["date", "client_id", "application", "api", "calls", "successes",
                       "errors", "errors_by_code", "p50_ms", "p95_ms"]
    assert rows[1][:8] == [TODAY.isoformat(), "app-1", "'=HYPERLINK(\"http://evil\",\"x\")",
                           "sim-swap", "2", "1", "1", "422:UNNECESSARY_IDENTIFIER=1"]
    assert float(rows[1][8]) == pytest.approx(10.0, rel=RELATIVE_ACCURACY)
    assert len(rows) == 2
    document = usage_json(report)
    assert document["calls"] == 2 and document["errorsByCode"] == {
        "422 UNNECESSARY_IDENTIFIER": 1}
    json.dumps(document)  # plain JSON all the way down


def test_charts_escape_every_text_and_use_no_inline_style() -> None:
    labels = ["09-01", "<b>09-02</b>"]
    bars = stacked_bars('Calls "per" day', labels, [
        Series("ok", [3, 0], "#2e7d32"), Series("<errors>", [1, None], "#c62828")])
    assert "<b>" not in bars and "&lt;b&gt;09-02&lt;/b&gt;" in bars
    assert "&lt;errors&gt;" in bars and 'aria-label="Calls &#34;per&#34; day"' in bars
    assert bars.count("<rect") == 2 + 2  # two bars with calls, two legend keys
    assert "style=" not in bars and "<script" not in bars
    lines = line_chart("Latency", labels, [Series("p50", [12.5, None], "#1565c0")], unit=" ms")
    assert lines.count("<circle") == 1 and "<polyline" not in lines  # one point: no line
    assert "12.5 ms p50" in lines
    empty = stacked_bars("Nothing", [], [Series("ok", [], "#000")])
    assert empty.startswith("<svg") and empty.endswith("</svg>")


# -- over HTTP, in the portal ------------------------------------------------------------------


async def calls_made(portal: Portal, developer: Browser) -> str:
    """An application of the developer's organisation that made two good calls and one bad."""
    created = await developer.create_application()
    assert created.status_code == 200, created.text
    client_id = client_id_of(created.text)
    client = await portal.application_client(client_id, private_key_of(created.text))
    token = (await client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    http = portal.http()
    auth = {"Authorization": f"Bearer {token}"}
    for body, status in (({"maxAge": 240}, 200), ({"maxAge": 24}, 200), ({"maxAge": 9999}, 400)):
        body["phoneNumber"] = portal.test_number()
        answer = await http.post("/sim-swap/v2/check", json=body, headers=auth)
        assert answer.status_code == status, answer.text
    return client_id


async def test_the_usage_page_csv_and_json_show_the_organisations_calls(
    portal: Portal, developer: Browser
) -> None:
    client_id = await calls_made(portal, developer)
    page = await developer.get("/portal/usage")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert f'value="{client_id}"' in page.text
    assert "3 calls from" in page.text and "400 OUT_OF_RANGE" in page.text
    assert page.text.count("<svg") == 2 and "Calls per day" in page.text
    assert 'id="usage-quotas"' in page.text and "pay-as-you-go" in page.text

    exported = await developer.get(f"/portal/usage.csv?application={client_id}&api=sim-swap")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    first = (TODAY - timedelta(days=13)).isoformat()
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="usage-{first}-to-{TODAY.isoformat()}.csv"')
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["client_id"], r["api"], r["calls"], r["errors"], r["errors_by_code"])
            for r in rows] == [(client_id, "sim-swap", "3", "1", "400:OUT_OF_RANGE=1")]

    portal.operator.gateway.statistics.flush()  # written or pending, the same numbers
    document = (await developer.get("/portal/usage.json")).json()
    assert (document["calls"], document["errors"]) == (3, 1)
    assert document["quotas"][0]["used"] == 3  # the pay-as-you-go plan: 100 000 a month
    assert document["quotas"][0]["left"] == 99_997


async def test_bad_parameters_are_a_400_naming_them(portal: Portal, developer: Browser) -> None:
    for query, parameter in (("from=2026-13-01", "from"), ("to=soon", "to"),
                             ("from=2026-03-02&to=2026-03-01", "from"),
                             ("from=2024-01-01&to=2025-06-01", "to"), ("api=nope", "api"),
                             ("from=2026-01-01&from=2026-01-02", "from")):
        page = await developer.get(f"/portal/usage?{query}")
        assert page.status_code == 400, query
        assert f"{parameter}: " in page.text and 'id="problem"' in page.text
        plain = await developer.get(f"/portal/usage.csv?{query}")
        assert plain.status_code == 400 and plain.text.startswith(f"{parameter}: ")
        assert plain.headers["content-type"].startswith("text/plain")
        body = (await developer.get(f"/portal/usage.json?{query}")).json()
        assert body["status"] == 400 and body["code"] == "INVALID_ARGUMENT"
    anonymous = portal.browser("198.51.100.9")
    refused = await anonymous.get("/portal/usage.csv")
    assert refused.status_code == 303 and refused.headers["location"] == "/portal/sign-in"


async def test_another_organisations_application_is_not_found(
    portal: Portal, developer: Browser
) -> None:
    client_id = await calls_made(portal, developer)
    eve = portal.browser()
    assert (await eve.sign_up("eve@example.com", organisation="Eve Corp")).status_code == 303
    for path in ("/portal/usage", "/portal/usage.csv", "/portal/usage.json"):
        foreign = await eve.get(f"{path}?application={client_id}")
        unknown = await eve.get(f"{path}?application=no-such-app")
        assert foreign.status_code == unknown.status_code == 404, path
        assert foreign.text.replace(client_id, "X") == unknown.text.replace("no-such-app", "X")
    own = await eve.get("/portal/usage")
    assert own.status_code == 200 and client_id not in own.text and "0 calls" in own.text
    document = (await eve.get("/portal/usage.json")).json()
    assert document["calls"] == 0 and document["days"] == [] and document["quotas"] == []
