"""The operator admin's analytics pages in Chromium, over an operator served on a loopback port
whose analytics run for real: three-second usage buckets (the operator config's analytics
section), the monitor scoring each as it closes.

The operator's epoch clock is the test's (it moves only when the test says so), so every call
lands in the bucket the test means, whatever the machine's load: the test steps the clock
over bucket boundaries once what it sent is written, and the monitor (sleeping in real time)
scores the buckets the clock has closed at its next wake. Two developers sign up through the
portal over HTTP: Bob creates an application and never gets a token; Ada subscribes hers to
pay-as-you-go, calls SIM swap, waits out the minimum history and floods the gateway within
one bucket. The monitor raises an alert for Ada's application and none for Bob's. In
Chromium (the admin credential sent as HTTP Basic) the admin opens the overview, the funnel
(Bob listed as stuck), the anomalies (Ada's alert) and, from the alert, Ada's timeline.
Screenshots go to ``$OGSIM_SCREENSHOTS`` when set (``OGSIM_SCREENSHOTS=docs/screenshots``
refreshes the README's ``analytics-*.png``), else to ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import base64
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from federation.client import ApplicationClient
from operators.config import AnalyticsConfig, DetectorConfig, TokenLifetimes, example_operator
from operators.operator import Operator
from tests.operators.portal.conftest import Browser, FakeClock, client_id_of, private_key_of

from .conftest import WAIT, Served, screenshot_folder, serve, wait_for

BUCKET = 3.0
ADMIN_SECRET = "admin-secret"
SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
FLOOD = 80
GRACE = 1.0
ANALYTICS = AnalyticsConfig(
    bucket_seconds=BUCKET,
    flush_seconds=0.5,
    grace_seconds=GRACE,
    detectors=DetectorConfig(season_buckets=None, recent_buckets=6, min_history=3),
)


@pytest.fixture
def clock() -> FakeClock:
    """The operator's epoch clock: near the real time (client assertions carry the real
    time), half a second into a bucket."""
    clock = FakeClock()
    clock.now = (math.floor(time.time() / BUCKET) + 1) * BUCKET + 0.5
    return clock


@pytest.fixture
def analysed(tmp_path: Path, clock: FakeClock) -> Iterator[Served]:
    """The example operator on a loopback port with short analytics buckets, its lifespan
    running the usage recorder, the activity log and the monitor, on the test's clock."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = example_operator(storage=str(tmp_path / "operator.sqlite3")).model_copy(
        update={
            "issuer": f"{base}/oauth",
            "lifetimes": TokenLifetimes(ciba_interval=1),
            "admin_secret": ADMIN_SECRET,
            "analytics": ANALYTICS,
        }
    )
    with serve(Operator.from_config(config, clock=clock), sock, base) as served:
        yield served


def _bucket(at: float) -> int:
    return math.floor(at / BUCKET)


def _written(served: Served, client_id: str, bucket: int, calls: int) -> None:
    """Wait until the usage recorder has written ``calls`` calls of ``client_id`` in
    ``bucket``: only then may the clock close it."""
    usage = served.operator.gateway.usage
    assert usage is not None

    def done() -> bool:
        found = usage.read_buckets(bucket * BUCKET, (bucket + 1) * BUCKET, client_ids=[client_id])
        return sum(b.calls for b in found) >= calls

    wait_for(done, f"{calls} calls of bucket {bucket} written")


