"""Quotas reach the live monitor: an operator in process (real portal, gateway, plan store and
monitor on a fake clock) where developers subscribe their applications to a plan with a small
monthly quota and call; at midnight the monitor judges quota farming with each application's
limit read from the plan store, and lists the applications near it as upsell candidates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operators.analytics.monitor import AnalyticsMonitor
from operators.analytics.quotas import monthly_limit
from operators.config import Plan, PriceTier, Quota, QuotaPeriod, TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app
from tests.operators.portal.conftest import (
    FRAUD,
    Browser,
    FakeClock,
    Portal,
    client_id_of,
    private_key_of,
)

DAY = 86_400.0
QUOTA = 20
"""The starter plan's calls a month."""
STARTER = Plan(
    name="starter",
    rate_per_second=100,
    burst=100,
    quota=Quota(limit=QUOTA, period=QuotaPeriod.MONTH),
)


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    base = example_operator(storage=str(tmp_path / "operator.db"))
    config = base.model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0), "plans": (*base.plans, STARTER)}
    )
    clock = FakeClock()
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    served = Portal(operator, create_operator_app(operator), clock)
    yield served
    for http in served.opened:
        await http.aclose()
    operator.close()


def _monitor(portal: Portal) -> AnalyticsMonitor:
    monitor = portal.operator.monitor
    assert monitor is not None
    return monitor


async def _developer(portal: Portal, email: str) -> Browser:
    browser = portal.browser()
    assert (await browser.sign_up(email, organisation=email)).status_code == 303
    return browser


async def _application(portal: Portal, developer: Browser, plan: str | None) -> tuple[str, str]:
    """A new application (on ``plan`` for SIM Swap, else the default) and a token for it."""
    created = await developer.create_application()
    assert created.status_code == 200, created.text
    client_id = client_id_of(created.text)
    if plan is not None:
        await _subscribe(developer, client_id, plan)
    client = await portal.application_client(client_id, private_key_of(created.text))
    token = (await client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    return client_id, str(token)


async def _subscribe(developer: Browser, client_id: str, plan: str) -> None:
    page = f"/portal/applications/{client_id}"
    changed = await developer.post(
        f"{page}/plans", {"api": "sim-swap", "plan": plan}, csrf_from=page
    )
    assert changed.status_code == 303, changed.text


async def _call(portal: Portal, token: str, times: int) -> None:
    http = portal.http("198.51.100.23")
    body = {"phoneNumber": portal.test_number(), "maxAge": 240}
    for _ in range(times):
        answer = await http.post(
            "/sim-swap/v2/check", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text


def _written(portal: Portal) -> None:
    """What the background writers would have written by the next tick."""
    portal.operator.gateway.usage.flush()
    portal.operator.activity.flush()


def _past_midnight(portal: Portal) -> float:
    """The clock to the monitor's first tick of the next day (its grace after midnight)."""
    midnight = (portal.clock() // DAY + 1) * DAY
    portal.clock.now = midnight + portal.operator.config.analytics.grace_seconds
    return midnight


async def test_three_applications_near_a_small_quota_are_farming_and_three_far_below_are_not(
    portal: Portal,
) -> None:
    monitor = _monitor(portal)
    assert await monitor.tick() == [], "the catch-up: nothing yet"
    developers: dict[str, list[str]] = {}
    for email, calls in (("farmer@example.com", 18), ("modest@example.com", 3)):
        browser = await _developer(portal, email)
        for _ in range(3):  # three applications within the hour
            client_id, token = await _application(portal, browser, "starter")
            await _call(portal, token, calls)
            developers.setdefault(email, []).append(client_id)
            portal.clock.advance(600)
    _written(portal)
    assert await monitor.tick() == [], "an hour's buckets close: no farming verdict mid-day"

    day = _past_midnight(portal) - DAY
    raised = await monitor.tick()
    farmer = portal.parts.accounts.by_email("farmer@example.com")
    assert farmer is not None
    assert [(a.kind, a.developer_id, a.bucket_start) for a in raised] == [
        ("quota_farming", farmer.developer_id, day)
    ]
    (farm,) = raised
    assert farm.client_id == developers["farmer@example.com"][0]
    assert all(f"{c} 90%" in farm.detail for c in developers["farmer@example.com"])
    assert monitor.alert_log.read() == raised, "kept for the admin pages"

    upsell = monitor.analytics.segments(now=portal.clock()).upsell
    assert {(e.client_id, e.api) for e in upsell} == {
        (c, "sim-swap") for c in developers["farmer@example.com"]
    }
    assert all(f"monthly limit of {QUOTA}" in e.reason for e in upsell)


async def test_a_plan_changed_to_a_small_quota_is_learnt_at_the_next_tick(
    portal: Portal,
) -> None:
    """On the default plan (1,000 calls a day) 18 calls are nothing; moved to the starter
    plan after they were made, the same calls are 90 % of its quota."""
    monitor = _monitor(portal)
    await monitor.tick()
    browser = await _developer(portal, "mover@example.com")
    moved = []
    for _ in range(3):
        client_id, token = await _application(portal, browser, None)
        await _call(portal, token, 18)
        moved.append(client_id)
    _written(portal)
    portal.clock.advance(3600)
    assert await monitor.tick() == []
    assert monitor.analytics.segments(now=portal.clock()).upsell == ()
    for client_id in moved:
        await _subscribe(browser, client_id, "starter")
    _past_midnight(portal)
    raised = await monitor.tick()
    assert [a.kind for a in raised] == ["quota_farming"]
    assert raised[0].client_id in moved and all(f"{c} 90%" in raised[0].detail for c in moved)


def test_the_monthly_limit_of_a_plan() -> None:
    assert monthly_limit(STARTER) == QUOTA
    daily = STARTER.model_copy(update={"quota": Quota(limit=1000)})
    assert monthly_limit(daily) == 30_000
    tiered = Plan(
        name="tiered",
        rate_per_second=1,
        burst=1,
        tiers=(PriceTier(up_to=5_000), PriceTier()),
    )
    assert monthly_limit(tiered) == 5_000
    per_minute = STARTER.model_copy(update={"quota": Quota(limit=60, period=QuotaPeriod.MINUTE)})
    assert monthly_limit(per_minute) is None, "a rate limit, not an allowance"
    assert monthly_limit(Plan(name="open", rate_per_second=1, burst=1)) is None
