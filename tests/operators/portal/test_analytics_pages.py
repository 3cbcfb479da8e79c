"""The admin's analytics pages over a real operator: developers sign up and create applications
in the portal, one calls the real gateway (usage events, milestones, usage buckets) and then
floods it an hour, the operator's own monitor scores the buckets and keeps an alert; the pages
show revenue, the funnel with its stuck developer, cohorts, the alert, segments and a
timeline, as HTML, JSON and CSV, only to the admin, and name every bad parameter."""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from operators.analytics.alerts import ALERT_KINDS
from operators.billing import Month
from operators.operator import portal_host
from operators.portal import PortalHost, install_developer_portal
from operators.portal.analytics_parameters import AnalyticsQueryError, parse_duration
from operators.portal.analytics_reports import developer_report
from operators.portal.analytics_source import AnalyticsSource

from .conftest import ADMIN_SECRET, Browser, Portal, client_id_of, private_key_of

ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_SECRET}".encode()).decode()}
JSON = {**ADMIN, "Accept": "application/json"}
BASE = "/portal/admin/analytics"
HOUR = 3600.0
SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
PAGES = [BASE, f"{BASE}/funnel", f"{BASE}/cohorts", f"{BASE}/anomalies", f"{BASE}/segments"]


@dataclass
class Seeded:
    ada_id: str
    ada_app: str
    bob_id: str
    bob_app: str
    billed: int


