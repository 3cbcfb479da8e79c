"""The CAMARA operations' plain ASGI chain answers exactly as FastAPI's stack did.

The same calls go to two operators built alike: one serves CAMARA operations through
:class:`~operators.gateway.chain.GatewayApp`'s chain, the other with the chain's table
emptied, so every call takes FastAPI's middleware stack and router (the path before the chain).
Statuses, error bodies, echoed correlators, replays and the usage events must be the same.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from operators.gateway.chain import CamaraRoutes, GatewayApp
from operators.operator import Operator, create_operator_app

from .conftest import FRAUD, SCOPES, FakeClock, gateway_config, register_fraud_app

SESSION = "/quality-on-demand/v1/sessions"


async def _answers(direct: bool) -> tuple[list[tuple[Any, ...]], int, bool]:
    """Every answer of one fixed sequence of calls, the usage events, and whether the chain
    served the SIM Swap check."""
    clock = FakeClock()
    operator = Operator.from_config(gateway_config(), clock=clock, monotonic=clock)
    app = create_operator_app(operator)
    assert isinstance(app, GatewayApp)
    if not direct:
        app.camara = CamaraRoutes(())
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    answers: list[tuple[Any, ...]] = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
            client = await register_fraud_app(
                http,
                operator,
                clock,
                scope=f"{SCOPES} quality-on-demand:sessions:read",
                purposes=[FRAUD],
            )
            number = operator.subscribers.test_number("approves")
            three = (await client.ciba(f"tel:{number}", f"sim-swap:check {FRAUD}"))["access_token"]
            two = (await client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
            bearer = {"Authorization": f"Bearer {three}"}
            json_type = {"Content-Type": "application/json"}
            keyed = {"x-correlator": "c-1", "Idempotency-Key": "k-1"}
            calls: list[tuple[str, str, dict[str, str], bytes]] = [
                ("POST", "/sim-swap/v2/check", {**bearer, **keyed}, b"{}"),
                ("POST", "/sim-swap/v2/check", {**bearer, **keyed}, b"{}"),
                ("POST", "/sim-swap/v2/check", bearer, b'{"maxAge": 24}'),
                ("POST", "/sim-swap/v2/check", {}, b"{}"),
                ("POST", "/sim-swap/v2/check", {**bearer, "x-correlator": "bad value!"}, b"{}"),
                ("POST", "/sim-swap/v2/check", bearer, b'{"maxAge": "24"}'),
                ("POST", "/sim-swap/v2/check", bearer, b'{"maxAge": 24, "maxAge": 25}'),
                ("POST", "/sim-swap/v2/check", {**bearer, "Content-Type": "text/plain"}, b"{}"),
                ("GET", "/sim-swap/v2/check", bearer, b""),
                ("POST", "/sim-swap/v2/check/", bearer, b"{}"),
                (
                    "POST",
                    "/sim-swap/v2/check",
                    {"Authorization": f"Bearer {two}"},
                    f'{{"phoneNumber": "{number}"}}'.encode(),
                ),
                ("GET", f"{SESSION}/3fa85f64-5717-4562-b3fc-2c963f66afa6", bearer, b""),
                ("GET", f"{SESSION}/not-a-uuid", bearer, b""),
                ("DELETE", f"{SESSION}/3fa85f64-5717-4562-b3fc-2c963f66afa6", {}, b""),
            ]
            for method, path, headers, body in calls:
                answer = await http.request(
                    method, path, headers={**json_type, **headers}, content=body
                )
                echoed = answer.headers.get("x-correlator")
                answers.append(
                    (
                        method,
                        path,
                        answer.status_code,
                        answer.json() if answer.content else None,
                        echoed if echoed == "c-1" else echoed is not None,
                        answer.headers.get("idempotent-replayed"),
                    )
                )
        scope = {"type": "http", "method": "POST", "path": "/sim-swap/v2/check"}
        served = app.camara.find(scope) is not None
        return answers, len(operator.gateway.ledger.events()), served
    finally:
        operator.close()


async def test_the_chain_answers_as_fastapis_stack_did() -> None:
    direct, direct_events, served = await _answers(direct=True)
    stacked, stacked_events, not_served = await _answers(direct=False)
    assert served and not not_served
    assert direct == stacked
    assert direct_events == stacked_events == 3  # the first check (replayed once), two others
    statuses = [answer[2] for answer in direct]
    assert statuses[:4] == [200, 200, 200, 401]
    assert direct[1][5] == "true"  # the reused idempotency key got its stored answer back


@pytest.mark.parametrize(
    ("method", "path", "found"),
    [
        ("POST", "/sim-swap/v2/check", "/sim-swap/v2/check"),
        ("GET", "/sim-swap/v2/check", None),
        ("HEAD", "/quality-on-demand/v1/sessions/x", None),
        ("POST", "/sim-swap/v2/check/", None),
        ("DELETE", f"{SESSION}/abc", f"{SESSION}/{{sessionId}}"),
        ("POST", f"{SESSION}/abc/extend", f"{SESSION}/{{sessionId}}/extend"),
        ("GET", "/admin/usage", None),
    ],
)
def test_the_chain_finds_only_camara_operations(method: str, path: str, found: str | None) -> None:
    operator = Operator.from_config(gateway_config())
    try:
        app = create_operator_app(operator)
        assert isinstance(app, GatewayApp)
        scope: dict[str, Any] = {"type": "http", "method": method, "path": path}
        route = app.camara.find(scope)
        assert (route.path if route is not None else None) == found
        if found is not None and "{" in found:
            assert scope["path_params"] == {"sessionId": "abc"}
        mounted = {**scope, "root_path": "/under"}
        assert app.camara.find(mounted) is None
    finally:
        operator.close()
