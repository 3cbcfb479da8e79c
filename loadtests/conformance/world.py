"""The state one scenario builds up step by step, and the request it finally sends.

``Given`` steps only record what the request should be (resource, headers, which token, which
device, body edits); the request is sent once, lazily, before the first ``Then`` step, so a
``Given`` or ``And`` written after ``When`` (CAMARA does this for "a network error prevents
...") still shapes it. Tokens are minted at send time from the recorded needs, because which
token fits depends on the device choice the scenario may make in any order.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .openapi import ApiSpec, Operation
from .target import Target, TokenNeed, Unsupported

__all__ = ["ABSENT", "DEFAULT", "REMOVE", "ApiUnderTest", "StepFailed", "World"]

PURPOSES: dict[str, str] = {
    "quality-on-demand": "dpv:RequestedServiceProvision",
    "qos-profiles": "dpv:RequestedServiceProvision",
}
DEFAULT_PURPOSE = "dpv:FraudPreventionAndDetection"
NETWORK_AUTHENTICATED = frozenset({"number-verification"})
"""APIs that answer only a subscriber the network authenticated (a TS.43 token here)."""
DEVICE_FIELDS: dict[str, str | None] = {
    "sim-swap": "phoneNumber",
    "kyc-match": "phoneNumber",
    "consent-info": "phoneNumber",
    "number-verification": None,
}


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


DEFAULT = _Sentinel("DEFAULT")
"""The body is the schema-built default (plus the scenario's edits)."""
ABSENT = _Sentinel("ABSENT")
"""No request body at all."""
REMOVE = _Sentinel("REMOVE")
"""A body edit that deletes a property."""


class StepFailed(AssertionError):  # noqa: N818 - a step's verdict, like AssertionError
    """A ``Then`` step found the response different from what the scenario expects."""


@dataclass(frozen=True)
class ApiUnderTest:
    """One feature file's API: its key (the YAML's stem), its spec, its operation."""

    key: str
    spec: ApiSpec
    operation_id: str | None

    @property
    def device_field(self) -> str | None:
        return DEVICE_FIELDS.get(self.key, "device")

    @property
    def purpose(self) -> str:
        return PURPOSES.get(self.key, DEFAULT_PURPOSE)


def _split(path: str) -> list[str | int]:
    """``$.device.ipv4Address`` or ``$[0].name`` into keys; indices become ints."""
    text = path.strip().removeprefix("$")
    parts: list[str | int] = []
    for chunk in text.replace("[", ".[").split("."):
        if not chunk:
            continue
        if chunk.startswith("[") and chunk.endswith("]"):
            parts.append(int(chunk[1:-1]))
        else:
            parts.append(chunk)
    return parts


_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """The value at a JSONPath-like ``path`` in ``document``, or ``_MISSING``."""
    node = document
    for part in _split(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return _MISSING
            node = node[part]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def present(document: Any, path: str) -> bool:
    return lookup(document, path) is not _MISSING


def assign(document: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with :data:`REMOVE`, delete) the property at ``path``, creating parents."""
    parts = _split(path)
    node: Any = document
    for part in parts[:-1]:
        if isinstance(node, dict):
            if not isinstance(node.get(part), dict):
                if value is REMOVE:
                    return
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if value is REMOVE:
        if isinstance(node, dict):
            node.pop(last, None)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)


@dataclass
class World:
    """Everything one scenario knows; fresh per scenario."""

    api: ApiUnderTest
    target: Target
    run_cache: dict[str, Any]
    resource: str | None = None
    http_method: str | None = None
    operation: Operation | None = None
    headers: dict[str, str] = field(default_factory=dict)
    removed_headers: set[str] = field(default_factory=set)
    auth: str = "valid"
    """valid, three, two, none, expired, invalid, malformed, no-scope, other-client,
    other-number, literal (a header value set verbatim)."""
    role: str = "approves"
    device_mode: str | None = None
    device_explicit: bool = False
    body: Any = DEFAULT
    body_edits: list[tuple[str, Any]] = field(default_factory=list)
    deferred_edits: list[Callable[[World], Awaitable[None]]] = field(default_factory=list)
    path_params: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    send_requested: bool = False
    response: httpx.Response | None = None
    sent_body: Any = None
    sent_headers: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    # -- derived -----------------------------------------------------------------------------

    def op(self) -> Operation:
        """The operation being exercised (named by a When step, else the feature's)."""
        if self.operation is not None:
            return self.operation
        operations = self.api.spec.operations
        if self.api.operation_id in operations:
            return operations[self.api.operation_id]
        if self.http_method and self.resource:
            for candidate in operations.values():
                if candidate.method == self.http_method and self.resource.endswith(candidate.path):
                    return candidate
        return next(iter(operations.values()))

    @property
    def three_legged(self) -> bool:
        """Whether the token to send identifies the device (else the body must)."""
        if self.auth in {"three", "other-number"}:
            return True
        if self.auth == "two":
            return False
        if self.device_mode is not None:
            return self.device_mode == "token"
        return self.target.device_in_token

    async def number(self, role: str | None = None) -> str:
        return await self.target.environment.test_number(role or self.role)

    async def token(self, need: TokenNeed) -> str:
        return await self.target.tokens.token(need)

    def need(self, phone_number: str | None, **changes: Any) -> TokenNeed:
        op = self.op()
        return TokenNeed(
            scopes=op.scopes[:1] or (),
            purpose=self.api.purpose,
            phone_number=phone_number,
            network=phone_number is not None and self.api.key in NETWORK_AUTHENTICATED,
            **changes,
        )

    # -- sending -----------------------------------------------------------------------------

    async def _authorization(self) -> str | None:
        kind = self.auth
        if kind == "none":
            return None
        if kind == "literal":
            return self.headers.get("Authorization")
        if kind == "malformed":
            return "Bearer not-a-jwt"
        needs_device = self.api.device_field is not None or self.api.key in {"number-verification"}
        three = self.three_legged and (needs_device or kind in {"three", "other-number"})
        if self.api.key == "number-verification" and kind not in {"two", "not-network"}:
            three = True
        if kind == "not-network":
            three = False
        number: str | None = None
        if kind == "other-number":
            number = await self.number(self.facts.get("other_role", "never-swapped"))
        elif three:
            number = await self.number()
        if kind == "no-scope":
            other = "sim-swap:check" if self.api.key != "sim-swap" else "qos-profiles:read"
            need = TokenNeed((other,), DEFAULT_PURPOSE, number)
        elif kind == "expired":
            need = self.need(number, expired=True)
        elif kind == "other-client":
            need = self.need(number, client="secondary")
        else:
            need = self.need(number)
        token = await self.token(need)
        if kind == "invalid":
            head, _, signature = token.rpartition(".")
            flipped = ("A" if signature[:1] != "A" else "B") + signature[1:]
            token = f"{head}.{flipped}"
        return f"Bearer {token}"

    async def build_body(self) -> Any:
        """The JSON body to send (or raw text, or :data:`ABSENT`)."""
        if self.body is ABSENT or isinstance(self.body, str):
            return self.body
        op = self.op()
        number = await self.number()
        if isinstance(self.body, dict):
            body: Any = copy.deepcopy(self.body)
        else:
            body = self.default_body(op, number)
        if not isinstance(body, dict):
            return body
        device_field = self.api.device_field
        if device_field and op.request_schema is not None and not self.device_explicit:
            properties = self._properties(op)
            if device_field in properties:
                if self.three_legged or self.auth in {"none", "expired", "invalid", "malformed"}:
                    body.pop(device_field, None)
                else:
                    body[device_field] = (
                        {"phoneNumber": number} if device_field == "device" else number
                    )
        for edit in self.deferred_edits:
            self.body = body
            await edit(self)
            body = self.body
        for path, value in self.body_edits:
            assign(body, path, value)
        return body

    def _properties(self, op: Operation) -> dict[str, Any]:
        schema = self.api.spec.deref(op.request_schema)
        props: dict[str, Any] = dict(schema.get("properties") or {})
        for part in schema.get("allOf", []):
            props.update(self.api.spec.deref(part).get("properties") or {})
        return props

    def default_body(self, op: Operation, number: str) -> Any:
        cache = self.run_cache

        def values(name: str, schema: dict[str, Any]) -> Any:
            if name == "phoneNumber":
                return number
            if name in self.facts.get("defaults", {}):
                return self.facts["defaults"][name]
            if name in cache.get("defaults", {}):
                return cache["defaults"][name]
            return ...

        body = self.api.spec.example(op.request_schema, values)
        if isinstance(body, dict) and self.api.device_field == "device":
            body.pop("device", None)
        return body

    async def send(self) -> httpx.Response:
        """Build and send the request; the response is kept for the Then steps."""
        op = self.op()
        if self.api.key in {"quality-on-demand", "qos-profiles"}:
            await qos_profiles(self)
            if "{name}" in op.path:
                self.path_params.setdefault("name", self.run_cache["defaults"]["qosProfile"])
        if "{sessionId}" in op.path and "sessionId" not in self.path_params:
            await create_session(self)
        path = op.path
        for name, value in self.path_params.items():
            path = path.replace("{" + name + "}", value)
        if self.http_method and self.resource and "{" not in self.resource:
            method = self.http_method
            path = self.resource.replace("{api-root}", "").replace("{apiRoot}", "")
            if not path.startswith(op.path.split("{")[0].rstrip("/")) and op.path.startswith(path):
                path = op.path
        else:
            method = op.method
        headers: dict[str, str] = {}
        if "x-correlator" not in self.removed_headers:
            headers["x-correlator"] = self.headers.get("x-correlator") or str(uuid.uuid4())
        for name, value in self.headers.items():
            if name.lower() not in {"authorization", "x-correlator"}:
                headers[name] = value
        authorization = await self._authorization()
        if authorization is not None and "authorization" not in self.removed_headers:
            headers["Authorization"] = authorization
        body = await self.build_body() if method in {"POST", "PUT", "PATCH"} else ABSENT
        kwargs: dict[str, Any] = {}
        if body is ABSENT:
            pass
        elif isinstance(body, str):
            kwargs["content"] = body.encode()
        else:
            import json

            kwargs["content"] = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
        if body is ABSENT and method in {"GET", "DELETE"}:
            headers.pop("Content-Type", None)
        self.sent_body = body
        self.sent_headers = headers
        self.response = await self.target.http.request(method, path, headers=headers, **kwargs)
        self.log.append(
            f"{method} {path} -> {self.response.status_code} {self.response.text[:300]}"
        )
        if op.operation_id == "createSession" and self.response.status_code == 201:
            self._forget_session(self.response.json().get("sessionId"), headers)
        return self.response

    def _forget_session(self, session_id: str | None, headers: dict[str, str]) -> None:
        """A session the scenario itself created is deleted afterwards, freeing the device."""
        delete = self.api.spec.operations.get("deleteSession")
        if session_id is None or delete is None:
            return

        async def remove() -> None:
            number = await self.number()
            need = TokenNeed(
                delete.scopes[:1],
                self.api.purpose,
                None if "device" in (self.sent_body or {}) else number,
            )
            token = await self.token(need)
            await self.target.http.delete(
                delete.path.replace("{sessionId}", session_id),
                headers={"Authorization": f"Bearer {token}"},
            )

        self.cleanups.append(remove)

    def json(self) -> Any:
        if self.response is None:
            raise StepFailed("no response: the request was never sent")
        try:
            return self.response.json()
        except ValueError as error:
            raise StepFailed(f"response body is not JSON: {self.response.text[:200]!r}") from error


def unsupported(reason: str) -> Unsupported:
    return Unsupported(reason)


# -- QoS helpers shared by the QoD and QoS Profiles steps -----------------------------------

_UNITS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Milliseconds": 0.001}


def seconds(duration: dict[str, Any] | None) -> float | None:
    """A CAMARA ``Duration`` ({value, unit}) in seconds."""
    if not duration:
        return None
    return float(duration["value"]) * _UNITS.get(str(duration.get("unit")), 1)


async def qos_profiles(world: World) -> list[dict[str, Any]]:
    """The target's QoS profiles, asked once per run through the QoS Profiles API itself."""
    cache = world.run_cache
    if "qos_profiles" not in cache:
        token = await world.token(TokenNeed(("qos-profiles:read",), PURPOSES["qos-profiles"]))
        response = await world.target.http.post(
            "/qos-profiles/v1/retrieve-qos-profiles",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            raise Unsupported(f"cannot list QoS profiles: {response.status_code}")
        profiles: list[dict[str, Any]] = response.json()
        cache["qos_profiles"] = profiles
        active = [p for p in profiles if p.get("status") == "ACTIVE"]
        if not active:
            raise Unsupported("the target has no ACTIVE QoS profile")
        chosen = active[0]
        high = seconds(chosen.get("maxDuration")) or 3600
        cache["defaults"] = {
            "qosProfile": chosen["name"],
            "duration": int(min(60, high)),
            "applicationServer": {"ipv4Address": "198.51.100.10"},
        }
        cache["profile"] = chosen
    result: list[dict[str, Any]] = cache["qos_profiles"]
    return result


async def create_session(world: World, duration: int | None = None) -> dict[str, Any]:
    """Create a QoS session for the scenario's device (deleted again after the scenario)."""
    await qos_profiles(world)
    create = world.api.spec.operations.get("createSession")
    if create is None:
        raise Unsupported("no createSession operation in this definition")
    number = await world.number()
    three = world.three_legged and world.auth != "two"
    need = TokenNeed(create.scopes[:1], world.api.purpose, number if three else None)
    token = await world.token(need)
    body: dict[str, Any] = world.api.spec.example(
        create.request_schema,
        lambda name, _: world.run_cache["defaults"].get(name, ...),
    )
    body.pop("device", None)
    if duration is not None:
        body["duration"] = duration
    if not three:
        body["device"] = {"phoneNumber": number}
    response = await world.target.http.post(
        create.path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 201:
        raise Unsupported(f"cannot create a QoS session: {response.status_code} {response.text}")
    session: dict[str, Any] = response.json()
    world.facts["session_request"] = body
    world.facts["session"] = session
    world.path_params["sessionId"] = session["sessionId"]
    delete = world.api.spec.operations.get("deleteSession")
    if delete is not None:
        delete_need = TokenNeed(delete.scopes[:1], world.api.purpose, need.phone_number)

        async def remove() -> None:
            delete_token = await world.token(delete_need)
            await world.target.http.delete(
                delete.path.replace("{sessionId}", session["sessionId"]),
                headers={"Authorization": f"Bearer {delete_token}"},
            )

        world.cleanups.append(remove)
    return session
