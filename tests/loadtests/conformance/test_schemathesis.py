"""Schemathesis against the operator's own OpenAPI document: no 500, no answer off its schema.

The CAMARA endpoints publish the request schemas their handlers enforce (``_doc`` in
``operators/camara/routers.py``), so generated bodies reach the APIs' validation and logic,
both with a valid two-legged token carrying every scope (past authentication) and without one
(the gateway's 401 must still be a documented CAMARA error body).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from federation.client import ApplicationClient, new_client_key
from operators.camara.scopes import OPERATION_SCOPES
from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app

CHECKS = (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
)
EXAMPLES = 12

_operator = Operator.from_config(
    example_operator().model_copy(
        update={"lifetimes": TokenLifetimes(ciba_interval=0), "core_time_scale": 0.01}
    )
)
_app = create_operator_app(_operator)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app).include(
    path_regex=r"^/(sim-swap|number-verification|device-|location-|quality-on-demand|"
    r"qos-profiles|kyc-match)"
)


async def _token() -> str:
    """A two-legged token with every CAMARA scope, got the way an application gets one."""
    transport = httpx.ASGITransport(app=_app, client=("203.0.113.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url=_operator.api_root) as http:
        key = new_client_key()
        scopes = sorted({s for alts in OPERATION_SCOPES.values() for a in alts for s in a})
        response = await http.post(
            f"{_operator.issuer}/admin/clients",
            headers={"Authorization": f"Bearer {_operator.config.admin_secret}"},
            json={
                "client_id": "fuzzer",
                "client_name": "schemathesis",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": ["client_credentials"],
                "scope": " ".join(scopes),
                "purposes": ["dpv:FraudPreventionAndDetection"],
            },
        )
        response.raise_for_status()
        for api in {path.split("/")[1] for _, path in OPERATION_SCOPES}:
            await http.put(
                f"/admin/subscriptions/fuzzer/{api}",
                headers={"Authorization": f"Bearer {_operator.config.admin_secret}"},
                json={"plan": "enterprise"},
            )
        client = await ApplicationClient.discover("fuzzer", key, _operator.issuer, http)
        answer = await client.client_credentials(
            " ".join([*scopes, "dpv:FraudPreventionAndDetection"])
        )
        return str(answer["access_token"])


@pytest.fixture(scope="module")
def token() -> str:
    return asyncio.run(_token())


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@_SETTINGS
def test_with_a_valid_token(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_without_a_token(case: Any) -> None:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call_and_validate(checks=CHECKS)
    # threat protection runs before authentication, so a wrong method, content type or an
    # oversized body is refused as such; nothing without a token ever succeeds
    assert response.status_code in {400, 401, 405, 413, 415}, response.text