async def _seed(portal: Portal) -> Seeded:
    """Ada: signs up, creates an application on pay-as-you-go, calls SIM swap through the
    gateway, then calls a little every hour for 30 hours and floods it for one. Bob (of an
    organisation with a hostile name) creates an application and never gets a token."""
    operator = portal.operator
    ada: Browser = portal.browser()
    assert (await ada.sign_up("ada@example.com", organisation="Acme")).status_code == 303
    created = await ada.create_application(name="Fraud checks")
    ada_app = client_id_of(created.text)
    page = f"/portal/applications/{ada_app}"
    subscribed = await ada.post(
        f"{page}/plans", {"api": "sim-swap", "plan": "pay-as-you-go"}, csrf_from=page
    )
    assert subscribed.status_code == 303
    client = await portal.application_client(ada_app, private_key_of(created.text))
    token = (await client.client_credentials(SCOPE))["access_token"]
    http = portal.http("198.51.100.23")
    billed = 0
    for body in ({"phoneNumber": portal.test_number(), "maxAge": 240},) * 3 + ({"maxAge": 1},):
        answer = await http.post(
            "/sim-swap/v2/check", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        billed += answer.status_code == 200
    assert billed == 3

    bob: Browser = portal.browser("203.0.113.9")
    hostile = "<script>alert(1)</script> Ltd"
    assert (await bob.sign_up("bob@example.com", organisation=hostile)).status_code == 303
    bob_app = client_id_of((await bob.create_application(name="Never called")).text)

    usage = operator.gateway.usage
    for _hour in range(30):
        portal.clock.advance(HOUR)
        for k in range(2):
            usage.record(
                ada_app, "sim-swap", 200, subscriber=f"+3460000{k:04d}", host="198.51.100.23"
            )
    portal.clock.advance(HOUR)
    for k in range(300):
        usage.record(ada_app, "sim-swap", 200, subscriber=f"+3461{k:07d}", host="198.51.100.23")
    # past the flood's bucket and the grace the monitor leaves every replica to write it
    portal.clock.advance(HOUR + operator.config.analytics.grace_seconds)
    usage.flush()
    operator.activity.flush()
    operator.gateway.commits.flush()
    assert operator.monitor is not None
    await operator.monitor.catch_up()
    accounts = portal.parts.accounts
    ada_dev, bob_dev = accounts.by_email("ada@example.com"), accounts.by_email("bob@example.com")
    assert ada_dev is not None and bob_dev is not None
    return Seeded(ada_dev.developer_id, ada_app, bob_dev.developer_id, bob_app, billed)


@pytest.fixture
async def seeded(portal: Portal) -> Seeded:
    return await _seed(portal)


async def test_every_page_needs_the_admin_credential(portal: Portal, seeded: Seeded) -> None:
    anyone = portal.browser()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
    for path in [*PAGES, f"{BASE}/developers/{seeded.ada_id}"]:
        page = await anyone.get(path)
        assert page.status_code == 401, path
        assert page.headers["www-authenticate"].startswith("Basic")
        assert "admin credential" in page.text
        asked = await anyone.get(path, headers={**wrong, "Accept": "application/json"})
        assert asked.status_code == 401 and asked.json()["code"] == "UNAUTHENTICATED"
        # a header byte that is not ASCII (base64 refuses it with a plain ValueError): was a 500
        latin = await anyone.get(path, headers={"Authorization": b"Basic \xe9"})
        assert latin.status_code == 401, path
        assert "ada@example.com" not in page.text + asked.text


async def test_pages_render_with_charts_and_escape_what_developers_typed(
    portal: Portal, seeded: Seeded
) -> None:
    admin = portal.browser()
    for path in [*PAGES, f"{BASE}/developers/{seeded.ada_id}"]:
        page = await admin.get(path, headers=ADMIN)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert "<script>" not in page.text, path
        assert 'id="analytics-nav"' in page.text
    overview = (await admin.get(BASE, headers=ADMIN)).text
    assert overview.count("<svg") == 3  # revenue, calls per day, active applications
    funnel = (await admin.get(f"{BASE}/funnel?api=sim-swap&window=24h", headers=ADMIN)).text
    assert "bob@example.com" in funnel
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Ltd" in funnel


async def test_overview_revenue_is_the_ratings_and_calls_are_the_buckets(
    portal: Portal, seeded: Seeded
) -> None:
    report = (await portal.browser().get(BASE, headers=JSON)).json()
    revenue = report["revenue"]
    assert revenue["status"] == "draft"
    (api_row,) = revenue["byApi"]
    assert (api_row["group"], api_row["calls"], api_row["currency"]) == ("sim-swap", 3, "EUR")
    assert Decimal(api_row["amount"]) == Decimal("0.03")  # 3 calls at 0.01 on pay-as-you-go
    assert [r["group"] for r in revenue["byPlan"]] == ["pay-as-you-go"]
    (org_row,) = revenue["byOrg"]
    assert org_row["name"] == "Acme"
    assert revenue["totals"] == {"EUR": "0.03"}
    (active,) = report["activeApplications"]
    assert (active["clientId"], active["email"], active["organisation"]) == (
        seeded.ada_app,
        "ada@example.com",
        "Acme",
    )
    assert active["calls"] == 4 + 30 * 2 + 300
    assert sum(d["calls"] for d in report["daily"]) == active["calls"]
    assert len(report["daily"]) == report["days"] == 30


async def test_overview_revenue_has_no_fee_after_an_application_is_cut_off(
    portal: Portal, seeded: Seeded
) -> None:
    """As on the invoices: a plan's monthly fee runs until the application is disabled."""
    accounts = portal.parts.accounts
    portal.operator.gateway.admission.plans.subscribe(seeded.bob_app, "sim-swap", "enterprise")
    bob = accounts.application(seeded.bob_app)
    assert bob is not None
    accounts.disable_application(bob.org_id, seeded.bob_app)
    month = Month.of(portal.clock())
    portal.clock.now = month.end + 86_400  # the next month: Bob's fee has ended
    report = (await portal.browser().get(BASE, headers=JSON)).json()
    plans = {row["group"] for row in report["revenue"]["byPlan"]}
    assert "enterprise" not in plans, report["revenue"]


async def test_funnel_counts_each_step_and_lists_who_is_stuck(
    portal: Portal, seeded: Seeded
) -> None:
    admin = portal.browser()
    report = (await admin.get(f"{BASE}/funnel?api=sim-swap&window=24h", headers=JSON)).json()
    assert report["window"] == 86_400 and report["windowText"] == "1d"
    steps = {s["name"]: s for s in report["steps"]}
    assert [s["name"] for s in report["steps"]] == [
        "signed_up",
        "application_created",
        "first_token",
        "first_success:sim-swap",
    ]
    assert [s["entered"] for s in report["steps"]] == [2, 2, 1, 1]
    assert steps["first_token"]["conversion"] == 0.5
    (stuck,) = steps["application_created"]["stuck"]
    assert (stuck["developerId"], stuck["email"]) == (seeded.bob_id, "bob@example.com")
    assert stuck["organisation"] == "<script>alert(1)</script> Ltd"  # JSON carries it as it is
    # a window longer than the time since sign-up: Bob is still within it, not stuck
    young = (await admin.get(f"{BASE}/funnel?window=90d", headers=JSON)).json()
    assert all(not s["stuck"] for s in young["steps"])
    assert young["steps"][1]["inProgress"] == 1
    # chosen steps
    mine = (await admin.get(f"{BASE}/funnel?steps=signed_up,first_success", headers=JSON)).json()
    assert [s["entered"] for s in mine["steps"]] == [2, 1]
    text = (await admin.get(f"{BASE}/funnel?window=24h&format=csv", headers=ADMIN)).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["step", "entered", "conversion"]
    (bob_row,) = [r for r in rows if r[5] == seeded.bob_id]
    assert bob_row == [
        "application_created",
        "2",
        "1.0000",
        "1.0000",
        "0",
        seeded.bob_id,
        "bob@example.com",
        "<script>alert(1)</script> Ltd",
    ]


async def test_cohorts_and_segments(portal: Portal, seeded: Seeded) -> None:
    admin = portal.browser()
    before = (await admin.get(f"{BASE}/cohorts?weeks=4", headers=JSON)).json()
    assert before["cohorts"][0]["active"] == [None] * 4  # the sign-up week is not over
    portal.clock.advance(7 * 86_400.0)
    report = (await admin.get(f"{BASE}/cohorts?weeks=4", headers=JSON)).json()
    assert report["weeks"] == 4
    (cohort,) = report["cohorts"]
    assert cohort["size"] == 2
    assert cohort["active"] == [1, None, None, None]  # Ada called in week 0; week 1 goes on
    assert cohort["retention"][0] == 0.5
    page = (await admin.get(f"{BASE}/cohorts?weeks=4", headers=ADMIN)).text
    assert 'class="chart heat-table"' in page and ">50%<" in page
    rows = list(
        csv.reader(
            io.StringIO((await admin.get(f"{BASE}/cohorts?weeks=4&format=csv", headers=ADMIN)).text)
        )
    )
    assert rows[0] == ["week_start", "size", "week_0", "week_1", "week_2", "week_3"]
    assert rows[1][:2] == [cohort["weekStart"], "2"]

    segments = (await admin.get(f"{BASE}/segments", headers=JSON)).json()
    assert set(segments["segments"]) == {"churn_risk", "power_users", "upsell", "dormant"}
    only = (await admin.get(f"{BASE}/segments?segment=dormant", headers=JSON)).json()
    assert list(only["segments"]) == ["dormant"]


async def test_the_monitors_alert_is_listed_and_filtered(portal: Portal, seeded: Seeded) -> None:
    admin = portal.browser()
    report = (await admin.get(f"{BASE}/anomalies", headers=JSON)).json()
    assert report["total"] >= 1
    spikes = [a for a in report["alerts"] if a["kind"] == "volume_spike"]
    assert spikes, report["alerts"]
    spike = spikes[0]
    assert (spike["clientId"], spike["email"], spike["organisation"], spike["api"]) == (
        seeded.ada_app,
        "ada@example.com",
        "Acme",
        "sim-swap",
    )
    assert spike["observed"] == 300 and spike["baseline"] == 2 and spike["score"] >= 5
    assert {a["clientId"] for a in report["alerts"]} == {seeded.ada_app}
    raised = [a["raisedAt"] for a in report["alerts"]]
    assert raised == sorted(raised, reverse=True)
    for kind in ALERT_KINDS:
        only = (await admin.get(f"{BASE}/anomalies?kind={kind}", headers=JSON)).json()
        assert all(a["kind"] == kind for a in only["alerts"])
        assert only["total"] == report["counts"][kind]
    of_bob = await admin.get(f"{BASE}/anomalies?application={seeded.bob_app}", headers=JSON)
    assert of_bob.status_code == 200 and of_bob.json()["alerts"] == []
    page = (await admin.get(f"{BASE}/anomalies?kind=volume_spike", headers=ADMIN)).text
    assert 'data-kind="volume_spike"' in page and seeded.ada_app in page
    rows = list(
        csv.reader(
            io.StringIO((await admin.get(f"{BASE}/anomalies?format=csv", headers=ADMIN)).text)
        )
    )
    assert rows[0][:3] == ["raisedAt", "kind", "clientId"]
    assert len(rows) == 1 + report["total"]


async def test_a_developers_timeline(portal: Portal, seeded: Seeded) -> None:
    admin = portal.browser()
    report = (await admin.get(f"{BASE}/developers/{seeded.ada_id}", headers=JSON)).json()
    assert report["email"] == "ada@example.com"
    kinds = [e["kind"] for e in report["timeline"]]
    for kind in (
        "signed_up",
        "application_created",
        "key_generated",
        "first_token",
        "first_success",
        "plan_changed",
        "errors",
    ):
        assert kind in kinds, kinds
    assert kinds.index("signed_up") < kinds.index("first_token") < kinds.index("first_success")
    (errors,) = [e for e in report["timeline"] if e["kind"] == "errors"]
    assert errors["count"] == 1  # the call without a phone number
    assert [a["clientId"] for a in report["applications"]] == [seeded.ada_app]
    assert any(a["kind"] == "volume_spike" for a in report["alerts"])
    bob = (await admin.get(f"{BASE}/developers/{seeded.bob_id}", headers=JSON)).json()
    assert bob["alerts"] == [] and bob["applications"][0]["clientId"] == seeded.bob_app


@pytest.mark.parametrize(
    ("query", "status", "parameter"),
    [
        ("/funnel?api=no-such-api", 400, "api"),
        ("/funnel?window=soon", 400, "window"),
        ("/funnel?window=0s", 400, "window"),
        ("/funnel?window=400d", 400, "window"),
        ("/funnel?window=1e309", 400, "window"),
        ("/funnel?steps=signed_up,teleported", 400, "steps"),
        ("/funnel?steps=signed_up,signed_up", 400, "steps"),
        ("/funnel?api=sim-swap&api=kyc-match", 400, "api"),
        ("/cohorts?weeks=0", 400, "weeks"),
        ("/cohorts?weeks=13", 400, "weeks"),
        ("/cohorts?weeks=-1", 400, "weeks"),
        ("/cohorts?weeks=NaN", 400, "weeks"),
        ("/anomalies?kind=burglary", 400, "kind"),
        ("/anomalies?application=app-nobody", 404, "application"),
        ("/anomalies?days=0", 400, "days"),
        ("/segments?segment=whales", 400, "segment"),
        ("?month=2026-13", 400, "month"),
        ("?month=2099-01", 400, "month"),
        ("?days=91", 400, "days"),
        ("/developers/dev-nobody", 404, "developer_id"),
        ("/developers/%3Cscript%3E", 404, "developer_id"),
        ("?format=xml", 400, "format"),
    ],
)
async def test_bad_parameters_are_named(
    portal: Portal, query: str, status: int, parameter: str
) -> None:
    admin = portal.browser()
    as_json = await admin.get(f"{BASE}{query}", headers=JSON)
    assert as_json.status_code == status, as_json.text
    body = as_json.json()  # an unknown format too answers JSON to a client asking for it
    assert body["parameter"] == parameter and body["message"].startswith(f"{parameter}: ")
    assert body["code"] == ("NOT_FOUND" if status == 404 else "INVALID_ARGUMENT")
    page = await admin.get(f"{BASE}{query}", headers=ADMIN)
    assert page.status_code == status
    assert f"{parameter}: " in page.text and "<script>" not in page.text
    sep = "&" if "?" in query else "?"
    text = await admin.get(f"{BASE}{query}{sep}format=csv", headers=ADMIN)
    if parameter != "format":
        assert text.status_code == status and text.text.startswith(f"{parameter}: ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("24h", 86_400.0),
        ("7d", 604_800.0),
        ("2w", 1_209_600.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "window") == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "1y", "inf", "nan", "24 hours", "1e3h"])
