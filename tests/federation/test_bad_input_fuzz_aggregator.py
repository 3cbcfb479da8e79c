"""Bad input at every route of the aggregator's app that reads a body: never a 500, and a
refusal changes nothing at the hub or at any operator.

The routes are discovered from the app's own route table (its OpenAPI description, the mounted
identity server's included): the CAMARA forwards, the identity server, the Telco Finder. The
CAMARA forwards are called with a valid hub token holding the operation's scope and a purpose,
the identity server's admin routes with the hub's admin secret, the Telco Finder with a token
holding its scope, so the hostile body gets as far as it can. Each route gets the shared
battery (:mod:`tests.fuzz_bodies`) around a plausible body, an endless chunked body and a
300 kB one, and then a bounded, derandomised set of drawn documents; routes with a path
parameter get hostile ids.

A refusal leaves, at every operator, no usage event, no QoD session and no policy-function
session, and at the hub no QoD session and no billable settlement row; a refusal the hub
answers itself (an unreadable body, no device, an unknown session) leaves no settlement row at
all. A refusal an operator answered (its schema check of a body the hub forwarded) is recorded
as the hub records every call an operator answered: one row, not billable, with the refusal's
status (see ``test_aggregator_qod.py``, where a 404 from the operators is such a row).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from starlette.routing import Mount

from federation.aggregator import create_aggregator_app
from federation.config import default_federation
from federation.federation import Federation, quick_consent, start_federation
from operators.camara import OPERATIONS, operation_at
from tests.fuzz_bodies import JSON, Endless, assert_error_shape, battery, documents
from tests.operators.camara.test_strict_bodies import base_bodies
from tests.operators.gateway.conftest import Harness

BODY_METHODS = ("POST", "PUT", "PATCH")
OPERATOR_TABLES = ("usage_events", "qod_sessions", "pcf_sessions")
HOSTILE_IDS = (
    "not-a-uuid",
    "%ED%A0%80",
    "%FF%FE",
    "..%2F..%2Fadmin",
    "a%3Fb%3D1%23c",
    "a" * 10_240,
    "00000000-0000-4000-8000-000000000000" + "0" * 10_000,
)
CONTROL_IDS = ("%00", "%0A", "%1B", "%7F")
"""Control characters: at the hub's session routes an unknown id (404); a QoS profile name
is put in the URL the hub calls every partner at, where httpx refuses them (a 500 today)."""
_KEY = ECKey.generate_key("P-256", private=True, auto_kid=True).as_dict(private=False)


@dataclass(frozen=True)
class Route:
    method: str
    template: str

    @property
    def operation_id(self) -> str | None:
        operation = operation_at(self.method, self.template)
        return None if operation is None else operation.operation_id


def discover(fed: Federation) -> list[Route]:
    """Every route of the aggregator's app (and the apps it mounts), as METHOD and template."""
    app = create_aggregator_app(fed.aggregator)
    apps: list[tuple[str, Any]] = [("", app)]
    apps += [(r.path, r.app) for r in app.routes
             if isinstance(r, Mount) and hasattr(r.app, "openapi")]  # not static files
    found = []
    for prefix, sub in apps:
        for template, operations in sub.openapi()["paths"].items():
            found += [Route(method.upper(), prefix + template) for method in operations]
    return found


