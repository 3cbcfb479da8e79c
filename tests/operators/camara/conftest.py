"""Fixtures shared with the other API-layer tests (see ``tests/operators/direct_backends.py``),
and a whole operator behind its gateway for the tests that send real tokens."""

from collections.abc import AsyncIterator

import httpx
import pytest

from federation.client import ApplicationClient, new_client_key
from operators.camara import ALL_SCOPES, OPERATIONS
from operators.operator import Operator, create_operator_app
from tests.operators.direct_backends import (  # noqa: F401 - fixtures, found by name
    Direct,
    base,
    client,
    context,
    functions,
    integrator,
)
from tests.operators.gateway.conftest import ADMIN, FakeClock, Harness, gateway_config


@pytest.fixture
async def gateway_harness() -> AsyncIterator[Harness]:
    """An operator, its gateway and ``camara-app``: every API's scope, every purpose, the
    enterprise plan (so no test is throttled), client credentials and CIBA."""
    clock = FakeClock()
    operator = Operator.from_config(gateway_config(), clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        key = new_client_key()
        registered = await http.post(
            f"{operator.issuer}/admin/clients",
            headers=ADMIN,
            json={
                "client_id": "camara-app",
                "client_name": "Every CAMARA API",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
                "scope": " ".join(sorted(ALL_SCOPES)),
                "purposes": sorted({op.purpose for op in OPERATIONS}),
            },
        )
        assert registered.status_code == 201, registered.text
        for api in sorted({op.api for op in OPERATIONS}):
            subscribed = await http.put(
                f"/admin/subscriptions/camara-app/{api}", json={"plan": "enterprise"}, headers=ADMIN
            )
            assert subscribed.status_code < 300, subscribed.text
        app_client = await ApplicationClient.discover("camara-app", key, operator.issuer, http)
        app_client.clock = clock

        async def no_wait(_: float) -> None:
            return None

        app_client.sleep = no_wait
        yield Harness(operator, http, app_client, clock)
    operator.close()
