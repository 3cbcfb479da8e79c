"""Trusted federation issuers at an operator's JWT-bearer grant, over HTTP.

telco-gb trusts the hub and telco-es through the ``open-gateway`` anchor, and not telco-fr.
Each party signs its assertions with its own identity keys; telco-gb fetches them from the
party's JWKS through the in-process network, exactly as it would over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from federation.config import FederationConfig
from federation.jwks_cache import JwksCache
from federation.transport import AsgiNetwork
from federation.trust import TrustGraph
from federation.trusted_issuers import (
    PrepareAssertions,
    TrustedIssuers,
    issue_assertion,
    party_registration,
)
from operators.operator import Operator, create_operator_app

from .conftest import FakeClock

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"


@dataclass
class World:
    parties: dict[str, Operator]
    relying: Operator
    trust: TrustGraph
    policy: TrustedIssuers
    jwks: JwksCache
    http: httpx.AsyncClient
    cache_clock: FakeClock

    def assertion(self, party: str, *, audience: str | None = None) -> str:
        return issue_assertion(
            self.parties[party].identity, party=party,
            audience=audience or self.relying.identity.token_endpoint,
            subject=f"tel:{self.relying.subscribers.test_number('approves')}", scope=SCOPE)

    async def exchange(self, assertion: str) -> httpx.Response:
        return await self.http.post(self.relying.identity.token_endpoint,
                                    data={"grant_type": GRANT, "assertion": assertion})


def refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.fixture
async def world(
    federation: FederationConfig, operators: dict[str, Operator], clock: FakeClock
) -> AsyncIterator[World]:
    hub = Operator.from_config(federation.aggregators[0].identity_config())
    parties = {**operators, "hub": hub}
    relying = operators["telco-gb"]
    network = AsgiNetwork()
    http = httpx.AsyncClient(transport=network)
    trust = TrustGraph.from_config(federation)
    jwks = JwksCache(http, clock=clock, ttl=300, min_refresh_interval=30)
    policy = TrustedIssuers.for_identity("telco-gb", relying.identity, trust, jwks)
    policy.install(relying.identity)
    for party_id, party in parties.items():
        app = create_operator_app(party)
        if party is relying:
            app.add_middleware(PrepareAssertions, policy=policy,
                               token_paths=[urlsplit(relying.identity.token_endpoint).path])
        else:
            relying.identity.register_client(party_registration(
                party_id, party.identity.jwks(), scope="sim-swap:check",
                purposes=["dpv:FraudPreventionAndDetection"]))
        network.add(party.api_root, app)
    yield World(parties, relying, trust, policy, jwks, http, clock)
    await http.aclose()
    hub.close()


async def test_trusted_party_gets_the_operators_own_token(world: World) -> None:
    response = await world.exchange(world.assertion("hub"))
    assert response.status_code == 200, response.text
    identity = world.relying.identity
    context = identity.token_context(identity.verify_access_token(response.json()["access_token"]))
    assert context.client_id == "hub"
    assert context.msisdn == world.relying.subscribers.test_number("approves")
    assert context.scopes == ("sim-swap:check",)
    assert (await world.exchange(world.assertion("telco-es"))).status_code == 200


async def test_untrusted_party_refused_even_though_registered(world: World) -> None:
    assert world.relying.identity.clients.get("telco-fr") is not None
    assert refused(await world.exchange(world.assertion("telco-fr")))


async def test_revocation_refuses_the_next_assertion_only_for_that_party(world: World) -> None:
    assert (await world.exchange(world.assertion("hub"))).status_code == 200
    world.trust.revoke("telco-gb", "hub")
    assert refused(await world.exchange(world.assertion("hub")))
    assert not world.policy.is_trusted_client("hub"), "its earlier tokens are refused too"
    assert world.policy.is_trusted_client("some-app"), "ordinary applications unaffected"
    assert (await world.exchange(world.assertion("telco-es"))).status_code == 200


async def test_wrong_audience_refused(world: World) -> None:
    elsewhere = world.parties["telco-es"].identity.token_endpoint
    assert refused(await world.exchange(world.assertion("hub", audience=elsewhere)))


async def test_replay_refused(world: World) -> None:
    assertion = world.assertion("hub")
    assert (await world.exchange(assertion)).status_code == 200
    assert refused(await world.exchange(assertion))


async def test_key_rotation_picked_up_on_unknown_kid(world: World) -> None:
    assert (await world.exchange(world.assertion("hub"))).status_code == 200
    fetches = world.jwks.fetches
    world.parties["hub"].identity.rotate_keys()
    # within the refresh interval an unknown kid does not make the operator fetch again
    assert refused(await world.exchange(world.assertion("hub")))
    assert world.jwks.fetches == fetches
    world.cache_clock.advance(31)  # well inside the 300 s TTL
    assert (await world.exchange(world.assertion("hub"))).status_code == 200
    assert world.jwks.fetches == fetches + 1


async def test_issuer_url_as_iss_and_forged_signature(world: World) -> None:
    hub = world.parties["hub"]
    # an assertion naming the hub but signed by telco-fr's key: refused
    forged = issue_assertion(world.parties["telco-fr"].identity, party="hub",
                             audience=world.relying.identity.token_endpoint,
                             subject=f"tel:{world.relying.subscribers.test_number('approves')}",
                             scope=SCOPE)
    assert refused(await world.exchange(forged))
    by_url = issue_assertion(hub.identity, party=hub.issuer,
                             audience=world.relying.identity.token_endpoint,
                             subject=f"tel:{world.relying.subscribers.test_number('approves')}",
                             scope=SCOPE)
    assert (await world.exchange(by_url)).status_code == 200


async def test_ordinary_applications_keep_the_default_policy(world: World) -> None:
    """A registered app's own assertions still work next to the federation policy."""
    from joserfc.jwk import ECKey

    from federation.client import ApplicationClient, Endpoints

    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    identity = world.relying.identity
    identity.register_client({
        "client_id": "gb-app", "client_name": "GB app",
        "jwks": {"keys": [dict(key.as_dict(private=False))]},
        "grant_types": [GRANT], "scope": "sim-swap:check",
        "purposes": ["dpv:FraudPreventionAndDetection"]})
    client = ApplicationClient("gb-app", key, Endpoints.from_metadata(identity.metadata()),
                               world.http)
    token = await client.jwt_bearer(
        f"tel:{world.relying.subscribers.test_number('approves')}", SCOPE)
    assert token["access_token"]