async def _traffic(served: Served, clock: FakeClock) -> dict[str, Any]:
    """Bob's stalled sign-up, Ada's first calls and, after the minimum history, her flood."""
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as bob_http:
        bob = Browser(bob_http)
        assert (
            await bob.sign_up("bob@example.com", organisation="Slow Co", name="Bob Stall")
        ).status_code == 303
        bob_signed_up = clock()
        bob_app = client_id_of((await bob.create_application(name="Someday")).text)
    async with httpx.AsyncClient(base_url=served.base, timeout=WAIT) as http:
        ada = Browser(http)
        ada_started = clock()
        assert (
            await ada.sign_up("ada@example.com", organisation="Acme Fraud Labs")
        ).status_code == 303
        created = await ada.create_application(name="Fraud shield")
        ada_app = client_id_of(created.text)
        page = f"/portal/applications/{ada_app}"
        plan = await ada.post(
            f"{page}/plans", {"api": "sim-swap", "plan": "pay-as-you-go"}, csrf_from=page
        )
        assert plan.status_code == 303
        key = ECKey.import_key(private_key_of(created.text))
        client = await ApplicationClient.discover(ada_app, key, served.operator.issuer, http)
        token = (await client.client_credentials(SCOPE))["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        number = served.operator.subscribers.test_number("approves")

        async def call(body: dict[str, Any]) -> int:
            answer = await http.post("/sim-swap/v2/check", json=body, headers=headers)
            return answer.status_code

        clock.advance(1.0)
        assert await call({"phoneNumber": number, "maxAge": 240}) == 200
        ada_converted = clock() - ada_started
        assert await call({"maxAge": 240}) == 422  # no phone number: an error on the timeline
        first = _bucket(clock())
        _written(served, ada_app, first, 2)
        # the flood fills a bucket of its own once the key has its minimum history
        flood_bucket = first + 3
        clock.now = flood_bucket * BUCKET + 0.2

        async def caller(n: int) -> list[int]:
            return [await call({"phoneNumber": number, "maxAge": 240}) for _ in range(n)]

        statuses = [
            s
            for part in await asyncio.gather(*(caller(FLOOD // 8) for _ in range(8)))
            for s in part
        ]
        _written(served, ada_app, flood_bucket, FLOOD)
        # past the flood's bucket and the grace: the monitor scores it at its next wake
        clock.now = (flood_bucket + 1) * BUCKET + GRACE + 0.1
    return {
        "ada_app": ada_app,
        "bob_app": bob_app,
        "bob_signed_up": bob_signed_up,
        "ada_converted": ada_converted,
        "flood_bucket": flood_bucket,
        "statuses": statuses,
    }


def test_an_admin_sees_the_funnel_a_spike_alert_and_a_timeline(
    analysed: Served, clock: FakeClock, chrome: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    served = analysed
    shots = screenshot_folder(tmp_path)
    seen = asyncio.run(_traffic(served, clock))
    assert seen["statuses"].count(200) == FLOOD, seen["statuses"]
    monitor = served.operator.monitor
    assert monitor is not None

    def ada_alerted() -> bool:
        return any(a.client_id == seen["ada_app"] for a in monitor.alert_log.read())

    wait_for(ada_alerted, "the monitor's alert for the flooding application", timeout=90)
    alerts = monitor.alert_log.read()
    assert {a.client_id for a in alerts} == {seen["ada_app"]}, alerts
    spike = next(a for a in alerts if a.kind == "volume_spike")
    assert spike.bucket_start == seen["flood_bucket"] * BUCKET and spike.observed == FLOOD

    # The admin's browser sends the operator admin credential with every request.
    basic = base64.b64encode(f"admin:{ADMIN_SECRET}".encode()).decode()
    chrome.execute_cdp_cmd("Network.enable", {})
    chrome.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}}
    )
    chrome.set_window_size(1280, 1200)

    chrome.get(f"{served.base}/portal/admin/analytics")
    wait_for(lambda: bool(chrome.find_elements(By.ID, "active-applications")), "the overview")
    assert seen["ada_app"] in chrome.find_element(By.ID, "active-applications").text
    assert "sim-swap" in chrome.find_element(By.ID, "revenue-api").text
    assert chrome.find_element(By.ID, "calls-chart").find_elements(By.TAG_NAME, "rect")
    chrome.save_screenshot(str(shots / "analytics-overview.png"))

    # Bob's window has run out; Ada converted well within it.
    window = math.floor(clock() - seen["bob_signed_up"]) - 1
    assert seen["ada_converted"] < window
    chrome.get(f"{served.base}/portal/admin/analytics/funnel?api=sim-swap&window={window}s")
    wait_for(lambda: bool(chrome.find_elements(By.ID, "funnel-steps")), "the funnel")
    stuck = chrome.find_elements(By.CLASS_NAME, "stuck-developer")
    assert [row.text.split()[0] for row in stuck] == ["bob@example.com"]
    assert "Slow Co" in stuck[0].text
    steps = chrome.find_element(By.ID, "funnel-steps").text
    assert "first_token 1 50%" in steps, steps
    chrome.save_screenshot(str(shots / "analytics-funnel.png"))

    chrome.get(f"{served.base}/portal/admin/analytics/anomalies")
    wait_for(lambda: bool(chrome.find_elements(By.ID, "alerts")), "the alerts table")
    rows = chrome.find_elements(By.CLASS_NAME, "alert-row")
    assert {row.get_attribute("data-client") for row in rows} == {seen["ada_app"]}
    assert "volume_spike" in {row.get_attribute("data-kind") for row in rows}
    assert "ada@example.com" in rows[0].text
    chrome.save_screenshot(str(shots / "analytics-anomalies.png"))

    # From the alert to the developer's timeline.
    rows[0].find_element(By.LINK_TEXT, "ada@example.com").click()
    wait_for(lambda: bool(chrome.find_elements(By.ID, "timeline")), "Ada's timeline")
    kinds = [
        e.get_attribute("data-kind") for e in chrome.find_elements(By.CLASS_NAME, "timeline-entry")
    ]
    for kind in (
        "signed_up",
        "application_created",
        "key_generated",
        "plan_changed",
        "first_token",
        "first_success",
        "errors",
    ):
        assert kind in kinds, kinds
    assert chrome.find_element(By.ID, "developer-email").text == "ada@example.com"
    assert chrome.find_element(By.ID, "developer-alerts").find_elements(By.TAG_NAME, "tr")
    chrome.save_screenshot(str(shots / "analytics-timeline.png"))
