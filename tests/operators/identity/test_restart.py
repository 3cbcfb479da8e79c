"""Restarting an operator on the same database file loses nothing it acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.config import example_operator
from operators.identity import TokenContextError

from .conftest import FakeClock, build_operator

LI_SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    config = example_operator(storage=str(tmp_path / "telco-es.sqlite"))
    first = build_operator(config, clock)
    app = first.register()
    number = first.number("slow-consent")
    async with first.http() as http:
        started = (await http.post("/bc-authorize", data={
            **app.auth("/bc-authorize"), "login_hint": f"tel:{number}",
            "scope": "number-verification:verify dpv:IdentityVerification"})).json()
        bearer = app.bearer_assertion(f"tel:{first.number('approves')}", LI_SCOPE)
        issued = await http.post("/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": bearer})
        access_token = issued.json()["access_token"]
        used_assertion = app.assertion(first.server.url("/introspect"))
        introspected = await http.post("/introspect", data={
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": used_assertion, "token": access_token})
        assert introspected.json()["active"] is True
    jwks = first.server.jwks()
    first.db.close()

    clock.advance(10)
    second = build_operator(config, clock)
    app.server = second.server
    assert second.server.jwks() == jwks
    assert second.server.clients.get(app.client_id) is not None
    claims = second.server.verify_access_token(access_token)
    assert second.server.token_context(claims).msisdn == first.number("approves")
    async with second.http() as http:
        polled = await http.post("/token", data={
            **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
            "auth_req_id": started["auth_req_id"]})
        assert polled.status_code == 200, polled.text  # the handset answered during the restart
        replay = await http.post("/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": bearer})
        assert replay.json()["error"] == "invalid_grant"
        replayed_auth = await http.post("/introspect", data={
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": used_assertion, "token": access_token})
        assert replayed_auth.status_code == 401
        await http.post("/revoke", data={**app.auth("/revoke"), "token": access_token})
    consents = second.server.consents.for_subscriber(number)
    assert len(consents) == 1
    second.db.close()

    third = build_operator(config, clock)
    with pytest.raises(TokenContextError):
        third.server.token_context(third.server.verify_access_token(access_token))
    assert third.server.consents.for_subscriber(number) == consents
    third.db.close()
