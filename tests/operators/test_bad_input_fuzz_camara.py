"""Bad input at every CAMARA route behind an operator's gateway: never a 500, and a refusal
changes nothing.

The routes are the operation table's (:data:`operators.camara.OPERATIONS`, checked against the
app's own route table), each called with a valid token holding the operation's scope and a
purpose (two-legged where the purpose allows, CIBA otherwise), so the hostile body gets past
authentication and admission and reaches the CAMARA layer. Each operation with a body gets
the shared battery (:mod:`tests.fuzz_bodies`) built around its valid body, an endless chunked
body and a 300 kB one, and then a bounded, derandomised set of documents drawn by hypothesis;
each operation with a path parameter gets hostile ids (not a UUID, a surrogate's bytes,
invalid UTF-8, 10 kB).

A refusal leaves the operator's database as it was (no usage event, no QoD session in the
integrator's table, no policy-function session in ``pcf_sessions``, no consent or token
written), and costs the throttle what any refused call costs: nothing when the gateway's
threat protection refuses the body (that runs before authentication), at most one unit (the
attempt, as for any admitted call the CAMARA layer then refuses) otherwise, so a flood of bad
bodies is throttled like any other flood but never charged twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from operators.camara import OPERATIONS, Operation
from operators.config import Plan
from operators.errors import CamaraError
from operators.gateway import ThreatLimits
from operators.gateway.threat_protection import inspect_body
from operators.operator import create_operator_app
from operators.policies.throttle import ThrottleDecision, ThrottlePolicy
from tests.fuzz_bodies import JSON, Endless, assert_error_shape, battery, documents
from tests.operators.camara.conftest import gateway_harness  # noqa: F401 - a fixture
from tests.operators.camara.test_strict_bodies import base_bodies, token_for
from tests.operators.gateway.conftest import Harness

WITH_BODY = [op for op in OPERATIONS if op.request is not None]
WITH_PATH_PARAMETER = [op for op in OPERATIONS if "{" in op.path]
HOSTILE_IDS = (
    "not-a-uuid",
    "%ED%A0%80",  # a lone surrogate's bytes (CESU-8), as a client can put one in a path
    "%ED%B0%80-0000-4000-8000-000000000000",
    "%FF%FE%00",
    "%00",
    "..%2F..%2Fadmin",
    "%7B%22a%22%3A1%7D",
    "a" * 10_240,
    "00000000-0000-4000-8000-000000000000" + "0" * 10_000,
)


class CountingThrottle:
    """The operator's throttle, counting the calls it let through (units consumed)."""

    def __init__(self, inner: ThrottlePolicy) -> None:
        self.inner = inner
        self.consumed = 0

    def check(self, application: str, plan: Plan) -> ThrottleDecision:
        decision = self.inner.check(application, plan)
        self.consumed += decision.allowed
        return decision


@dataclass
class World:
    harness: Harness
    throttle: CountingThrottle
    tokens: dict[str, str]
    bodies: dict[str, dict[str, Any]]
    session_id: str
    """A live QoD session (another subscriber's than the bodies name), for the extend route."""

    def state(self) -> Any:
        db = self.harness.operator.db
        tables = [r["name"] for r in db.all(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, map(tuple, db.all(f"SELECT * FROM {t}")))) for t in tables}

    def path(self, operation: Operation, value: str | None = None) -> str:
        path = operation.template
        path = path.replace("{sessionId}", value if value is not None else self.session_id)
        return path.replace("{name}", value if value is not None else "QOS_E")

    async def send(self, operation: Operation, path: str, content_type: str | None = None,
                   content: bytes | AsyncIterable[bytes] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[operation.operation_id]}"}
        if content_type is not None:
            headers["content-type"] = content_type
        return await self.harness.http.request(
            operation.method, path, content=content, headers=headers)

    def check(self, operation: Operation, response: httpx.Response, before: Any,
              consumed: int, what: str, *, threat_refused: bool = False) -> None:
        where = f"{operation.method} {operation.template} <- {what}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        if response.status_code < 400:
            return
        assert_error_shape(response, where)
        assert self.state() == before, f"{where}: a refusal changed the operator's database"
        spent = self.throttle.consumed - consumed
        assert spent <= (0 if threat_refused else 1), f"{where}: cost the throttle {spent}"


def _threat_refused(content_type: str, body: bytes) -> bool:
    """Whether the gateway's first policy refuses this body (before authentication)."""
    try:
        inspect_body(content_type, body, ThreatLimits())
    except CamaraError:
        return True
    return False


