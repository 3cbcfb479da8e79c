"""Through the real operator app: what a developer does in the portal becomes milestones in
the activity log, and what their application calls becomes usage buckets (subscriber hashed,
source by network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app
from tests.operators.portal.conftest import (
    FRAUD,
    Browser,
    FakeClock,
    Portal,
    client_id_of,
    private_key_of,
)

SCOPE = f"sim-swap:check {FRAUD}"


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    config = example_operator(storage=str(tmp_path / "operator.db")).model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0)}
    )
    clock = FakeClock()
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    served = Portal(operator, create_operator_app(operator), clock)
    yield served
    for http in served.opened:
        await http.aclose()
    operator.close()


async def test_portal_actions_become_milestones_and_calls_become_buckets(
    portal: Portal,
) -> None:
    operator = portal.operator
    developer: Browser = portal.browser()
    assert (await developer.sign_up("ada@example.com")).status_code == 303
    created = await developer.create_application()
    assert created.status_code == 200, created.text
    client_id = client_id_of(created.text)
    client = await portal.application_client(client_id, private_key_of(created.text))
    number = portal.test_number()
    http = portal.http("198.51.100.23")
    statuses = []
    for _ in range(2):  # the second token is not a first
        token = (await client.client_credentials(SCOPE))["access_token"]
        for body in ({"phoneNumber": number, "maxAge": 240}, {"maxAge": 240}):
            answer = await http.post(
                "/sim-swap/v2/check", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            statuses.append(answer.status_code)
    assert statuses == [200, 422, 200, 422]
    page = f"/portal/applications/{client_id}"
    assert (
        await developer.post(f"{page}/rotate", {"key": "generate"}, csrf_from=page)
    ).status_code == 200
    assert (
        await developer.post(
            f"{page}/plans", {"api": "sim-swap", "plan": "enterprise"}, csrf_from=page
        )
    ).status_code == 303
    assert (await developer.confirm_email(portal, "ada@example.com")).status_code == 200
    assert (await developer.post(f"{page}/production", csrf_from=page)).status_code == 303
    portal.parts.accounts.approve_production(client_id)
    ada = portal.parts.accounts.by_email("ada@example.com")
    assert ada is not None
    assert portal.parts.deactivate(ada.developer_id) == [client_id]
    portal.parts.deactivate(ada.developer_id)  # again: nothing more happened

    assert operator.activity.flush() > 0
    found = [(a.kind, a.client_id, a.api, a.detail) for a in operator.activity.read()]
    assert found == [
        ("signed_up", "", "", ""),
        ("application_created", client_id, "", "Fraud checks"),
        ("key_generated", client_id, "", "generated"),
        ("first_token", client_id, "", ""),
        ("first_success", client_id, "sim-swap", ""),
        ("key_generated", client_id, "", "generated"),
        ("plan_changed", client_id, "sim-swap", "enterprise"),
        ("email_confirmed", "", "", ""),
        ("production_requested", client_id, "", ""),
        ("production_approved", client_id, "", ""),
        ("deactivated", "", "", ""),
        ("application_suspended", client_id, "", ""),
    ]
    owners = {(a.developer_id, a.org_id) for a in operator.activity.read()}
    assert owners == {(ada.developer_id, ada.org_id)}, "every milestone names its developer"

    usage = operator.gateway.usage
    assert usage.flush() == 4
    (bucket,) = usage.read_buckets()
    assert (bucket.client_id, bucket.api) == (client_id, "sim-swap")
    assert (bucket.calls, bucket.successes, bucket.errors) == (4, 2, 2)
    assert bucket.subscribers.keys == {usage.subscriber_key(number)}
    assert bucket.sources == {"198.51.100.0/24": 4}
    assert bucket.start == portal.clock() // 3600 * 3600


async def test_an_admin_plan_change_is_a_milestone_too(portal: Portal) -> None:
    operator = portal.operator
    developer = portal.browser()
    await developer.sign_up("grace@example.com")
    client_id = client_id_of((await developer.create_application()).text)
    changed = await portal.http().put(
        f"/admin/subscriptions/{client_id}/sim-swap",
        json={"plan": "free"},
        headers={"Authorization": "Bearer admin-secret"},
    )
    assert changed.status_code == 200, changed.text
    operator.activity.flush()
    last = operator.activity.read()[-1]
    grace = portal.parts.accounts.by_email("grace@example.com")
    assert grace is not None
    assert (last.kind, last.api, last.detail, last.developer_id) == (
        "plan_changed",
        "sim-swap",
        "free",
        grace.developer_id,
    )
