"""The cached token context never outlives a change to the grant behind it."""

from __future__ import annotations

from pathlib import Path

import httpx

from operators.identity import IdentityServer
from operators.operator import Operator, create_operator_app
from operators.storage import Database
from operators.subscriber_base import ChangeKind, SubscriberBase

from .conftest import FRAUD, SCOPES, FakeClock, Harness, gateway_config, register_fraud_app


async def test_scheduled_opt_out_takes_effect_when_due(harness: Harness) -> None:
    token = await harness.three_legged()
    number = harness.number("approves")
    harness.operator.subscribers.record_change(
        number, ChangeKind.OPT_OUT, {"opt_out": True}, at=harness.clock() + 30
    )
    assert (await harness.check(token)).status_code == 200  # cached from now on
    assert (await harness.check(token)).status_code == 200
    harness.clock.advance(30)
    assert (await harness.check(token)).status_code == 403


async def test_revocation_by_another_replica_is_seen_on_the_next_call(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = str(tmp_path / "shared.sqlite3")
    config = gateway_config().model_copy(update={"storage": path})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        client = await register_fraud_app(
            http,
            operator,
            clock,
            scope=SCOPES,
            purposes=[FRAUD],
            grant_types=("urn:openid:params:grant-type:ciba",),
        )
        number = operator.subscribers.test_number("approves")
        token = (await client.ciba(f"tel:{number}", f"sim-swap:check {FRAUD}"))["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            response = await http.post("/sim-swap/v2/check", json={"maxAge": 24}, headers=auth)
            assert response.status_code == 200

        other_db = Database(path)  # another replica of the operator, same database file
        other = IdentityServer(
            config, other_db, SubscriberBase(config, other_db, clock=clock), clock
        )
        jti = other.verify_access_token(token).jti
        other.tokens.revoke_jti(jti)
        response = await http.post("/sim-swap/v2/check", json={"maxAge": 24}, headers=auth)
        assert response.status_code == 401
        other_db.close()
    operator.close()
