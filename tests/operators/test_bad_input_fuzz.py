"""Bad input at every endpoint that reads a body, outside the CAMARA routes: never a 500, and
a refusal changes nothing.

The endpoints are discovered from the apps' own route tables (their OpenAPI description, the
mounted identity server's included), not listed by hand: the operator app (identity server,
subscriber and operations admin) and the federation's Telco Finder, Network Id and trust
admin. Each gets a fixed battery of hostile shapes (deep nesting, lone surrogates, duplicate
keys, UTF-16, BOM, invalid UTF-8, huge and chunked bodies, wrong types) and then documents
drawn by hypothesis (a bounded, derandomised number of examples).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from starlette.routing import Mount

from federation.config import default_federation
from federation.jwks_cache import JwksCache
from federation.member import _trust_router
from federation.network_id import NetworkIdService, build_network_id_router
from federation.portability import PortabilityDatabase
from federation.protection import open_access
from federation.telco_finder import SearchAnswer, SearchRequest, build_telco_finder_router
from federation.trust import TrustGraph
from federation.trust_revocations import TrustRevocations
from federation.trusted_issuers import TrustedIssuers
from operators.camara import operation_at
from operators.config import example_operator
from operators.core import NetworkFunctionKind
from operators.gateway import install_camara_error_handlers, unencodable
from operators.operator import Operator, create_operator_app
from operators.storage import Database
from operators.subscriber_admin import build_subscriber_admin_router
from operators.subscriber_base import ChangeKind, SubscriberBase
from tests import fuzz_bodies
from tests.fuzz_bodies import JSON, Endless, assert_error_shape, documents

START = 1_750_000_000.0
BODY_METHODS = ("post", "put", "patch")


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class CountingFinder:
    """A Telco Finder that only counts the searches that reached it (a state to watch)."""

    def __init__(self) -> None:
        self.searches = 0

    async def search(self, request: SearchRequest) -> SearchAnswer:
        self.searches += 1
        return SearchAnswer("telco-es", "https://telco-es.ogsim.test")


@dataclass(frozen=True)
class Endpoint:
    app: str
    method: str
    path: str  # as the client calls it, path parameters filled in
    template: str


@dataclass
class World:
    operator: Operator
    apps: dict[str, FastAPI]
    endpoints: list[Endpoint]
    state: Callable[[], Any]
    headers: dict[str, str]


def _body_endpoints(name: str, app: FastAPI, values: dict[str, str]) -> list[Endpoint]:
    """Every route of ``app`` (and of the apps it mounts) taking a body, CAMARA ones aside."""
    found: list[Endpoint] = []
    apps: list[tuple[str, FastAPI]] = [("", app)]
    apps += [(r.path, r.app) for r in app.routes
             if isinstance(r, Mount) and isinstance(r.app, FastAPI)]
    for prefix, sub in apps:
        for template, operations in sub.openapi()["paths"].items():
            for method in operations:
                full = prefix + template
                if method not in BODY_METHODS or operation_at(method, full) is not None:
                    continue
                path = full
                for key, value in values.items():
                    path = path.replace("{" + key + "}", value)
                assert "{" not in path, f"no value for a parameter of {full}"
                found.append(Endpoint(name, method.upper(), path, full))
    return found


def build_world() -> World:
    clock = FakeClock()
    operator = Operator.from_config(example_operator(), clock=clock, monotonic=clock)
    key = ECKey.generate_key("P-256", private=True, auto_kid=True)
    operator.identity.register_client({  # so a well-formed consent can get far
        "client_id": "app-one", "client_name": "App", "jwks": {"keys": [key.as_dict()]},
        "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
        "scope": "sim-swap:check number-verification:verify",
        "purposes": [p.purpose for p in operator.config.purposes],
    })
    number = operator.subscribers.test_number("approves")

    federation = default_federation()
    member = federation.operators[0]
    trust = TrustGraph.from_config(federation)
    finder = CountingFinder()
    network_id = NetworkIdService("ES", PortabilityDatabase(federation))
    fed = FastAPI()
    install_camara_error_handlers(fed)
    fed.include_router(build_network_id_router(network_id, open_access))
    fed.include_router(build_telco_finder_router(finder, open_access))
    jwks = JwksCache(httpx.AsyncClient(), clock=clock)
    policy = TrustedIssuers(member.id, trust, jwks, operator.identity.clients)
    policy.revocations = TrustRevocations(operator.db, member.id, clock)
    fed.include_router(_trust_router(member, policy, jwks))

    values = {"phone_number": number, "client_id": "nobody", "api": "sim-swap",
              "function": next(iter(NetworkFunctionKind)).value,
              "consent_id": "no-such-consent"}
    apps = {"operator": create_operator_app(operator), "federation": fed}
    endpoints = [e for name, app in apps.items() for e in _body_endpoints(name, app, values)]
    assert member.admin_secret == operator.config.admin_secret

    def state() -> Any:
        db = operator.db
        tables = [r["name"] for r in db.all(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {t: sorted(map(repr, map(tuple, db.all(f"SELECT * FROM {t}")))) for t in tables}
        faults = {k.value: f.faults for k, f in operator.backends.functions.items()}  # type: ignore[attr-defined]
        return (rows, faults, trust.trusted_by(member.id), finder.searches, network_id.lookups)

    headers = {"Authorization": f"Bearer {operator.config.admin_secret}"}
    return World(operator, apps, endpoints, state, headers)


@pytest.fixture
def world() -> Iterator[World]:
    built = build_world()
    yield built
    built.operator.close()


_FUZZ_KEY = ECKey.generate_key("P-256", private=True, auto_kid=True).as_dict(private=False)
PLAUSIBLE: dict[str, dict[str, Any]] = {
    "/admin/subscribers/{phone_number}/changes": {"kind": "roaming",
                                                  "payload": {"country": "FR"}},
    "/admin/faults/{function}": {"extra_latency": 0.5, "error_rate": 0.1},
    "/admin/subscriptions/{client_id}/{api}": {"plan": "free"},
    "/oauth/admin/clients": {"client_id": "fuzz-app", "client_name": "Fuzz",
                             "jwks": {"keys": [_FUZZ_KEY]},
                             "grant_types": ["client_credentials"], "scope": "sim-swap:check"},
    "/oauth/consents": {"clientId": "app-one", "purpose": "dpv:IdentityVerification",
                        "scopes": ["number-verification:verify"], "phoneNumber": "+34600000001"},
    "/telco-finder/v1/search": {"target": {"phoneNumber": "+34600000001"}},
    "/network-id/v0/resolve-network-id": {"phoneNumber": "+34600000001"},
    "/admin/trust/revoke": {"issuer": "hub"},
    "/admin/trust/reinstate": {"issuer": "hub"},
}


def battery(template: str) -> list[tuple[str, bytes]]:
    """(content type, body) pairs every endpoint must refuse or survive."""
    return fuzz_bodies.battery(PLAUSIBLE.get(template, {"a": "b"}))


async def _call(world: World, http: httpx.AsyncClient, endpoint: Endpoint, content_type: str,
                content: bytes | AsyncIterable[bytes]) -> httpx.Response:
    return await http.request(
        endpoint.method, endpoint.path, content=content,
        headers={**world.headers, "content-type": content_type})


def _client(world: World, endpoint: Endpoint) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=world.apps[endpoint.app], client=("203.0.113.9", 4000))
    return httpx.AsyncClient(transport=transport, base_url="https://telco-es.ogsim.test")


def _check(world: World, endpoint: Endpoint, response: httpx.Response, before: Any,
           what: str) -> None:
    where = f"{endpoint.method} {endpoint.template} <- {what}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert_error_shape(response, where)
        assert world.state() == before, f"{where}: a refusal changed the state"


def test_discovery_finds_every_body_endpoint(world: World) -> None:
    templates = {(e.method, e.template) for e in world.endpoints}
    assert {("POST", "/oauth/token"), ("POST", "/oauth/bc-authorize"),
            ("POST", "/oauth/introspect"), ("POST", "/oauth/revoke"),
            ("POST", "/oauth/admin/clients"), ("POST", "/oauth/consents"),
            ("POST", "/admin/subscribers/{phone_number}/changes"),
            ("PUT", "/admin/faults/{function}"), ("PUT", "/admin/subscriptions/{client_id}/{api}"),
            ("POST", "/telco-finder/v1/search"), ("POST", "/network-id/v0/resolve-network-id"),
            ("POST", "/admin/trust/revoke"), ("POST", "/admin/trust/reinstate")} <= templates
    assert not any(t.startswith("/sim-swap") for _, t in templates)  # the gateway's own


async def test_the_battery_at_every_endpoint(world: World) -> None:
    for endpoint in world.endpoints:
        async with _client(world, endpoint) as http:
            for content_type, body in battery(endpoint.template):
                before = world.state()
                response = await _call(world, http, endpoint, content_type, body)
                _check(world, endpoint, response, before, f"{content_type} {body[:40]!r}")


async def test_huge_and_chunked_bodies_are_cut_at_the_limit(world: World) -> None:
    for endpoint in world.endpoints:
        endless = Endless()
        async with _client(world, endpoint) as http:
            before = world.state()
            response = await _call(world, http, endpoint, JSON, endless)
            _check(world, endpoint, response, before, "chunked 64 MiB")
            assert not endless.read_whole, f"{endpoint.template} read a whole endless body"
            before = world.state()
            response = await _call(world, http, endpoint, JSON, b" " * 300_000)
            _check(world, endpoint, response, before, "300 kB")


def test_drawn_documents_never_500_and_unencodable_ones_never_land() -> None:
    world = build_world()
    endpoints = world.endpoints

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(index=st.integers(0, len(endpoints) - 1), document=documents,
           field=st.sampled_from(["", "kind", "payload", "plan", "clientId", "target",
                                  "phoneNumber", "issuer", "client_name"]))
    def check(index: int, document: Any, field: str) -> None:
        endpoint = endpoints[index]
        body: Any = document
        if field:
            body = {**PLAUSIBLE.get(endpoint.template, {}), field: document}

        async def send() -> httpx.Response:
            async with _client(world, endpoint) as http:
                return await _call(world, http, endpoint, JSON, json.dumps(body).encode())

        before = world.state()
        response = asyncio.run(send())
        _check(world, endpoint, response, before, repr(body)[:80])
        if unencodable(body):
            assert response.status_code >= 400, f"{endpoint.template} took {body!r}"

    try:
        check()
    finally:
        world.operator.close()


# -- a subscriber change can never poison the subscriber ---------------------------------------


async def test_a_change_with_a_lone_surrogate_is_a_400_and_nothing_is_written(
    world: World,
) -> None:
    number = world.operator.subscribers.test_number("approves")
    path = f"/admin/subscribers/{number}/changes"
    async with _client(world, Endpoint("operator", "POST", path, path)) as http:
        before = world.state()
        for raw in (b'{"kind": "roaming", "payload": {"country": "\\ud800"}}',
                    b'{"kind": "port_out", "payload": {"operator": "telco-\\udfff"}}',
                    b'{"kind": "roaming", "payload": {"\\ud800": "FR"}}'):
            response = await http.post(path, content=raw,
                                        headers={**world.headers, "content-type": JSON})
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "INVALID_ARGUMENT"
        assert world.state() == before
        listing = await http.get(path, headers=world.headers)
        assert listing.status_code == 200 and listing.json() == []
        assert (await http.get(f"/admin/subscribers/{number}", headers=world.headers)
                ).status_code == 200


async def test_a_poisoned_row_from_an_old_database_is_skipped_not_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = example_operator(storage=str(tmp_path / "old.db"))
    clock = FakeClock()
    db = Database(config.storage)
    base = SubscriberBase(config, db, clock=clock)
    number = base.test_number("approves")
    base.record_change(number, ChangeKind.ROAMING, {"country": "FR"}, START - 10)
    for kind, payload in (("roaming", '{"country": "\\ud800"}'),  # what the old code stored
                          ("roaming", "{not json"), ("teleport", "{}"),
                          ("location", '{"latitude": "north"}'), ("roaming", "[]")):
        db.insert("INSERT INTO subscriber_changes (msisdn, kind, payload, effective_at,"
                  " recorded_at) VALUES (?, ?, ?, ?, ?)", (number, kind, payload, START - 5, 0))
    db.close()

    for _restart in range(2):
        db = Database(config.storage)
        base = SubscriberBase(config, db, clock=clock)
        app = FastAPI()
        install_camara_error_handlers(app)
        app.include_router(build_subscriber_admin_router(base, config.admin_secret))
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {config.admin_secret}"}
        with caplog.at_level(logging.WARNING, logger="ogsim.subscribers"):
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
                changes = await http.get(f"/admin/subscribers/{number}/changes",
                                         headers=headers)
                subscriber = await http.get(f"/admin/subscribers/{number}", headers=headers)
        assert changes.status_code == 200, changes.text
        assert [c["payload"] for c in changes.json()] == [{"country": "FR"}]
        assert subscriber.status_code == 200 and subscriber.json()["roaming_country"] == "FR"
        assert sum("skipped" in r.message for r in caplog.records) >= 5
        caplog.clear()
        db.close()

