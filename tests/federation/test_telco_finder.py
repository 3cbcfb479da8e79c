"""Telco Finder and Telco Routing over HTTP, as OPG.10 has them, on the default federation.

The hub collects each operator's routing table (``GET /telco-routing/v1/routing`` with a
client-credentials token of that operator), answers ``POST /telco-finder/v1/search`` to
applications holding a hub token, asks Spain's Network Id service on DEEP searches, and
hands telco-gb's numbers to telco-gb's second-level finder (brand Kite Mobile).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from federation.client import ApplicationClient, Endpoints
from federation.config import BRAND_NUMBER, PORTED_NUMBER, FederationConfig
from federation.network_id import HttpNetworkId, NetworkIdService, build_network_id_router
from federation.portability import PortabilityDatabase, port_number
from federation.protection import (
    NETWORK_ID_SCOPE,
    TELCO_FINDER_SCOPE,
    TELCO_ROUTING_SCOPE,
    BearerProtection,
    open_access,
)
from federation.telco_finder import (
    BrandFinder,
    HttpSecondLevelFinder,
    SearchRequest,
    TelcoFinder,
    build_telco_finder_router,
)
from federation.telco_routing import (
    build_routing_table,
    build_telco_routing_router,
    fetch_routing_table,
)
from federation.transport import AsgiNetwork
from operators.gateway.errors import install_camara_error_handlers
from operators.operator import Operator, create_operator_app

SEARCH = "https://hub.ogsim.test/telco-finder/v1/search"
NETWORK_ID_ES = "https://network-id.es.ogsim.test"


def client_for(identity_owner: Operator, client_id: str, scope: str,
               http: httpx.AsyncClient) -> ApplicationClient:
    """Register a client_credentials client at ``identity_owner`` and return its client."""
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    identity_owner.identity.register_client({
        "client_id": client_id, "client_name": client_id,
        "jwks": {"keys": [dict(key.as_dict(private=False))]},
        "grant_types": ["client_credentials"], "scope": scope})
    return ApplicationClient(client_id, key,
                             Endpoints.from_metadata(identity_owner.identity.metadata()), http)


@dataclass
class World:
    federation: FederationConfig
    operators: dict[str, Operator]
    hub: Operator
    finder: TelcoFinder
    portability: PortabilityDatabase
    network_id: NetworkIdService
    http: httpx.AsyncClient
    token: str

    async def search(self, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return await self.http.post(SEARCH, json=body, headers=headers)

    async def operator_of(self, body: dict[str, Any]) -> str:
        response = await self.search(body)
        assert response.status_code == 200, response.text
        return str(response.json()["operatorId"])


@pytest.fixture
async def world(
    federation: FederationConfig, operators: dict[str, Operator]
) -> AsyncIterator[World]:
    network = AsgiNetwork()
    http = httpx.AsyncClient(transport=network)
    hub = Operator.from_config(federation.aggregators[0].identity_config())

    portability = PortabilityDatabase(federation)
    es_network_id = NetworkIdService("ES", portability)
    registry = FastAPI()
    install_camara_error_handlers(registry)
    registry.include_router(build_network_id_router(es_network_id, open_access))
    network.add(NETWORK_ID_ES, registry)

    gb = operators["telco-gb"]
    brand_finder = BrandFinder(
        federation.operator("telco-gb"),
        serves=lambda number: gb.subscribers.get(number) is not None,
        number_at=lambda ip: (s.msisdn if (s := gb.subscribers.by_ipv4(ip)) else None))
    hub_clients: dict[str, ApplicationClient] = {}
    for operator_id, operator in operators.items():
        app = create_operator_app(operator)
        table = build_routing_table(federation.operator(operator_id), federation)
        app.include_router(build_telco_routing_router(
            table, BearerProtection(operator.identity, TELCO_ROUTING_SCOPE)))
        if operator is gb:
            app.include_router(build_telco_finder_router(
                brand_finder, BearerProtection(gb.identity, TELCO_FINDER_SCOPE)))
        network.add(operator.api_root, app)
        hub_clients[operator_id] = client_for(
            operator, "hub", f"{TELCO_ROUTING_SCOPE} {TELCO_FINDER_SCOPE}", http)

    tables = {}
    for operator_id, client in hub_clients.items():
        token = (await client.client_credentials(TELCO_ROUTING_SCOPE))["access_token"]
        url = operators[operator_id].api_root + "/telco-routing/v1/routing"
        tables[operator_id] = await fetch_routing_table(http, url, token)

    async def hub_token_for(url: str) -> str:
        operator_id = next(o for o, op in operators.items() if url.startswith(op.api_root))
        reply = await hub_clients[operator_id].client_credentials(TELCO_FINDER_SCOPE)
        return str(reply["access_token"])

    finder = TelcoFinder.for_federation(
        federation, tables, network_id={"ES": HttpNetworkId(http, NETWORK_ID_ES)},
        second_level=HttpSecondLevelFinder(http, hub_token_for))
    hub_app = create_operator_app(hub)
    hub_app.include_router(build_telco_finder_router(
        finder, BearerProtection(hub.identity, TELCO_FINDER_SCOPE)))
    network.add(hub.api_root, hub_app)

    app_client = client_for(hub, "finder-app", TELCO_FINDER_SCOPE, http)
    token = (await app_client.client_credentials(TELCO_FINDER_SCOPE))["access_token"]
    yield World(federation, operators, hub, finder, portability, es_network_id, http, token)
    await http.aclose()
    hub.close()


def by_number(number: str, **extra: Any) -> dict[str, Any]:
    return {"target": {"phoneNumber": number}, **extra}


async def test_by_phone_number_in_each_country(world: World) -> None:
    ops = world.operators
    assert await world.operator_of(by_number(ops["telco-es"].subscribers.test_number(
        "approves"))) == "telco-es"
    assert await world.operator_of(by_number(ops["telco-fr"].subscribers.test_number(
        "approves"))) == "telco-fr"
    assert await world.operator_of(by_number(ops["telco-gb"].subscribers.test_number(
        "approves"))) == "telco-gb"


async def test_answer_fields_follow_the_include_flags(world: World) -> None:
    number = world.operators["telco-fr"].subscribers.test_number("approves")
    fr = world.federation.operator("telco-fr")
    plain = (await world.search(by_number(number))).json()
    assert plain == {"operatorId": "telco-fr"}
    full = (await world.search(by_number(number, includeApiRoot=True,
                                         includeAuthProviderConfiguration=True))).json()
    assert full == {"operatorId": "telco-fr", "apiRoot": fr.api_root,
                    "authProviderConfiguration": fr.auth_provider_configuration}
    assert (await world.search(by_number(number, includeApiRoot=True))).json() == {
        "operatorId": "telco-fr", "apiRoot": fr.api_root}
    assert (await world.search(by_number(number, includeAuthProviderConfiguration=True))
            ).json() == {"operatorId": "telco-fr",
                         "authProviderConfiguration": fr.auth_provider_configuration}


async def test_by_ip_address(world: World) -> None:
    fr = world.operators["telco-fr"]
    device = fr.subscribers.get(fr.subscribers.test_number("approves"))
    assert device is not None and device.ipv4 is not None
    body = {"target": {"ipv4Address": {"publicAddress": device.ipv4, "publicPort": 40123}},
            "includeApiRoot": True}
    assert (await world.search(body)).json() == {"operatorId": "telco-fr",
                                                 "apiRoot": fr.api_root}
    assert await world.operator_of({"target": {"ipv6Address": "2001:db8:34::1"}}) == "telco-es"
    response = await world.search({"target": {"ipv4Address": {"publicAddress": "192.0.2.7"}}})
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


async def test_dynamic_rule_resolved_by_the_second_level_finder(world: World) -> None:
    gb = world.federation.operator("telco-gb")
    answer = (await world.search(by_number(BRAND_NUMBER, includeApiRoot=True,
                                           includeAuthProviderConfiguration=True))).json()
    assert answer == {"operatorId": "kite-gb", "apiRoot": gb.api_root,
                      "authProviderConfiguration": gb.auth_provider_configuration}
    gb_subscribers = world.operators["telco-gb"].subscribers
    brand_device = gb_subscribers.get(BRAND_NUMBER)
    assert brand_device is not None and brand_device.ipv4 is not None
    assert await world.operator_of(
        {"target": {"ipv4Address": {"publicAddress": brand_device.ipv4}}}) == "kite-gb"
    parent_number = gb_subscribers.test_number("roaming")
    assert await world.operator_of(by_number(parent_number)) == "telco-gb"


async def test_configured_port_is_known_to_both_modes(world: World) -> None:
    assert await world.operator_of(by_number(PORTED_NUMBER)) == "telco-es"
    assert await world.operator_of(
        by_number(PORTED_NUMBER, portabilitySearchMode="DEEP")) == "telco-es"


async def test_shallow_is_stale_right_after_a_port_and_deep_is_right(world: World) -> None:
    number = "+34620000777"  # a Red Azul number, outside the federation
    assert (await world.search(by_number(number))).status_code == 404
    port_number(world.portability, number, "telco-es", world.operators)
    assert world.operators["telco-es"].subscribers.get(number) is not None

    shallow = await world.search(by_number(number))
    assert shallow.status_code == 404, "SHALLOW answers from the finder's stale records"
    lookups = world.network_id.lookups
    assert await world.operator_of(by_number(number, portabilitySearchMode="DEEP")) == "telco-es"
    assert world.network_id.lookups == lookups + 1
    assert await world.operator_of(by_number(number)) == "telco-es", "DEEP refreshed the cache"
    assert world.network_id.lookups == lookups + 1, "SHALLOW never asks Network Id"


async def test_deep_searches_of_unported_numbers_leave_no_records(world: World) -> None:
    """DEEP asks Network Id; an answer that is the range holder (what SHALLOW answers without
    a record) is not kept, so asking for many numbers does not grow the finder's records:
    only ports do, and a number ported back home loses its record."""
    kept = len(world.finder._cache)
    for n in range(50):
        number = f"+3460{n:07d}"
        await world.search(by_number(number, portabilitySearchMode="DEEP"))
    assert len(world.finder._cache) == kept, "no record for a number at its range holder"
    home = world.operators["telco-es"].subscribers.test_number("never-swapped")
    port_number(world.portability, home, "red-azul", world.operators)
    away = await world.search(by_number(home, portabilitySearchMode="DEEP"))
    assert away.status_code == 404 and len(world.finder._cache) == kept + 1
    port_number(world.portability, home, "telco-es", world.operators)
    assert await world.operator_of(by_number(home, portabilitySearchMode="DEEP")) == "telco-es"
    assert len(world.finder._cache) == kept and await world.operator_of(by_number(home)) == (
        "telco-es")


async def test_port_out_of_the_federation(world: World) -> None:
    number = world.operators["telco-es"].subscribers.test_number("recent-swap")
    port_number(world.portability, number, "red-azul", world.operators)
    assert await world.operator_of(by_number(number)) == "telco-es"  # stale
    response = await world.search(by_number(number, portabilitySearchMode="DEEP"))
    assert response.status_code == 404
    assert world.operators["telco-es"].subscribers.get(number) is None


@pytest.mark.parametrize("number", ["+4915112345678", "+33700000001", "+34990000001"])
async def test_unknown_number_is_a_camara_404(world: World, number: str) -> None:
    response = await world.search(by_number(number, portabilitySearchMode="DEEP"))
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and body["code"] in ("NOT_FOUND", "IDENTIFIER_NOT_FOUND")
    assert body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"target": {}},
        {"target": {"phoneNumber": "0034600000001"}},
        {"target": {"phoneNumber": "+34600000001", "ipv6Address": "2001:db8::1"}},
        {"target": {"ipv4Address": {"publicAddress": "10.34.0.1", "publicPort": 70000}}},
        {"target": {"ipv4Address": {"publicAddress": "not-an-ip"}}},
        {"target": {"phoneNumber": "+34600000001"}, "includeApiRoot": "yes"},
        {"target": {"phoneNumber": "+34600000001"}, "portabilitySearchMode": "MEDIUM"},
        {"target": {"phoneNumber": "+34600000001"}, "extra": 1},
        ["not", "an", "object"],
    ],
)
async def test_bad_body_is_a_400(world: World, body: Any) -> None:
    response = await world.search(body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_ARGUMENT"


async def test_not_json_is_a_400(world: World) -> None:
    response = await world.http.post(SEARCH, content=b"{nope",
                                     headers={"Authorization": f"Bearer {world.token}",
                                              "Content-Type": "application/json"})
    assert response.status_code == 400


async def test_missing_or_invalid_token_is_a_401(world: World) -> None:
    body = by_number(PORTED_NUMBER)
    response = await world.http.post(SEARCH, json=body)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await world.search(body, token="not.a.token")).status_code == 401
    # a perfectly valid token, but issued by telco-gb, not by the hub
    gb_client = client_for(world.operators["telco-gb"], "gb-tool", TELCO_FINDER_SCOPE,
                           world.http)
    foreign = (await gb_client.client_credentials(TELCO_FINDER_SCOPE))["access_token"]
    assert (await world.search(body, token=foreign)).status_code == 401


async def test_token_without_the_scope_is_a_403(world: World) -> None:
    other = client_for(world.hub, "router-only", TELCO_ROUTING_SCOPE, world.http)
    token = (await other.client_credentials(TELCO_ROUTING_SCOPE))["access_token"]
    response = await world.search(by_number(PORTED_NUMBER), token=token)
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"


async def test_routing_table_endpoint(world: World) -> None:
    es = world.operators["telco-es"]
    url = es.api_root + "/telco-routing/v1/routing"
    assert (await world.http.get(url)).status_code == 401
    client = client_for(es, "reader", TELCO_ROUTING_SCOPE, world.http)
    token = (await client.client_credentials(TELCO_ROUTING_SCOPE))["access_token"]
    response = await world.http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == [
        {"network": ["21407"],
         "static": {"operatorId": "telco-es", "apiRoot": es.api_root,
                    "authProviderConfiguration": es.api_root
                    + "/oauth/.well-known/openid-configuration"}},
        {"ipv4": ["10.34.0.0/16"], "ipv6": ["2001:db8:34::/48"],
         "static": {"operatorId": "telco-es", "apiRoot": es.api_root,
                    "authProviderConfiguration": es.api_root
                    + "/oauth/.well-known/openid-configuration"}},
    ]
    gb_table = world.finder.tables["telco-gb"]
    assert gb_table[0].msisdn_prefix == ("+4477",) and gb_table[0].dynamic is not None
    assert world.finder.tables["telco-fr"][0].msisdn_prefix == ("+3361", "+3362")


async def test_network_id_service(world: World) -> None:
    url = NETWORK_ID_ES + "/network-id/v0/resolve-network-id"
    assert (await world.http.post(url, json={"phoneNumber": PORTED_NUMBER})).json() == {
        "networkId": "21407"}
    assert (await world.http.post(url, json={"phoneNumber": "+34620000001"})).json() == {
        "networkId": "21401"}
    missing = await world.http.post(url, json={"phoneNumber": "+33610000001"})
    assert missing.status_code == 404 and missing.json()["code"] == "IDENTIFIER_NOT_FOUND"
    assert (await world.http.post(url, json={"phone": "+34"})).status_code == 400
    assert NETWORK_ID_SCOPE == "network-id:resolve"


async def test_second_level_finder_refreshes_a_refused_cached_token(world: World) -> None:
    """A token the operator's finder refuses (here revoked) is forgotten and fetched again
    once, so a cache of the hub's finder tokens never turns a revocation into an outage."""
    gb = world.operators["telco-gb"]
    client = client_for(gb, "cached-hub", TELCO_FINDER_SCOPE, world.http)
    cache: dict[str, str] = {}
    grants: list[str] = []

    async def cached_token(url: str) -> str:
        if url not in cache:
            cache[url] = str((await client.client_credentials(TELCO_FINDER_SCOPE))["access_token"])
            grants.append(cache[url])
        return cache[url]

    second_level = HttpSecondLevelFinder(world.http, cached_token, lambda url: cache.pop(url))
    url = world.federation.operator("telco-gb").api_root + "/telco-finder/v1/search"
    request = SearchRequest.model_validate(by_number(BRAND_NUMBER))
    assert (await second_level(url, request)).operator_id == "kite-gb"
    assert (await second_level(url, request)).operator_id == "kite-gb"
    assert len(grants) == 1, "the cached token served both searches"
    gb.identity.tokens.revoke_jti(str(gb.identity.tokens.verify(grants[0]).jti))
    assert (await second_level(url, request)).operator_id == "kite-gb"
    assert len(grants) == 2, "refused once, then a fresh token"