@pytest.fixture
async def world(gateway_harness: Harness) -> AsyncIterator[World]:  # noqa: F811 - the fixture
    harness = gateway_harness
    admission = harness.operator.gateway.admission
    throttle = CountingThrottle(admission.throttle)
    admission.throttle = throttle
    tokens: dict[str, str] = {}
    bodies = base_bodies(harness)
    for operation in OPERATIONS:
        token, three_legged = await token_for(harness, operation)
        tokens[operation.operation_id] = token
        if three_legged and operation.operation_id in bodies:  # the token names the device
            bodies[operation.operation_id] = {
                k: v for k, v in bodies[operation.operation_id].items()
                if k not in ("device", "phoneNumber")}
    created = await harness.http.post(
        "/quality-on-demand/v1/sessions",
        json={**bodies["createSession"], "device": {"phoneNumber": harness.number("roaming")}},
        headers={"Authorization": f"Bearer {tokens['createSession']}"},
    )
    assert created.status_code == 201, created.text
    yield World(harness, throttle, tokens, bodies, created.json()["sessionId"])


def test_every_operation_is_a_route_of_the_operator_app(gateway_harness: Harness) -> None:  # noqa: F811
    paths = create_operator_app(gateway_harness.operator).openapi()["paths"]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    assert {op.key for op in OPERATIONS} <= routes
    assert len(WITH_BODY) >= 11 and len(WITH_PATH_PARAMETER) >= 4


async def test_the_plausible_bodies_reach_the_service(world: World) -> None:
    """The tokens and bodies the battery starts from are good: hostile shapes get this far."""
    for operation in WITH_BODY:
        content = json.dumps(world.bodies[operation.operation_id]).encode()
        response = await world.send(operation, world.path(operation), JSON, content)
        assert response.status_code < 300, f"{operation.operation_id}: {response.text}"


async def test_the_battery_at_every_camara_route(world: World) -> None:
    for operation in WITH_BODY:
        plausible = world.bodies[operation.operation_id]
        for content_type, body in battery(plausible):
            before, consumed = world.state(), world.throttle.consumed
            response = await world.send(operation, world.path(operation), content_type, body)
            world.check(operation, response, before, consumed, f"{content_type} {body[:40]!r}",
                        threat_refused=_threat_refused(content_type, body))


async def test_huge_and_chunked_bodies_are_cut_at_the_limit(world: World) -> None:
    for operation in WITH_BODY:
        endless = Endless()
        before, consumed = world.state(), world.throttle.consumed
        response = await world.send(operation, world.path(operation), JSON, endless)
        world.check(operation, response, before, consumed, "chunked 64 MiB", threat_refused=True)
        assert response.status_code >= 400, operation.operation_id
        assert not endless.read_whole, f"{operation.template} read a whole endless body"
        before, consumed = world.state(), world.throttle.consumed
        response = await world.send(operation, world.path(operation), JSON, b" " * 300_000)
        world.check(operation, response, before, consumed, "300 kB", threat_refused=True)
        assert response.status_code >= 400, operation.operation_id


async def test_hostile_path_parameters(world: World) -> None:
    for operation in WITH_PATH_PARAMETER:
        plausible = world.bodies.get(operation.operation_id)
        for value in HOSTILE_IDS:
            content = json.dumps(plausible).encode() if plausible is not None else None
            before, consumed = world.state(), world.throttle.consumed
            response = await world.send(operation, world.path(operation, value),
                                        JSON if content else None, content)
            world.check(operation, response, before, consumed, f"id {value[:40]!r}")
            assert response.status_code >= 400, f"{operation.template} took id {value[:40]!r}"
    session = next(op for op in OPERATIONS if op.operation_id == "getSession")
    still = await world.send(session, world.path(session))
    assert still.status_code == 200, "the live session did not survive the hostile ids"


def drawn(count: int) -> list[tuple[int, Any, int]]:
    """``count`` (operation index, document, field index) triples drawn by hypothesis,
    derandomised: the same list on every run (sent afterwards, in the test's event loop)."""
    found: list[tuple[int, Any, int]] = []

    @settings(max_examples=count, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(index=st.integers(0, len(WITH_BODY) - 1), document=documents, field=st.integers(0, 8))
    def collect(index: int, document: Any, field: int) -> None:
        found.append((index, document, field))

    collect()
    return found


async def test_drawn_documents_never_500_and_refusals_change_nothing(world: World) -> None:
    for index, document, field in drawn(200):
        operation = WITH_BODY[index]
        plausible = world.bodies[operation.operation_id]
        keys = [*plausible, "device", "phoneNumber", "maxAge", "duration"]
        body: Any = document if field == 0 else {**plausible, keys[field % len(keys)]: document}
        content = json.dumps(body).encode()
        before, consumed = world.state(), world.throttle.consumed
        response = await world.send(operation, world.path(operation), JSON, content)
        world.check(operation, response, before, consumed, repr(body)[:80],
                    threat_refused=_threat_refused(JSON, content))
