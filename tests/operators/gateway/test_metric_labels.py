"""The gateway's request metrics name what was called and nothing a caller can make up: the
identity server's token endpoint apart from its other endpoints (calibration fits grants to
it), and every unknown path under one label, however many a caller tries."""

from __future__ import annotations

import httpx

from operators.gateway.gateway import unrouted_labels
from operators.operator import Operator, create_operator_app

from .conftest import FRAUD, SCOPES, FakeClock, gateway_config, register_fraud_app


def test_unrouted_answers_are_labelled_by_their_api_and_identity_endpoint() -> None:
    assert unrouted_labels("/oauth/token", True) == ("oauth", "token")
    assert unrouted_labels("/oauth/bc-authorize", True) == ("oauth", "bc-authorize")
    assert unrouted_labels("/oauth/.well-known/openid-configuration", True) == ("oauth", "-")
    assert unrouted_labels("/portal/apps", True) == ("portal", "-")
    assert unrouted_labels("/wp-admin/x", False) == ("-", "-")
    assert unrouted_labels("/oauth/token", False) == ("-", "-")


async def test_grants_and_unknown_paths_in_the_operators_metrics() -> None:
    clock = FakeClock()
    operator = Operator.from_config(gateway_config(), clock=clock, monotonic=clock)
    transport = httpx.ASGITransport(app=create_operator_app(operator))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        client = await register_fraud_app(http, operator, clock, scope=SCOPES, purposes=[FRAUD])
        before = operator.gateway.metrics.exposition().decode()
        for _ in range(3):
            await client.client_credentials(f"sim-swap:check {FRAUD}")
        for probe in ("wp-admin", "phpmyadmin", "cgi-bin", "xyz-123"):
            assert (await http.get(f"/{probe}/login")).status_code == 404
        # a route that exists answering other than 200 keeps its API's label
        assert (await http.get("/oauth/token")).status_code == 405
        after = operator.gateway.metrics.exposition().decode()

    def count(text: str, api: str, operation: str) -> float:
        prefix = f'ogsim_gateway_request_seconds_count{{api="{api}",operation="{operation}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0

    assert count(after, "oauth", "token") - count(before, "oauth", "token") == 4
    assert count(after, "-", "-") - count(before, "-", "-") == 4
    for probe in ("wp-admin", "phpmyadmin", "cgi-bin", "xyz-123"):
        assert probe not in after