@dataclass
class World:
    fed: Federation
    routes: list[Route]
    tokens: dict[str, str]
    plausible: dict[str, dict[str, Any]]
    session_id: str

    @property
    def hub(self) -> str:
        return self.fed.aggregator.api_root

    def hub_state(self) -> Any:
        db = self.fed.aggregator.db
        tables = [r["name"] for r in db.all(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, map(tuple, db.all(f"SELECT * FROM {t}")))) for t in tables
                if t != "aggregator_settlement"}

    def operator_state(self) -> Any:
        return {
            (op_id, table): sorted(map(repr, map(tuple, operator.db.all(f"SELECT * FROM {table}"))))
            for op_id, operator in self.fed.operators().items() for table in OPERATOR_TABLES
        }

    def settled(self) -> list[tuple[str, int, bool]]:
        calls = self.fed.aggregator.settlement.calls()
        return [(c.correlator, c.status, c.billable) for c in calls]

    def headers(self, route: Route) -> dict[str, str]:
        operation_id = route.operation_id
        if operation_id is not None:
            return {"Authorization": f"Bearer {self.tokens[operation_id]}"}
        if route.template.startswith("/telco-finder"):
            return {"Authorization": f"Bearer {self.tokens['telco-finder']}"}
        return {"Authorization": f"Bearer {self.fed.aggregator.config.admin_secret}"}

    def path(self, route: Route, value: str | None = None) -> str:
        path = route.template.replace("{sessionId}", value or self.session_id)
        path = path.replace("{name}", value or "QOS_E")
        path = path.replace("{client_id}", value or "fuzz-nobody")
        assert "{" not in path, f"no value for a parameter of {route.template}"
        return path

    async def send(self, route: Route, path: str, content_type: str | None = None,
                   content: bytes | AsyncIterable[bytes] | None = None) -> httpx.Response:
        headers = self.headers(route)
        if content_type is not None:
            headers["content-type"] = content_type
        return await self.fed.http.request(
            route.method, self.hub + path, content=content, headers=headers)

    async def check(self, route: Route, path: str, content_type: str | None,
                    content: bytes | AsyncIterable[bytes] | None, what: str) -> httpx.Response:
        hub, operators, settled = self.hub_state(), self.operator_state(), self.settled()
        response = await self.send(route, path, content_type, content)
        where = f"{route.method} {route.template} <- {what}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        if response.status_code < 400:
            return response
        assert_error_shape(response, where)
        assert self.operator_state() == operators, f"{where}: a refusal changed an operator"
        if route.operation_id is None:
            assert self.hub_state() == hub, f"{where}: a refusal changed the hub's database"
        else:  # the hub's own tokens may be cached, its identity tables are not touched
            after = self.hub_state()
            assert after["aggregator_qod_sessions"] == hub["aggregator_qod_sessions"], where
        added = [row for row in self.settled() if row not in settled]
        assert all(not billable for _, _, billable in added), f"{where}: billed a refusal"
        assert all(status == response.status_code for _, status, _ in added), where
        # one row for a call, or one per partner for QoS Profiles asked of every partner
        partners = set(self.fed.aggregator.partners)
        each_partner = {c.rsplit("/", 1)[-1] for c, _, _ in added} <= partners
        assert len(added) <= 1 or (each_partner and len(added) <= len(partners)), (
            f"{where}: {len(added)} settlement rows for one call")
        return response


def _plausible(fed: Federation) -> dict[str, dict[str, Any]]:
    operator = fed.operator("telco-es")
    harness = Harness(operator, fed.http, cast(Any, None), cast(Any, None))
    bodies: dict[str, dict[str, Any]] = base_bodies(harness)
    bodies.update({
        "/oauth/admin/clients": {"client_id": "fuzz-app", "client_name": "Fuzz",
                                 "jwks": {"keys": [_KEY]}, "grant_types": ["client_credentials"],
                                 "scope": "sim-swap:check"},
        "/telco-finder/v1/search": {"target": {"phoneNumber": operator.subscribers.test_number(
            "approves")}},
    })
    return bodies


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    fed = await start_federation(quick_consent(default_federation()), tmp_path, probes=False)
    routes = discover(fed)
    camara = [op for op in OPERATIONS if any(r.operation_id == op.operation_id for r in routes)]
    scopes = sorted({s for op in camara for s in op.scopes[0]} | {"telco-finder:search"})
    purposes = sorted({op.purpose for op in camara})
    app = await fed.register_application("fuzz-app-hub", " ".join(scopes), purposes)
    tokens = {}
    for operation in camara:
        scope = f"{' '.join(operation.scopes[0])} {operation.purpose}"
        tokens[operation.operation_id] = (await app.client_credentials(scope))["access_token"]
    finder = await app.client_credentials(f"telco-finder:search {purposes[0]}")
    tokens["telco-finder"] = finder["access_token"]
    bodies = _plausible(fed)
    created = await fed.http.post(
        f"{fed.aggregator.api_root}/quality-on-demand/v1/sessions",
        json={**bodies["createSession"],
              "device": {"phoneNumber": fed.operator("telco-fr").subscribers.test_number(
                  "approves")}},
        headers={"Authorization": f"Bearer {tokens['createSession']}"})
    assert created.status_code == 201, created.text
    yield World(fed, routes, tokens, bodies, created.json()["sessionId"])
    await fed.stop()