def test_bad_durations_name_the_parameter(text: str) -> None:
    with pytest.raises(AnalyticsQueryError) as raised:
        parse_duration(text, "window")
    assert raised.value.parameter == "window" and raised.value.status == 400


async def test_a_view_feeds_only_the_buckets_closed_since_the_last(
    portal: Portal, seeded: Seeded
) -> None:
    """Calls in the bucket under way do not make the next view replay the weeks behind it;
    once their bucket has closed (grace included), the next view feeds that bucket alone."""
    operator = portal.operator
    source = AnalyticsSource.of(portal_host(operator), portal.parts.accounts)
    assert source is not None

    def errors() -> int:
        timeline = developer_report(source, seeded.ada_id)["timeline"]
        return sum(e["count"] for e in timeline if e["kind"] == "errors")

    assert errors() == 1 and source.replay.replays == 1
    fed = source.replay.fed_buckets
    for k in range(5):
        operator.gateway.usage.record(
            seeded.ada_app, "sim-swap", 500, subscriber=f"+3462{k:07d}", host="198.51.100.23"
        )
    operator.gateway.usage.flush()
    assert errors() == 1  # written, but its bucket is still open
    assert (source.replay.replays, source.replay.fed_buckets) == (1, fed)
    grace = operator.config.analytics.grace_seconds
    portal.clock.now = (portal.clock.now // HOUR + 1) * HOUR + grace - 1
    assert errors() == 1  # over, but not yet past its grace
    portal.clock.advance(1)
    assert errors() == 1 + 5
    assert (source.replay.replays, source.replay.fed_buckets) == (1, fed + 1)
    assert errors() == 6 and source.replay.replays == 1


async def test_the_admin_home_links_to_analytics(portal: Portal) -> None:
    home = await portal.browser().get("/portal/admin", headers=ADMIN)
    assert f'href="{BASE}"' in home.text


async def test_a_party_without_analytics_records_says_so(portal: Portal) -> None:
    """A party whose portal host keeps no activities (the aggregator) answers 404, naming why."""
    operator = portal.operator
    host = PortalHost(
        config=operator.config,
        db=operator.db,
        identity=operator.identity,
        plans=operator.gateway.admission.plans,
        clock=portal.clock,
        origin=operator.api_root,
        api_root=operator.api_root,
        apis=("sim-swap",),
        kind="aggregator",
    )
    app = FastAPI()
    install_developer_portal(app, host)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        for path in PAGES:
            answer = await http.get(path, headers=JSON)
            assert answer.status_code == 404, path
            assert answer.json()["parameter"] == "analytics"
