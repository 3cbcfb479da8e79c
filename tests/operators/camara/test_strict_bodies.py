"""Request bodies are held to the official YAML's schema, generated from the YAML itself.

For every operation of the table with a request body, the request schema of its definition
(``$ref`` resolved, CAMARA_common.yaml included, ``allOf`` merged, a discriminator followed to
the schema its value names) is walked from a valid base body; for each property with a
``type``, ``minimum``/``maximum``, ``enum``, ``pattern``, ``format``, ``minLength``/``maxLength``,
``minProperties``/``maxProperties``, ``minItems``, ``required`` or ``anyOf`` of requirements,
one body breaking that rule is built and sent through the gateway with a valid token. Each
must be a 400 with a code the YAML lists for that operation's 400 and a message naming the
field. A new API gets the checks for free: give it a base body below.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtests.camara_definitions import camara_dir
from operators.camara import OPERATIONS, Operation, needs_consent
from tests.operators.gateway.conftest import Harness

CAMARA_DIR = camara_dir()
pytestmark = pytest.mark.skipif(
    not CAMARA_DIR.is_dir(), reason=f"CAMARA definitions not found at {CAMARA_DIR}"
)

WITH_BODY = [op for op in OPERATIONS if op.request is not None]
MISSING = object()
DELETE = object()
RANDOM_SESSION = "00000000-0000-4000-8000-000000000000"

LENIENT: dict[tuple[str, str], str] = {}
"""Rules of the YAML the operator knowingly does not enforce, each with its reason."""

# -- the definitions ---------------------------------------------------------------------


@cache
def _document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _common() -> Path:
    return CAMARA_DIR / "commonalities" / "CAMARA_common.yaml"


@dataclass(frozen=True)
class Ref:
    """A schema and the file its own ``$ref``s are relative to."""

    schema: dict[str, Any]
    file: Path


def deref(node: dict[str, Any], file: Path) -> Ref:
    """Follow ``$ref`` (local, or into another file such as CAMARA_common.yaml) to a schema."""
    while "$ref" in node:
        target, _, pointer = str(node["$ref"]).partition("#")
        if target:
            candidate = (file.parent / target).resolve()
            file = candidate if candidate.is_file() else _common()
        node = _document(file)
        for part in pointer.strip("/").split("/"):
            node = node[part]
    return Ref(node, file)


@cache
def _definitions() -> dict[tuple[str, str], tuple[dict[str, Any], Path]]:
    """(METHOD, full path template) -> (the YAML operation, its file), for every API file."""
    found: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}
    for file in sorted(CAMARA_DIR.rglob("*.yaml")):
        spec = _document(file)
        if "paths" not in spec:
            continue
        base = "/" + spec["servers"][0]["url"].split("}", 1)[-1].strip("/")
        for path, methods in spec["paths"].items():
            for method, op in methods.items():
                if isinstance(op, dict) and "operationId" in op:
                    found[(method.upper(), base + path)] = (op, file)
    return found


def request_schema(operation: Operation) -> Ref:
    op, file = _definitions()[operation.key]
    body = deref(op["requestBody"], file)
    return deref(body.schema["content"]["application/json"]["schema"], body.file)


def _codes(node: Any) -> set[str]:
    """Every ``code`` enum value in a response schema."""
    if isinstance(node, dict):
        found = set()
        code = (
            node.get("properties", {}).get("code")
            if isinstance(node.get("properties"), dict)
            else None
        )
        if isinstance(code, dict) and "enum" in code:
            found |= set(code["enum"])
        for value in node.values():
            found |= _codes(value)
        return found
    if isinstance(node, list):
        return set().union(*(_codes(item) for item in node)) if node else set()
    return set()


def codes_of_400(operation: Operation) -> set[str]:
    op, file = _definitions()[operation.key]
    response = deref(op["responses"]["400"], file)
    return _codes(_inline(response.schema, response.file))


def _inline(node: Any, file: Path, depth: int = 0) -> Any:
    if depth > 20:
        return node
    if isinstance(node, dict):
        if "$ref" in node:
            ref = deref(node, file)
            return _inline(ref.schema, ref.file, depth + 1)
        return {key: _inline(value, file, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, file, depth + 1) for item in node]
    return node


# -- a schema as one object of rules --------------------------------------------------------


@dataclass
class Rules:
    """A schema with its ``allOf`` merged and its discriminator followed, for one value."""

    keywords: dict[str, Any]
    properties: dict[str, Ref]
    required: set[str]


def rules(ref: Ref, value: Any, expanded: frozenset[int] = frozenset()) -> Rules:
    schema, file = ref.schema, ref.file
    merged = Rules({}, {}, set())
    discriminator = schema.get("discriminator")
    if discriminator and isinstance(value, dict) and id(schema) not in expanded:
        chosen = discriminator.get("mapping", {}).get(value.get(discriminator["propertyName"]))
        if chosen is not None:
            return rules(deref({"$ref": chosen}, file), value, expanded | {id(schema)})
    for part in schema.get("allOf", []):
        inner = rules(deref(part, file), value, expanded | {id(schema)})
        merged.keywords.update(inner.keywords)
        merged.properties.update(inner.properties)
        merged.required |= inner.required
    for key, sub in schema.get("properties", {}).items():
        merged.properties[key] = deref(sub, file)
    merged.required |= set(schema.get("required", []))
    merged.keywords.update(
        {k: v for k, v in schema.items() if k not in ("allOf", "properties", "required")}
    )
    return merged


# -- violations ----------------------------------------------------------------------------

Path_ = tuple[str | int, ...]

_WRONG_TYPE: dict[str, list[Any]] = {
    "integer": ["24", True, 1.5],
    "number": ["1.5", True],
    "string": [123, True],
    "boolean": ["true", 1],
    "object": ["x", []],
    "array": ["x", {}],
}
_BAD_FORMAT: dict[str, list[str]] = {
    "ipv4": ["999.1.1.1", "10.0.0"],
    "ipv6": ["not-an-ipv6", "2001:db8:::1"],
    "date": ["2020-13-45", "22/08/1978"],
    "date-time": ["yesterday", "2030-01-01T00:00:00"],  # RFC 3339 needs its offset
    "email": ["not-an-email"],
    "uri": ["not a uri"],
}


@dataclass(frozen=True)
class Violation:
    path: Path_
    """Where the bad value goes (for ``required``: the property taken away)."""
    value: Any
    rule: str
    names: tuple[str, ...]
    """Any of these in the message names the field."""

    @property
    def label(self) -> str:
        return f"{'.'.join(map(str, self.path)) or 'body'} {self.rule}"


def _name_of(path: Path_, fallback: tuple[str, ...]) -> tuple[str, ...]:
    named = [part for part in path if isinstance(part, str)]
    return (named[-1],) if named else fallback


def _not_matching(pattern: str) -> str:
    return next(s for s in ("x", "not matching!", "+0", "", "-") if not re.search(pattern, s))


def violations(ref: Ref, value: Any, path: Path_ = ()) -> Iterator[Violation]:
    """One violating value per rule of the schema at ``path`` (``value`` is its base value)."""
    r = rules(ref, value)
    kw = r.keywords
    name = _name_of(path, tuple(r.properties))
    kind = kw.get("type", "object" if r.properties else None)
    if path and not kw.get("nullable"):
        yield Violation(path, None, "null", name)
    for wrong in _WRONG_TYPE.get(kind, []) if path else []:
        if kind == "integer" and wrong == "24" and isinstance(value, int):
            wrong = str(value)  # the very number, as a string: no coercion
        yield Violation(path, wrong, f"type {kind} given {wrong!r}", name)
    if "enum" in kw:
        yield Violation(path, "NOT_IN_THE_ENUM", "enum", name)
    if kind in ("integer", "number"):
        step = 1 if kind == "integer" else 0.5
        if "minimum" in kw:
            yield Violation(path, kw["minimum"] - step, "minimum", name)
        if "maximum" in kw:
            yield Violation(path, kw["maximum"] + step, "maximum", name)
        if kw.get("format") == "int32" and kw.get("maximum", 2**31) >= 2**31 - 1:
            yield Violation(path, 2**31, "format int32", name)
    if kind == "string":
        if "pattern" in kw:
            yield Violation(path, _not_matching(kw["pattern"]), "pattern", name)
        if kw.get("minLength", 0) > 0:
            yield Violation(path, "a" * (kw["minLength"] - 1), "minLength", name)
        if "maxLength" in kw:
            yield Violation(path, "a" * (kw["maxLength"] + 1), "maxLength", name)
        for bad in _BAD_FORMAT.get(kw.get("format", ""), []):
            yield Violation(path, bad, f"format {kw['format']}", name)
    if kind == "array" and isinstance(value, list):
        if kw.get("minItems", 0) > 0:
            yield Violation(path, value[: kw["minItems"] - 1], "minItems", name)
        if value and "items" in kw:
            yield from violations(deref(kw["items"], ref.file), value[0], (*path, 0))
    if kind == "object" and isinstance(value, dict):
        yield from _object_violations(r, value, path, name)
        for key, sub in r.properties.items():
            child = value.get(key, MISSING)
            if child is MISSING and rules(sub, None).keywords.get("type") in ("object", "array"):
                child_kw = rules(sub, None).keywords
                yield Violation((*path, key), None, "null", (key,))
                for wrong in _WRONG_TYPE[child_kw["type"]]:
                    yield Violation((*path, key), wrong, f"type {child_kw['type']}", (key,))
                continue
            yield from violations(sub, None if child is MISSING else child, (*path, key))


def _object_violations(
    r: Rules, value: dict[str, Any], path: Path_, name: tuple[str, ...]
) -> Iterator[Violation]:
    kw = r.keywords
    for key in sorted(r.required):
        if key in value:
            yield Violation((*path, key), DELETE, "required", (key,))
    if kw.get("minProperties", 0) > 0:
        yield Violation(path, {}, "minProperties", name)
    if "maxProperties" in kw:
        extra = {f"unexpected{i}": "x" for i in range(kw["maxProperties"] + 1 - len(value))}
        yield Violation(path, {**value, **extra}, "maxProperties", name)
    alternatives = [set(alt.get("required", [])) for alt in kw.get("anyOf", [])]
    if alternatives and all(alternatives):
        everywhere = set.intersection(*alternatives)
        some = set.union(*alternatives)
        kept = {k: v for k, v in value.items() if k in everywhere or k not in some}
        if not any(alt <= kept.keys() for alt in alternatives):
            yield Violation(path, kept, "anyOf required", name)


def apply(body: dict[str, Any], violation: Violation) -> dict[str, Any]:
    if not violation.path:
        assert isinstance(violation.value, dict)
        return dict(violation.value)
    changed = copy.deepcopy(body)
    node: Any = changed
    for part in violation.path[:-1]:
        node = node[part]
    if violation.value is DELETE:
        del node[violation.path[-1]]
    else:
        node[violation.path[-1]] = violation.value
    return changed


# -- valid bodies and how to call ---------------------------------------------------------


def base_bodies(harness: Harness) -> dict[str, dict[str, Any]]:
    """A valid body per operation, rich enough that nested rules get checked too."""
    number = harness.number("approves")
    subscriber = harness.operator.subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4
    device = {
        "phoneNumber": number,
        "ipv4Address": {
            "publicAddress": "84.125.93.10",
            "privateAddress": str(subscriber.ipv4),
            "publicPort": 59765,
        },
        "ipv6Address": "2001:db8:85a3:8d3:1319:8a2e:370:7344",
        "networkAccessIdentifier": "123456789@domain.com",
    }
    ports = {"ranges": [{"from": 5010, "to": 5020}], "ports": [5060, 5070]}
    return {
        "checkSimSwap": {"phoneNumber": number, "maxAge": 240},
        "retrieveSimSwapDate": {"phoneNumber": number},
        "phoneNumberVerify": {"phoneNumber": number},
        "getReachabilityStatus": {"device": device},
        "getRoamingStatus": {"device": device},
        "verifyLocation": {
            "device": device,
            "area": {
                "areaType": "CIRCLE",
                "center": {"latitude": 40.4168, "longitude": -3.7038},
                "radius": 50000,
            },
            "maxAge": 120,
        },
        "retrieveLocation": {"device": device, "maxAge": 60, "maxSurface": 1_000_000},
        "createSession": {
            "device": device,
            "applicationServer": {"ipv4Address": "198.51.100.0/24", "ipv6Address": "2001:db8::1"},
            "devicePorts": ports,
            "applicationServerPorts": ports,
            "qosProfile": "QOS_E",
            "sink": "https://application-server.com/notifications",
            "sinkCredential": {
                "credentialType": "ACCESSTOKEN",
                "accessToken": "it-is-a-token",
                "accessTokenExpiresUtc": "2030-01-01T00:00:00Z",
                "accessTokenType": "bearer",
            },
            "duration": 600,
        },
        "extendQosSessionDuration": {"requestedAdditionalDuration": 60},
        "retrieveSessionsByDevice": {"device": device},
        "retrieveQoSProfiles": {"device": device, "name": "QOS_E", "status": "ACTIVE"},
        "retrieveStatus": {
            "phoneNumber": number,
            "scopes": ["kyc-match:match"],
            "purpose": "dpv:IdentityVerification",
            "requestCaptureUrl": True,
            "callbackUrl": "https://consumer.example.com/consent/callback",
        },
        "KYC_Match": {
            "phoneNumber": number,
            "idDocument": "66666666q",
            "name": "Federica Sanchez Arjona",
            "givenName": "Federica",
            "familyName": "Sanchez Arjona",
            "nameKanaHankaku": "federica",
            "nameKanaZenkaku": "\uff26\uff45\uff44\uff45\uff52\uff49\uff43\uff41",  # fullwidth
            "middleNames": "Sanchez",
            "familyNameAtBirth": "YYYY",
            "address": "Tokyo-to Chiyoda-ku Iidabashi 3-10-10",
            "streetName": "Nicolas Salmeron",
            "streetNumber": "4",
            "postalCode": "1028460",
            "region": "Tokyo",
            "locality": "ZZZZ",
            "country": "JP",
            "houseNumberExtension": "VVVV",
            "birthdate": "1978-08-22",
            "email": "abc@example.com",
            "gender": "OTHER",
        },
    }


async def token_for(harness: Harness, operation: Operation) -> tuple[str, bool]:
    """A valid token for ``operation`` and whether it names the device (the body then must
    not): a TS.43 operator token's where the network must have authenticated the subscriber
    (Number Verification, whose body's number is the one to verify), two-legged where the
    purpose allows, else CIBA."""
    scope = f"{' '.join(operation.scopes[0])} {operation.purpose}"
    if operation.network_authenticated:
        ts43 = harness.operator.identity.subjects.issue_operator_token(harness.number("approves"))
        answer = await harness.client.ciba(f"operatortoken:{ts43}", scope)
        return str(answer["access_token"]), False
    policy = harness.operator.config.purpose(operation.purpose)
    if needs_consent(harness.operator.config, operation.purpose) or (
        policy is not None and not policy.two_legged
    ):
        return await harness.three_legged("approves", scope), True
    return await harness.two_legged(scope), False


def url(operation: Operation, session_id: str = RANDOM_SESSION) -> str:
    return operation.template.replace("{sessionId}", session_id)


def _ids(operations: list[Operation]) -> list[str]:
    return [op.operation_id for op in operations]


# -- the tests -----------------------------------------------------------------------------


def test_every_operation_with_a_body_has_a_base_body_and_a_definition() -> None:
    for operation in WITH_BODY:
        assert operation.key in _definitions(), operation.key
        assert "400" in _definitions()[operation.key][0]["responses"], operation.operation_id
        assert codes_of_400(operation), operation.operation_id


@pytest.mark.parametrize("operation", WITH_BODY, ids=_ids(WITH_BODY))
async def test_bodies_that_break_the_yaml_schema_are_refused_naming_the_field(
    gateway_harness: Harness, operation: Operation
) -> None:
    harness = gateway_harness
    base = base_bodies(harness)[operation.operation_id]
    token, _ = await token_for(harness, operation)
    allowed = codes_of_400(operation)
    table = [
        v
        for v in violations(request_schema(operation), base)
        if (operation.operation_id, v.label) not in LENIENT
    ]
    assert len(table) >= 3, "the generator found no rule to break"
    wrong = []
    for violation in table:
        body = apply(base, violation)
        r = await harness.http.post(
            url(operation), json=body, headers={"Authorization": f"Bearer {token}"}
        )
        answer = r.json() if r.headers.get("content-type", "").startswith("application/") else {}
        ok = (
            r.status_code == 400
            and answer.get("status") == 400
            and answer.get("code") in allowed
            and any(n in str(answer.get("message", "")) for n in violation.names)
        )
        if not ok:
            wrong.append(f"{violation.label}: {r.status_code} {r.text[:200]}")
    assert not wrong, f"{len(wrong)} of {len(table)} bad bodies not refused right:\n" + "\n".join(
        wrong
    )


@pytest.mark.parametrize("operation", WITH_BODY, ids=_ids(WITH_BODY))
async def test_the_valid_base_body_still_passes(
    gateway_harness: Harness, operation: Operation
) -> None:
    harness = gateway_harness
    body = base_bodies(harness)[operation.operation_id]
    token, three_legged = await token_for(harness, operation)
    auth = {"Authorization": f"Bearer {token}"}
    if three_legged:  # the token names the device: the body must not
        body = {k: v for k, v in body.items() if k not in ("device", "phoneNumber")}
    session_id = RANDOM_SESSION
    if operation.operation_id == "extendQosSessionDuration":
        create = next(op for op in WITH_BODY if op.operation_id == "createSession")
        create_token, _ = await token_for(harness, create)
        created = await harness.http.post(
            url(create),
            json=base_bodies(harness)["createSession"],
            headers={"Authorization": f"Bearer {create_token}"},
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["sessionId"]
    r = await harness.http.post(url(operation, session_id), json=body, headers=auth)
    assert 200 <= r.status_code < 300, r.text