def _body_routes(world: World) -> list[Route]:
    return [r for r in world.routes if r.method in BODY_METHODS]


def _plausible_for(world: World, route: Route) -> dict[str, Any]:
    key = route.operation_id or route.template
    return world.plausible.get(key, {"a": "b"})


async def test_discovery_finds_the_forwards_the_identity_server_and_the_finder(
    world: World,
) -> None:
    found = {(r.method, r.template) for r in _body_routes(world)}
    assert {("POST", "/sim-swap/v2/check"), ("POST", "/quality-on-demand/v1/sessions"),
            ("POST", "/quality-on-demand/v1/sessions/{sessionId}/extend"),
            ("POST", "/kyc-match/v0.3/match"), ("POST", "/oauth/token"),
            ("POST", "/oauth/admin/clients"), ("POST", "/telco-finder/v1/search")} <= found
    plausible = world.plausible["checkSimSwap"]
    route = Route("POST", "/sim-swap/v2/check")
    answer = await world.send(route, world.path(route), JSON, json.dumps(plausible).encode())
    assert answer.status_code == 200, answer.text


async def test_the_battery_at_every_route_that_reads_a_body(world: World) -> None:
    for route in _body_routes(world):
        for content_type, body in battery(_plausible_for(world, route)):
            await world.check(route, world.path(route), content_type, body,
                              f"{content_type} {body[:40]!r}")


async def test_huge_and_chunked_bodies_are_cut_at_the_limit(world: World) -> None:
    for route in _body_routes(world):
        endless = Endless()
        await world.check(route, world.path(route), JSON, endless, "chunked 64 MiB")
        assert not endless.read_whole, f"{route.template} read a whole endless body"
        await world.check(route, world.path(route), JSON, b" " * 300_000, "300 kB")


async def test_hostile_path_parameters(world: World) -> None:
    with_ids = [r for r in world.routes
                if r.operation_id is not None and ("{sessionId}" in r.template
                                                   or "{name}" in r.template)]
    assert len(with_ids) >= 4
    for route in with_ids:
        plausible = world.plausible.get(route.operation_id or "")
        content = json.dumps(plausible).encode() if plausible is not None else None
        sessions = "{sessionId}" in route.template
        for value in HOSTILE_IDS + (CONTROL_IDS if sessions else ()):
            response = await world.check(route, world.path(route, value),
                                         JSON if content else None, content, f"id {value[:40]!r}")
            assert response.status_code >= 400, f"{route.template} took {value[:40]!r}"
    read = Route("GET", "/quality-on-demand/v1/sessions/{sessionId}")
    assert (await world.send(read, world.path(read))).status_code == 200


def drawn(count: int, routes: int) -> list[tuple[int, Any, int]]:
    """``count`` derandomised (route index, document, field index) triples."""
    found: list[tuple[int, Any, int]] = []

    @settings(max_examples=count, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(index=st.integers(0, routes - 1), document=documents, field=st.integers(0, 8))
    def collect(index: int, document: Any, field: int) -> None:
        found.append((index, document, field))

    collect()
    return found


async def test_drawn_documents_never_500_and_refusals_change_nothing(world: World) -> None:
    routes = _body_routes(world)
    for index, document, field in drawn(150, len(routes)):
        route = routes[index]
        plausible = _plausible_for(world, route)
        keys = [*plausible, "device", "phoneNumber", "maxAge", "duration"]
        body: Any = document if field == 0 else {**plausible, keys[field % len(keys)]: document}
        await world.check(route, world.path(route), JSON, json.dumps(body).encode(),
                          repr(body)[:80])


async def test_a_control_character_in_a_profile_name_is_refused_not_a_500(world: World) -> None:
    route = Route("GET", "/qos-profiles/v1/qos-profiles/{name}")
    for value in CONTROL_IDS:
        response = await world.check(route, world.path(route, value), None, None, value)
        assert response.status_code in (400, 404), response.text
