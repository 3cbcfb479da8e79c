"""An application made in the portal works at the identity server and the gateway, and what
the portal does to it (rotate, disable, plans, the kill switch) is what the next call sees."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from federation.client import ApplicationClient, OAuthClientError
from tests.operators.portal.conftest import FRAUD, Browser, Portal, client_id_of, private_key_of

SCOPE = f"sim-swap:check {FRAUD}"
CHECK = "/sim-swap/v2/check"


async def made(portal: Portal, developer: Browser,
               **fields: Any) -> tuple[str, ApplicationClient, dict[str, Any]]:
    """Create an application with a generated key; returns its id, client and private JWK."""
    created = await developer.create_application(**fields)
    assert created.status_code == 200, created.text
    assert "shown once" in created.text
    private = private_key_of(created.text)
    client_id = client_id_of(created.text)
    assert f'download="{client_id}.jwk"' in created.text
    return client_id, await portal.application_client(client_id, private), private


async def check(portal: Portal, token: str) -> httpx.Response:
    return await portal.http().post(CHECK, json={"phoneNumber": portal.test_number(),
                                                 "maxAge": 240},
                                    headers={"Authorization": f"Bearer {token}"})


async def token_of(client: ApplicationClient) -> str:
    return str((await client.client_credentials(SCOPE))["access_token"])


async def test_a_generated_key_gets_a_token_and_a_sim_swap_answer(
        portal: Portal, developer: Browser) -> None:
    client_id, client, private = await made(portal, developer)
    token = await token_of(client)
    answer = await check(portal, token)
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["swapped"], bool)
    page = await developer.get(f"/portal/applications/{client_id}")
    assert private["kid"] in page.text and "sandbox" in page.text
    assert private["d"] not in page.text, "the private key is shown only once"


async def test_an_uploaded_public_key_is_the_one_that_works(portal: Portal,
                                                           developer: Browser) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    created = await developer.create_application(jwk=json.dumps(key.as_dict(private=False)))
    assert created.status_code == 303, created.text
    client_id = created.headers["location"].rsplit("/", 1)[1]
    client = await portal.application_client(client_id, dict(key.as_dict(private=True)))
    assert (await check(portal, await token_of(client))).status_code == 200
    stranger = await portal.application_client(
        client_id, dict(ECKey.generate_key("P-256", auto_kid=True).as_dict(private=True)))
    with pytest.raises(OAuthClientError) as refused:
        await token_of(stranger)
    assert refused.value.error == "invalid_client"


async def test_rotating_the_key_refuses_the_old_one_and_accepts_the_new(
        portal: Portal, developer: Browser) -> None:
    client_id, old_client, old = await made(portal, developer)
    rotated = await developer.post(f"/portal/applications/{client_id}/rotate",
                                   {"key": "generate"},
                                   csrf_from=f"/portal/applications/{client_id}")
    assert rotated.status_code == 200 and "shown once" in rotated.text
    new = private_key_of(rotated.text)
    assert new["kid"] != old["kid"]
    with pytest.raises(OAuthClientError) as refused:
        await token_of(old_client)
    assert refused.value.error == "invalid_client"
    new_client = await portal.application_client(client_id, new)
    assert (await check(portal, await token_of(new_client))).status_code == 200


async def test_disabling_an_application_refuses_its_tokens_and_new_ones(
        portal: Portal, developer: Browser) -> None:
    client_id, client, _ = await made(portal, developer)
    token = await token_of(client)
    assert (await check(portal, token)).status_code == 200
    disabled = await developer.post(f"/portal/applications/{client_id}/disable",
                                    csrf_from=f"/portal/applications/{client_id}")
    assert disabled.status_code == 303
    refused = await check(portal, token)
    assert refused.status_code in (401, 403)
    assert {"status", "code", "message"} <= set(refused.json())
    with pytest.raises(OAuthClientError) as no_token:
        await token_of(client)
    assert no_token.value.status == 401 and no_token.value.error == "invalid_client"
    page = await developer.get(f"/portal/applications/{client_id}")
    assert 'id="status" class="status-disabled">disabled' in page.text


async def test_the_kill_switch_refuses_the_very_next_call_and_the_token_endpoint(
        portal: Portal, developer: Browser) -> None:
    client_id, client, _ = await made(portal, developer)
    _, second_client, _ = await made(portal, developer, name="Second")
    token, second_token = await token_of(client), await token_of(second_client)
    assert (await check(portal, token)).status_code == 200
    ada = portal.parts.accounts.by_email("ada@example.com")
    assert ada is not None
    suspended = portal.parts.deactivate(ada.developer_id)
    assert client_id in suspended and len(suspended) == 2
    for held in (token, second_token):
        refused = await check(portal, held)
        assert refused.status_code in (401, 403), refused.text
        body = refused.json()
        assert body["status"] == refused.status_code and body["code"] and body["message"]
    with pytest.raises(OAuthClientError) as no_token:
        await token_of(client)
    assert no_token.value.error == "invalid_client"
    introspected = portal.operator.identity.tokens.introspect(token)
    assert introspected["active"] is False
    assert (await developer.get("/portal")).status_code == 303, "signed out of the portal"
    assert (await developer.sign_in("ada@example.com")).status_code == 401


async def test_a_plan_change_is_the_next_call_s_plan(portal: Portal,
                                                     developer: Browser) -> None:
    client_id, _, _ = await made(portal, developer)
    plans = portal.operator.gateway.admission.plans
    default = plans.plan_for(client_id, "sim-swap").name
    other = next(p.name for p in portal.operator.config.plans if p.name != default)
    page = f"/portal/applications/{client_id}"
    changed = await developer.post(f"{page}/plans", {"api": "sim-swap", "plan": other},
                                   csrf_from=page)
    assert changed.status_code == 303
    assert plans.plan_for(client_id, "sim-swap").name == other
    assert f'id="plan-sim-swap">{other}' in (await developer.get(page)).text
    unknown = await developer.post(f"{page}/plans", {"api": "sim-swap", "plan": "platinum"},
                                   csrf_from=page)
    assert unknown.status_code == 400 and "plan:" in unknown.text
    unused = await developer.post(f"{page}/plans", {"api": "kyc-match", "plan": other},
                                  csrf_from=page)
    assert unused.status_code == 400 and "api:" in unused.text


async def test_an_application_needs_apis_purposes_and_a_name(portal: Portal,
                                                            developer: Browser) -> None:
    no_api = await developer.create_application(apis=())
    assert no_api.status_code == 400 and "apis: choose at least one API" in no_api.text
    no_purpose = await developer.create_application(purposes=())
    assert no_purpose.status_code == 400 and "purposes:" in no_purpose.text
    foreign = await developer.create_application(apis=("telepathy",))
    assert foreign.status_code == 400
    unnamed = await developer.create_application(name="   ")
    assert unnamed.status_code == 400 and "name:" in unnamed.text
    odd_purpose = await developer.create_application(purposes=("dpv:Nonsense",))
    assert odd_purpose.status_code == 400 and "dpv:Nonsense" in odd_purpose.text
