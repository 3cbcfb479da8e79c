"""Keys by reference across the federation: partners register each other with their
``jwks_uri``, so the aggregator rotating its key keeps working at every operator without
registering again; an application registered with a ``jwks_uri`` at an operator
authenticates with ``private_key_jwt`` and survives its own rotation. Fake clock throughout."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from federation.client import ApplicationClient, Endpoints, OAuthClientError, new_client_key
from federation.config import FederationConfig
from federation.federation import Federation, quick_consent, start_federation

from .conftest import FakeClock

FRAUD = "dpv:FraudPreventionAndDetection"
ADMIN = {"Authorization": "Bearer admin-secret"}
APP_ORIGIN = "https://keys.app.example"
OPERATORS = ("telco-es", "telco-fr", "telco-gb")


@pytest.fixture
async def world(
    federation: FederationConfig, tmp_path: Path
) -> AsyncIterator[tuple[Federation, FakeClock]]:
    clock = FakeClock(1_750_000_000.0)
    fed = await start_federation(quick_consent(federation), tmp_path, clock=clock,
                                 monotonic=clock, probes=False)
    yield fed, clock
    await fed.stop()


async def test_partners_are_registered_by_reference(
    world: tuple[Federation, FakeClock],
) -> None:
    fed, _ = world
    hub = fed.aggregator
    metadata = hub.identity.metadata()
    for operator in OPERATORS:
        client = fed.operator(operator).identity.clients.get(hub.id)
        assert client is not None and client.jwks_uri == metadata["jwks_uri"]
        assert client.jwks == {"keys": []}


async def test_aggregator_rotates_its_key_and_every_operator_still_accepts_it(
    world: tuple[Federation, FakeClock],
) -> None:
    fed, clock = world
    hub = fed.aggregator

    async def exchange(operator: str) -> None:
        number = fed.operator(operator).subscribers.test_number("approves")
        reply = await hub.partners[operator].client.jwt_bearer(
            f"tel:{number}", f"sim-swap:check {FRAUD}")
        assert reply["access_token"]

    for operator in OPERATORS:
        await exchange(operator)  # keys fetched and cached at each operator
    old_kid = hub.identity.keys.active().kid
    clock.advance(31)  # past the refresh interval of the first fetch
    rotated = await fed.http.post(f"{hub.identity.issuer}/admin/keys/rotate", headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["kid"] != old_kid
    for operator in OPERATORS:
        await exchange(operator)  # signed with the new kid: the operator refreshes and accepts
        client = fed.operator(operator).identity.clients.get(hub.id)
        assert client is not None and client.jwks == {"keys": []}  # never registered again


class KeyHost:
    """An application's own JWKS endpoint on the federation's network."""

    def __init__(self) -> None:
        self.keys = [new_client_key()]

    def app(self) -> Starlette:
        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse({"keys": [dict(k.as_dict(private=False)) for k in self.keys]})

        return Starlette(routes=[Route("/jwks.json", jwks)])


async def test_application_with_a_jwks_uri_uses_private_key_jwt_at_an_operator(
    world: tuple[Federation, FakeClock],
) -> None:
    fed, clock = world
    host = KeyHost()
    fed.network.add(APP_ORIGIN, host.app())
    operator = fed.operator("telco-es")
    registered = await fed.http.post(f"{operator.identity.issuer}/admin/clients",
                                     headers=ADMIN, json={
        "client_id": "by-reference", "client_name": "keys by reference",
        "jwks_uri": f"{APP_ORIGIN}/jwks.json", "grant_types": ["client_credentials"],
        "scope": "sim-swap:check", "purposes": [FRAUD]})
    assert registered.status_code == 201, registered.text
    endpoints = Endpoints.from_metadata(operator.identity.metadata())
    app = ApplicationClient("by-reference", host.keys[0], endpoints, fed.http, clock=clock)
    assert (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    clock.advance(31)
    host.keys.append(new_client_key())  # the application rotates its key
    app.key = host.keys[-1]
    assert (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    stranger = ApplicationClient("by-reference", new_client_key(), endpoints, fed.http,
                                 clock=clock)
    with pytest.raises(OAuthClientError) as refused:
        await stranger.client_credentials(f"sim-swap:check {FRAUD}")
    assert refused.value.error == "invalid_client"


async def test_a_partner_registered_at_an_earlier_runs_address_follows_its_current_one(
    world: tuple[Federation, FakeClock],
) -> None:
    """A run folder reused on another port: the hub's stored ``jwks_uri`` names the old one,
    where anything may listen now. The next start registers the address it publishes now."""
    fed, _ = world
    member = fed.members["telco-es"]
    clients = member.primary.identity.clients
    clients.refer_keys(fed.aggregator.id, "http://127.0.0.1:1/oauth/jwks")
    await member._register(fed.aggregator.id, time.monotonic() + 30)
    client = clients.get(fed.aggregator.id)
    assert client is not None
    assert client.jwks_uri == fed.aggregator.identity.metadata()["jwks_uri"]


async def test_a_partners_keys_are_taken_only_from_its_own_document_and_origin() -> None:
    """As the key cache demands: a discovery document naming another issuer, or keys on
    another origin, is no registration (the partner is asked again until the deadline)."""
    import httpx

    from federation.member import _published_jwks_uri

    issuer = "http://127.0.0.1:9101/oauth"
    documents = [
        {"issuer": "http://127.0.0.1:9999/oauth", "jwks_uri": f"{issuer}/jwks"},
        {"issuer": issuer, "jwks_uri": "http://169.254.169.254/keys"},
    ]
    for document in documents:
        def answer(request: httpx.Request, document: dict[str, str] = document) -> httpx.Response:
            if request.url.path.endswith("openid-configuration"):
                return httpx.Response(200, json=document)
            return httpx.Response(200, json={"keys": [{"kty": "EC"}]})

        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            with pytest.raises(ValueError):
                await _published_jwks_uri(http, issuer)


async def test_a_partner_registered_at_its_current_address_is_not_waited_for(
    world: tuple[Federation, FakeClock],
) -> None:
    """A replica started mid-run, or with the hub down, starts at once when the hub is
    already registered by reference on the hub's current origin."""
    import httpx

    fed, _ = world
    member = fed.members["telco-es"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("the hub is down", request=request)

    reachable, member.http = member.http, httpx.AsyncClient(transport=httpx.MockTransport(down))
    try:
        await member._register(fed.aggregator.id, time.monotonic() - 1)  # no time to wait
    finally:
        await member.http.aclose()
        member.http = reachable
    assert fed.aggregator.id in member.registered
