"""The generic step library: CAMARA's Gherkin sentences as regular expressions and handlers.

Steps fall into four groups, in the order they appear below:

* request set-up: resource, headers, which access token, which device, body edits;
* environment: the sentences that assume a state of the network ("the SIM has been swapped",
  "the device is not connected", "a network error prevents ..."), mapped to test numbers and
  fault injection through :class:`~operators.conformance.target.Environment`; a state the
  target cannot produce raises :class:`~operators.conformance.target.Unsupported` (skip);
* sending;
* assertions on status, headers, body properties and schema compliance (:class:`StepFailed`).

A :class:`StepLibrary` is built fresh by :func:`default_library`; tests or other runners may
register more steps on their own instance.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .consent_info_steps import register_consent_info
from .target import Unsupported
from .world import (
    ABSENT,
    REMOVE,
    StepFailed,
    World,
    create_session,
    lookup,
    present,
    qos_profiles,
    seconds,
)

__all__ = ["StepLibrary", "default_library"]

Handler = Callable[..., Awaitable[None] | None]
Q = r'"([^"]*)"'


@dataclass(frozen=True)
class Step:
    pattern: re.Pattern[str]
    handler: Handler


class StepLibrary:
    """An ordered list of (pattern, handler); the first full match wins."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, pattern: str, handler: Handler, *, first: bool = False) -> None:
        """Register a step; ``first`` puts it ahead of the generic ones it specialises."""
        step = Step(re.compile(pattern, re.IGNORECASE), handler)
        if first:
            self.steps.insert(0, step)
        else:
            self.steps.append(step)

    def match(self, text: str) -> tuple[Handler, tuple[str, ...]] | None:
        clean = normalise(text)
        for step in self.steps:
            found = step.pattern.fullmatch(clean)
            if found:
                return step.handler, found.groups()
        return None

    async def run(self, world: World, text: str) -> bool:
        """Run the step; False when no pattern matches (an undefined step)."""
        matched = self.match(text)
        if matched is None:
            return False
        handler, groups = matched
        result = handler(world, *groups)
        if inspect.isawaitable(result):
            await result
        return True


def normalise(text: str) -> str:
    """One space between words, no trailing table pipe, no leading "that"."""
    text = re.sub(r"\s+", " ", text).strip().rstrip("|").strip()
    return re.sub(r"^that ", "", text)


# -- helpers -----------------------------------------------------------------------------


def _literal(text: str) -> Any:
    """A step's value as JSON when it parses (numbers, booleans, null), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _equal(actual: Any, expected: Any) -> bool:
    if actual == expected:
        return True
    return (
        isinstance(expected, str)
        and str(actual).lower() == expected.lower()
        and isinstance(actual, bool | int | float)
    )


def _value(world: World, path: str) -> Any:
    value = lookup(world.json(), path)
    if value is lookup.__globals__["_MISSING"]:
        raise StepFailed(f"response property {path} is absent in {world.json()!r}")
    return value


def _skip(reason: str) -> Callable[..., None]:
    def handler(world: World, *_: str) -> None:
        raise Unsupported(reason)

    return handler


def _noop(world: World, *_: str) -> None:
    return None


async def _subscriber(world: World) -> dict[str, Any]:
    key = f"subscriber:{world.role}"
    if key not in world.facts:
        world.facts[key] = await world.target.environment.subscriber(await world.number())
    record: dict[str, Any] = world.facts[key]
    return record


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- request set-up ----------------------------------------------------------------------


def resource(world: World, path: str, *_: str) -> None:
    world.resource = path


def header_set(world: World, name: str, value: str) -> None:
    if name.lower() == "authorization":
        world.auth = "literal"
    world.headers[name] = value
    world.removed_headers.discard(name.lower())


def header_removed(world: World, name: str) -> None:
    world.removed_headers.add(name.lower())
    world.headers.pop(name, None)
    if name.lower() == "authorization":
        world.auth = "none"


def auth(kind: str) -> Handler:
    def handler(world: World, *_: str) -> None:
        world.auth = kind
        if kind == "two":
            world.device_mode = "body"
        elif kind == "three":
            world.device_mode = "token"

    return handler


def x_correlator(world: World, *_: str) -> None:
    import uuid

    world.headers["x-correlator"] = str(uuid.uuid4())


def device_role(role: str, mode: str | None = None) -> Handler:
    def handler(world: World, *_: str) -> None:
        world.role = role
        if mode is not None:
            world.device_mode = mode

    return handler


def body_default(world: World, *_: str) -> None:
    world.body = None if world.body is ABSENT else world.body


def body_absent(world: World, *_: str) -> None:
    world.body = ABSENT


def body_literal(world: World, text: str) -> None:
    world.body = _literal(text) if text.strip().startswith(("{", "[")) else text


def body_invalid(world: World, *_: str) -> None:
    world.body = '{"this is": not JSON'


def prop_set(world: World, path: str, value: str) -> None:
    if path.lstrip("$.").split(".")[0] in {"device", "phoneNumber"}:
        world.device_explicit = True
    world.body_edits.append((path, _literal(value)))


def prop_set_object(world: World, path: str, value: str) -> None:
    prop_set(world, path, value)


def prop_removed(world: World, path: str, *_: str) -> None:
    if path.lstrip("$.").split(".")[0] == (world.api.device_field or ""):
        world.device_explicit = True
        if world.api.key == "kyc-match":
            # a KYC request asks about some attribute, and the schema's default body has
            # none: without one, removing the number leaves KYC_Match_400.2's empty body
            world.deferred_edits.append(kyc_combination)
    world.body_edits.append((path, REMOVE))


def props_removed(world: World, first: str, second: str) -> None:
    prop_removed(world, first)
    prop_removed(world, second)


_INVALID: dict[str, Any] = {
    "phoneNumber": "+00-12 not a number",
    "ipv4Address": {"publicAddress": "999.1.1.1", "publicPort": 70000},
    "ipv6Address": "not::an::ipv6::address::at::all::x",
    "networkAccessIdentifier": 12345,
    "networkIdentifier": 12345,
    "maxAge": "not-a-number",
    "hashedPhoneNumber": "not-a-sha256",
    "device": "not-an-object",
    "area": {"areaType": "CIRCLE", "center": {"latitude": 200, "longitude": 0}, "radius": 1},
}


def prop_not_compliant(world: World, path: str, *_: str) -> None:
    name = path.rstrip("]").split(".")[-1]
    value = _INVALID.get(name, {"not": "compliant"})
    if path.lstrip("$.").split(".")[0] in {"device", "phoneNumber"}:
        world.device_explicit = True
    world.body_edits.append((path, value))


async def prop_unknown_device(world: World, path: str, *_: str) -> None:
    number = await world.target.environment.unknown_number()
    world.device_explicit = True
    value: Any = number if path.endswith("phoneNumber") else {"phoneNumber": number}
    world.body_edits.append((path, value))


async def prop_valid_device(world: World, path: str, *_: str) -> None:
    number = await world.number()
    world.device_explicit = True
    if world.auth == "valid":
        world.device_mode = "body"  # the body names it, so the token must not
    value: Any = number if path.endswith("phoneNumber") else {"phoneNumber": number}
    world.body_edits.append((path, value))


def prop_unsupported_identifiers(world: World, path: str) -> None:
    world.device_explicit = True
    world.body_edits.append((path, {"networkAccessIdentifier": "123456789@domain.com"}))


async def prop_mismatched_identifiers(world: World, path: str) -> None:
    first = await world.number("approves")
    other = await world.target.environment.subscriber(await world.number("never-swapped"))
    if not other.get("ipv4"):
        raise Unsupported("the test numbers have no IPv4 address to mismatch with")
    world.device_explicit = True
    world.body_edits.append(
        (
            path,
            {
                "phoneNumber": first,
                "ipv4Address": {"publicAddress": other["ipv4"], "privateAddress": other["ipv4"]},
            },
        )
    )


def prop_max_age_huge(world: World, path: str, value: str) -> None:
    world.body_edits.append((path, int(value)))


# -- environment -------------------------------------------------------------------------


async def _hours_since(world: World, which: str) -> float:
    record = await _subscriber(world)
    now = datetime.now(UTC)
    if which == "swap":
        swaps = record.get("sim_swaps") or []
        if not swaps:
            raise Unsupported("the test number was never swapped")
        return (now - _parse_time(swaps[-1])).total_seconds() / 3600
    return (now - _parse_time(record["activated_at"])).total_seconds() / 3600


def swapped_within(world: World, hours: str = "240") -> None:
    world.role = "recent-swap"
    world.facts["swap_within"] = float(hours)


def max_age_at_least(world: World, name: str, hours: str) -> None:
    world.body_edits.append((f"$.{name}", min(2400, max(int(hours), 1))))


async def max_age_below_swap(world: World, path: str) -> None:
    world.role = "recent-swap"
    hours = await _hours_since(world, "swap")
    if hours < 2:
        raise Unsupported("the last swap is too recent for maxAge = hours since swap - 1")
    world.body_edits.append((path, max(1, math.floor(hours) - 1)))


def never_swapped(world: World, *_: str) -> None:
    world.role = "never-swapped"


async def activation_before(world: World, hours: str = "240") -> None:
    world.role = "never-swapped"
    if await _hours_since(world, "activation") <= float(hours):
        raise Unsupported(f"the never-swapped test SIM is younger than {hours} hours")


def max_age_less_than(world: World, path: str, hours: str) -> None:
    world.body_edits.append((path, max(1, int(hours) - 1)))


def swapped_long_ago(world: World, *_: str) -> None:
    world.role = "approves"  # swapped 400 days ago


def roaming_in_germany(world: World) -> Awaitable[None]:
    async def run() -> None:
        world.role = "roaming"
        number = await world.number()
        before = (await _subscriber(world)).get("roaming_country")
        await world.target.environment.change(number, "roaming", {"country": "DE"})
        world.facts.pop(f"subscriber:{world.role}", None)

        async def restore() -> None:
            await world.target.environment.change(number, "roaming", {"country": before})

        world.cleanups.append(restore)

    return run()


def outage(function: str) -> Handler:
    async def handler(world: World, *_: str) -> None:
        environment = world.target.environment
        await environment.set_outage(function, True)

        async def clear() -> None:
            await environment.set_outage(function, False)

        world.cleanups.append(clear)

    return handler


async def area_where_located(world: World, path: str, *_: str) -> None:
    location = (await _subscriber(world))["location"]
    world.body_edits.append(
        (
            path,
            {
                "areaType": "CIRCLE",
                "center": {"latitude": location["latitude"], "longitude": location["longitude"]},
                "radius": max(2000, int(location["accuracy"]) * 2),
            },
        )
    )


async def area_where_not_located(world: World, path: str) -> None:
    """A 2 km circle some 60 km north (south, near the pole) of the device: still within the
    network that locates it (the antipode is no operator's coverage), nowhere near it."""
    location = (await _subscriber(world))["location"]
    step = 0.55 if location["latitude"] < 85 else -0.55
    world.body_edits.append(
        (
            path,
            {
                "areaType": "CIRCLE",
                "center": {
                    "latitude": location["latitude"] + step,
                    "longitude": location["longitude"],
                },
                "radius": 2000,
            },
        )
    )


UNCOVERED = {"latitude": -48.8767, "longitude": -123.3933}
"""Point Nemo, the ocean's pole of inaccessibility: 2,688 km from the nearest land, so within
no operator's coverage."""


async def area_not_covered(world: World, path: str) -> None:
    world.body_edits.append((path, {"areaType": "CIRCLE", "center": UNCOVERED, "radius": 2000}))


def nv_body(kind: str) -> Handler:
    async def handler(world: World, path: str) -> None:
        world.role = "approves"
        number = await world.number("approves")
        if kind.startswith("other"):
            number = await world.number("never-swapped")
        value = hashlib.sha256(number.encode()).hexdigest() if kind.endswith("hash") else number
        world.body = {}
        world.body_edits.append((path, value))

    return handler


async def nv_both(world: World, path: str) -> None:
    number = await world.number()
    world.body = {
        "phoneNumber": number,
        "hashedPhoneNumber": hashlib.sha256(number.encode()).hexdigest(),
    }


def nv_extra_only(world: World, *_: str) -> None:
    world.body = {"additional_property": "foo_value"}


async def nv_same_number_ok(world: World, *_: str) -> None:
    number = await world.number()
    world.body = {
        "phoneNumber": number,
        "hashedPhoneNumber": hashlib.sha256(number.encode()).hexdigest(),
    }


_KYC_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "idDocument": lambda i: i["id_document"]["number"],
    "name": lambda i: f"{i['given_name']} {i['family_name']}",
    "givenName": lambda i: i["given_name"],
    "familyName": lambda i: i["family_name"],
    "address": lambda i: f"{i['address']['street_name']} {i['address']['street_number']}",
    "streetName": lambda i: i["address"]["street_name"],
    "streetNumber": lambda i: i["address"]["street_number"],
    "postalCode": lambda i: i["address"]["postal_code"],
    "region": lambda i: i["address"]["region"],
    "locality": lambda i: i["address"]["locality"],
    "country": lambda i: i["address"]["country"],
    "birthdate": lambda i: i["birthdate"],
    "email": lambda i: i["email"],
    "gender": lambda i: i["gender"].upper(),
}
_KYC_UNHELD: dict[str, Any] = {
    "nameKanaHankaku": "ﾀﾛｳ",
    "nameKanaZenkaku": "タロウ",
    "middleNames": "Maria",
    "familyNameAtBirth": "Garcia",
    "houseNumberExtension": "B",
}


async def kyc_combination(world: World, *_: str) -> None:
    identity = (await _subscriber(world))["identity"]
    for name in ("givenName", "familyName", "birthdate"):
        world.body_edits.append((f"$.{name}", _KYC_FIELDS[name](identity)))


async def kyc_valid(world: World, path: str, *_: str) -> None:
    identity = (await _subscriber(world))["identity"]
    name = path.removeprefix("$.")
    value = _KYC_FIELDS[name](identity) if name in _KYC_FIELDS else _KYC_UNHELD[name]
    world.body_edits.append((path, value))


async def kyc_mismatch(world: World, path: str) -> None:
    await kyc_combination(world)
    identity = (await _subscriber(world))["identity"]
    name = path.removeprefix("$.")
    if name not in _KYC_FIELDS:
        raise Unsupported(f"ogsim's KYC register holds no {name}: nothing to mismatch")
    held = str(_KYC_FIELDS[name](identity))
    wrong: Any = {
        "birthdate": "1901-02-03",
        "email": "someone.else@example.org",
        "gender": "OTHER" if held != "OTHER" else "MALE",
        "country": "ZZ",
    }.get(name, held + "xq")
    world.body_edits.append((path, wrong))


async def kyc_phone_only(world: World, path: str) -> None:
    world.body = {"phoneNumber": await world.number()}
    world.device_explicit = True


async def kyc_token_other_number(world: World, *_: str) -> None:
    world.auth = "other-number"


async def kyc_body_number(world: World, path: str) -> None:
    world.device_explicit = True
    world.body_edits.append((path, await world.number("approves")))
    await kyc_combination(world)


def device_unreachable(world: World, *_: str) -> None:
    world.role = "unreachable"


# -- sending -----------------------------------------------------------------------------


def send_operation(world: World, operation_id: str) -> None:
    operations = world.api.spec.operations
    if operation_id not in operations:
        raise StepFailed(f"{world.api.key} defines no operation {operation_id!r}")
    world.operation = operations[operation_id]
    world.send_requested = True


def send_method(world: World, method: str) -> None:
    world.http_method = method.upper()
    world.send_requested = True


# -- assertions --------------------------------------------------------------------------


def status_is(world: World, code: str) -> None:
    assert world.response is not None
    if world.response.status_code != int(code):
        raise StepFailed(
            f"status {world.response.status_code}, expected {code}: {world.response.text[:300]}"
        )


def header_is(world: World, name: str, value: str) -> None:
    assert world.response is not None
    actual = world.response.headers.get(name)
    if actual is None or actual.split(";")[0].strip().lower() != value.lower():
        raise StepFailed(f"response header {name} is {actual!r}, expected {value!r}")


def header_echoed(world: World, name: str, request_name: str) -> None:
    assert world.response is not None
    sent = world.sent_headers.get(request_name) or world.sent_headers.get(request_name.lower())
    actual = world.response.headers.get(name)
    if actual != sent:
        raise StepFailed(f"response header {name} is {actual!r}, request had {sent!r}")


def property_is(world: World, path: str, expected: str) -> None:
    actual = _value(world, path)
    if not _equal(actual, _literal(expected)) and not _equal(actual, expected):
        raise StepFailed(f"response property {path} is {actual!r}, expected {expected!r}")


def property_is_quoted(world: World, path: str, expected: str) -> None:
    actual = _value(world, path)
    if not _equal(actual, expected) and not _equal(actual, _literal(expected)):
        raise StepFailed(f"response property {path} is {actual!r}, expected {expected!r}")


def property_either(world: World, path: str, first: str, second: str) -> None:
    actual = _value(world, path)
    if actual not in (first, second):
        raise StepFailed(f"response property {path} is {actual!r}, expected {first} or {second}")


def property_one_of(world: World, path: str, options: str) -> None:
    actual = _value(world, path)
    allowed = json.loads(options)
    if actual not in allowed:
        raise StepFailed(f"response property {path} is {actual!r}, not one of {allowed}")


def property_friendly(world: World, path: str, *_: str) -> None:
    actual = _value(world, path)
    if not isinstance(actual, str) or not actual.strip():
        raise StepFailed(f"response property {path} is not a user friendly text: {actual!r}")


def property_exists(world: World, path: str) -> None:
    _value(world, path)


def property_absent(world: World, path: str) -> None:
    if present(world.json(), path):
        raise StepFailed(f"response property {path} is present: {lookup(world.json(), path)!r}")


def property_null(world: World, path: str) -> None:
    actual = lookup(world.json(), path)
    if actual is not None:
        raise StepFailed(f"response property {path} is {actual!r}, expected null")


def property_only_if(world: World, path: str, other: str, value: str) -> None:
    body = world.json()
    condition = _equal(lookup(body, other), value)
    if present(body, path) and not condition:
        raise StepFailed(f"{path} is present although {other} is not {value}")


def property_timestamp(world: World, path: str) -> None:
    actual = _value(world, path)
    try:
        _parse_time(str(actual))
    except ValueError as error:
        raise StepFailed(f"response property {path} is not a timestamp: {actual!r}") from error


def optional_timestamp(world: World, path: str) -> None:
    if present(world.json(), path):
        property_timestamp(world, path)


async def activation_timestamp(world: World, path: str) -> None:
    actual = _parse_time(str(_value(world, path)))
    expected = _parse_time((await _subscriber(world))["activated_at"])
    if abs((actual - expected).total_seconds()) > 1:
        raise StepFailed(f"{path} is {actual}, the SIM was activated at {expected}")


def schema_complies(world: World, ref: str) -> None:
    body = world.json()
    errors = world.api.spec.errors(body, world.api.spec.schema(ref))
    if errors:
        raise StepFailed(f"response breaks {ref}: {errors[:3]}")


def items_comply(world: World, ref: str) -> None:
    body = world.json()
    if not isinstance(body, list):
        raise StepFailed(f"response is not an array: {body!r}")
    for item in body:
        schema_complies_value(world, item, ref)


def single_item_complies(world: World, ref: str) -> None:
    body = world.json()
    if not isinstance(body, list) or len(body) != 1:
        raise StepFailed(f"response is not an array of one item: {body!r}")
    items_comply(world, ref)


def schema_complies_value(world: World, value: Any, ref: str) -> None:
    errors = world.api.spec.errors(value, world.api.spec.schema(ref))
    if errors:
        raise StepFailed(f"response item breaks {ref}: {errors[:3]}")


def not_older_than_max_age(world: World, path: str, max_age_path: str) -> None:
    actual = _parse_time(str(_value(world, path)))
    max_age = lookup(world.sent_body, max_age_path)
    if not isinstance(max_age, int):
        return
    age = (datetime.now(UTC) - actual).total_seconds()
    if age > max_age + 5:
        raise StepFailed(f"{path} is {age:.0f} s old, more than maxAge {max_age}")


def equals_token_number(world: World, path: str) -> Awaitable[None]:
    async def run() -> None:
        expected = await world.number()
        property_is_quoted(world, path, expected)

    return run()


def country_code_germany(world: World, path: str, value: str) -> None:
    property_is(world, path, value)


def country_name_contains(world: World, path: str, values: str) -> None:
    actual = _value(world, path)
    expected = json.loads(values)
    if not isinstance(actual, list) or not actual or not set(expected) <= set(actual):
        raise StepFailed(f"response property {path} is {actual!r}, expected to contain {expected}")


def integer_between(world: World, path: str) -> None:
    actual = _value(world, path)
    if not isinstance(actual, int) or not 0 <= actual <= 100:
        raise StepFailed(f"response property {path} is {actual!r}, not an integer in 0..100")


def body_is(world: World, text: str) -> None:
    if world.json() != json.loads(text):
        raise StepFailed(f"response body is {world.json()!r}, expected {text}")


def optional_property(world: World, path: str) -> None:
    return None


# -- Quality on Demand and QoS Profiles --------------------------------------------------


async def session_now(world: World, *_: str) -> None:
    if "session" not in world.facts:
        await create_session(world)


async def session_expired(world: World, *_: str) -> None:
    import asyncio

    await create_session(world, duration=1)
    await asyncio.sleep(1.3)


def session_path(value: str) -> Handler:
    def handler(world: World, *_: str) -> None:
        import uuid

        world.path_params["sessionId"] = str(uuid.uuid4()) if value == "random" else value

    return handler


def app_server(world: World, path: str) -> None:
    world.body_edits.append((path, {"ipv4Address": "198.51.100.10"}))


def out_of_range_port(world: World, path: str) -> None:
    container, _, leaf = path.rpartition(".")
    if leaf == "publicPort":
        world.device_explicit = True
        world.body_edits.append(
            ("$.device", {"ipv4Address": {"publicAddress": "203.0.113.7", "publicPort": 70000}})
        )
    elif leaf in {"from", "to"}:
        bad = {"from": 80, "to": 90, leaf: 70000}
        world.body_edits.append((container, [bad]))
    else:  # ports[*]
        world.body_edits.append((container + ".ports", [70000]))


def bad_token_type(world: World, path: str, value: str) -> None:
    world.body_edits.append(
        (
            "$.sinkCredential",
            {
                "credentialType": "ACCESSTOKEN",
                "accessToken": "t",
                "accessTokenType": "mac",
                "accessTokenExpiresUtc": "2030-01-01T00:00:00Z",
            },
        )
    )
    world.body_edits.append(("$.sink", "https://sink.example.org/events"))


def valid_sink_token(world: World, path: str) -> None:
    """A valid access token comes with its expiry: the YAML's ``ACCESSTOKEN`` credential
    requires ``accessTokenExpiresUtc`` beside it, which the scenario leaves unsaid."""
    world.body_edits.append((path, "sink-access-token"))
    expiry = path.rsplit(".", 1)[0] + ".accessTokenExpiresUtc"
    world.body_edits.append((expiry, "2030-01-01T00:00:00Z"))


async def non_active_profile(world: World, *_: str) -> None:
    profiles = await qos_profiles(world)
    inactive = [p for p in profiles if p.get("status") != "ACTIVE"]
    if not inactive:
        raise Unsupported("every QoS profile of the target is ACTIVE")
    world.body_edits.append(("$.qosProfile", inactive[0]["name"]))


async def invalid_duration(world: World, path: str) -> None:
    await qos_profiles(world)
    high = seconds(world.run_cache["profile"].get("maxDuration"))
    if high is None:
        raise Unsupported("the QoS profile has no maxDuration")
    world.body_edits.append((f"$.{path.lstrip('$.')}", int(high) + 1))


async def exceeding_extension(world: World, path: str, *_: str) -> None:
    await qos_profiles(world)
    high = seconds(world.run_cache["profile"].get("maxDuration")) or 86400
    world.body_edits.append((path, int(high)))


async def does_not_exceed_max(world: World, path: str, *_: str) -> None:
    high = seconds(world.run_cache["profile"].get("maxDuration")) or float("inf")
    actual = _value(world, path)
    if actual > high:
        raise StepFailed(f"{path} is {actual}, above the profile's maxDuration {high}")


def _session_value(world: World, path: str) -> Any:
    request = world.facts.get("session_request")
    if request is None:  # createSession itself: the request is the one just sent
        request = world.sent_body
    return lookup(request, path)


def _check_same_as_created(world: World, item: Any, path: str, must_exist: bool) -> None:
    provided = _session_value(world, path)
    actual = lookup(item, path)
    missing = lookup.__globals__["_MISSING"]
    if provided is missing:
        if actual is not missing and not must_exist:
            raise StepFailed(
                f"{path} is present ({actual!r}) though not provided for createSession"
            )
        return
    if actual != provided:
        raise StepFailed(f"{path} is {actual!r}, createSession was given {provided!r}")


def _items(world: World) -> list[Any]:
    body = world.json()
    return body if isinstance(body, list) else [body]


def _as_path(name: str) -> str:
    return name if name.startswith("$") else f"$.{name}"


def same_if_provided(world: World, path: str) -> None:
    for item in _items(world):
        _check_same_as_created(world, item, _as_path(path), must_exist=False)


def same_as_provided(world: World, path: str, *_: str) -> None:
    for item in _items(world):
        _check_same_as_created(world, item, _as_path(path), must_exist=True)


def only_if_status(world: World, path: str, other: str, value: str, rest: str = "") -> None:
    negate = " not " in f" {rest} " or rest.startswith("not")
    for item in _items(world):
        target, status = lookup(item, _as_path(path)), lookup(item, _as_path(other))
        missing = lookup.__globals__["_MISSING"]
        condition = (status != value) if negate else (status == value)
        if target is not missing and not condition:
            raise StepFailed(f"{path} present although {other} is {status!r}")


def matches_rule(world: World, path: str, rule: str) -> None:
    rule = rule.strip()
    if rule.startswith("exists only if provided"):
        same_if_provided(world, path)
    elif rule.startswith("same value as in the request body"):
        same_as_provided(world, path)
    else:
        found = re.match(r'exists only if "([^"]*)" is (not )?"([^"]*)"', rule)
        if not found:
            raise StepFailed(f"unknown rule {rule!r}")
        only_if_status(world, path, found.group(1), found.group(3), found.group(2) or "")


def not_lower_than_request(world: World, path: str, request_path: str) -> None:
    actual = _value(world, path)
    requested = lookup(world.sent_body, request_path)
    if isinstance(requested, int) and actual < requested:
        raise StepFailed(f"{path} is {actual}, lower than the requested {requested}")


async def profile_name_default(world: World, *_: str) -> None:
    await qos_profiles(world)
    world.path_params["name"] = world.run_cache["defaults"]["qosProfile"]


def profile_name(value: str) -> Handler:
    def handler(world: World, *_: str) -> None:
        world.path_params["name"] = value

    return handler


async def existing_profile_in_body(world: World, path: str) -> None:
    await qos_profiles(world)
    world.body_edits.append((path, world.run_cache["defaults"]["qosProfile"]))


def status_value(world: World, path: str, value: str) -> None:
    world.body_edits.append((path, value.strip('"<>')))


def register_qod(lib: StepLibrary) -> None:
    """Steps of the Quality on Demand and QoS Profiles features."""
    add = lib.add
    add(
        r'the path parameter "sessionId" is set by default to a existing QoS session sessionId',
        _noop,
    )
    add(
        r"an existing QoS session created by operation createSession"
        r'(?: with qosStatus "AVAILABLE")?',
        session_now,
    )
    add(
        r"an existing QoS session created by operation createSession with provided values for "
        r'"sink" and "sinkCredential".*',
        _skip("the runner has no HTTPS sink to receive the QoS status notifications ogsim sends"),
    )
    add(
        r"a QoS session has been created successfully and includes a valid sink and "
        r"sinkCredentials",
        _skip("the runner has no HTTPS sink to receive the QoS status notifications ogsim sends"),
    )
    add(r'an existing QoS session with qosStatus not "AVAILABLE"', session_expired)
    add(
        r"an existing QoS session failed to be created in the last 360 seconds",
        _skip("ogsim creates sessions synchronously: none fails after its creation"),
    )
    add(r'the path parameter "sessionId" is set to the value for that QoS session', _noop)
    add(r'the path parameter "sessionId" has not a UUID format', session_path("not-a-uuid"))
    add(r'the path parameter "sessionId" is set to a random UUID', session_path("random"))
    add(r"the request body property " + Q + r" is set to a valid application server", app_server)
    add(
        r"the request property " + Q + r" is set to a valid QoS Profile as returned by QoS "
        r"Profiles API",
        _noop,
    )
    add(
        r"the request body property " + Q + r" is set to a valid duration for the selected QoS "
        r"profile",
        _noop,
    )
    add(
        r"the request property " + Q + r" is set to a URL where events can be monitored",
        lambda w, p: w.body_edits.append((p, "https://sink.example.org/events")),
    )
    add(
        r"the request property " + Q + r" is set to a valid access token accepted by the events "
        r"receiver",
        valid_sink_token,
    )
    add(
        r"the request body property " + Q + r" is set to a value not between between 0 and 65535",
        out_of_range_port,
    )
    add(
        r"the request body property " + Q + r" is set to a value other than " + Q,
        bad_token_type,
    )
    add(
        r"the request body property " + Q + r" is set to a non existent qos Profile",
        lambda w, p: w.body_edits.append((_as_path(p), "NO_SUCH_PROFILE_X")),
    )
    add(
        r"the request body property " + Q + r" is set to an invalid duration for the selected "
        r"qosProfile",
        invalid_duration,
    )
    add(r"a QoD session already exists for that device", session_now)
    add(
        r"the requested QoS Profile exists but is not applicable for the session",
        non_active_profile,
    )
    add(
        r"the request body property " + Q + r" is set to a valid additional session duration",
        lambda w, p: w.body_edits.append((p, 60)),
    )
    add(r"the " + Q + r" for the QoS profile of the session as returned by " + Q + r" API", _noop)
    add(
        r"the request body property " + Q + r" is set to a value that added to the existing QoS "
        r"session " + Q + r" exceeds the " + Q + r" for the QoS Profile",
        exceeding_extension,
    )
    add(
        r"the response property " + Q + r" does not exceed the " + Q + r" for the QoS Profile",
        does_not_exceed_max,
    )
    add(
        r"(?:in all items in the response, )?(?:the response )?property " + Q + r" exists only "
        r"if provided for createSession and with the same value",
        same_if_provided,
    )
    add(
        r"(?:in all items in the response, )?(?:the response )?property " + Q + r" (?:has the "
        r"same value as in the request body|has the value provided for createSession)",
        same_as_provided,
    )
    add(
        r"(?:in all items in the response, )?(?:the response )?property " + Q + r" exists only "
        r"if " + Q + r" is (not )?" + Q + r"(?: and (?:the )?value is .*)?",
        lambda w, p, o, n, v: only_if_status(w, p, o, v, n or ""),
    )
    add(r"the response property " + Q + r" matches the rule: (.*)", matches_rule)
    add(
        r"the response property " + Q + r" is not lower than request property " + Q,
        not_lower_than_request,
    )
    add(
        r"a valid testing device supported by the service, identified by the token or provided "
        r"in the request body,? with QoS active sessions associated",
        session_now,
    )
    add(
        r"a valid testing device supported by the service, identified by the token or provided "
        r"in the request body,? with no QoS active sessions associated",
        _noop,
    )
    # QoS profiles
    add(
        r'the path param "name" is set by default to an existing QoS profile name',
        profile_name_default,
    )
    add(r"an existing QoS profile", _noop)
    add(r'the path parameter "name" is set to the value for that QoS profile', _noop)
    add(r'path parameter "name" has a length not between 3 and 256', profile_name("ab"))
    add(
        r'path parameter "name" does not match the regular expression .*',
        profile_name("bad%24name"),
    )
    add(
        r'the path parameter "name" is set to a random string compliant with the pattern',
        profile_name("NO_SUCH_PROFILE_X"),
    )
    add(
        r"the request body property " + Q + r" is set to an existing QoS profile name",
        existing_profile_in_body,
    )
    add(r"the request body property " + Q + r" is set to the value (\S+)", status_value)
    add(
        r"implementation has QoS Profiles restricted to certain devices",
        _skip("ogsim has no QoS profile restricted to certain devices"),
    )


# -- location: devices the network cannot place freshly ------------------------------------


async def stale_device(world: World, *_: str) -> None:
    """A detached device: the network only has its last fix, whose age keeps growing."""
    world.role = "unreachable"
    record = await _subscriber(world)
    observed = _parse_time(record["location"]["observed_at"])
    world.facts["fix_age"] = (datetime.now(UTC) - observed).total_seconds()


def max_age_shorter(world: World, path: str) -> None:
    age = world.facts.get("fix_age")
    if age is None or age < 2:
        raise Unsupported("the device's last fix is too recent to ask for a shorter maxAge")
    world.body_edits.append((path, int(age // 2)))


def smallest_surface(world: World, path: str) -> None:
    world.body_edits.append((path, 1))


def response_equals_request(world: World, path: str, request_path: str) -> None:
    property_is_quoted(world, path, str(lookup(world.sent_body, request_path)))


def response_equals_path_param(world: World, path: str, name: str) -> None:
    property_is_quoted(world, path, world.path_params.get(name, ""))


def items_have(world: World, path: str, value: str) -> None:
    body = world.json()
    if not isinstance(body, list):
        raise StepFailed(f"response is not an array: {body!r}")
    leaf = path.split(".")[-1]
    for item in body:
        if not _equal(lookup(item, f"$.{leaf}"), value.strip('"<>')):
            raise StepFailed(f"an item has {leaf} {item.get(leaf)!r}, expected {value}")


def includes(world: World, path: str, first: str, second: str | None = None) -> None:
    actual = _value(world, path)
    wanted = [first] if second is None else [first, second]
    if not isinstance(actual, list) or not set(wanted) <= set(actual):
        raise StepFailed(f"response property {path} is {actual!r}, expected to include {wanted}")


def register_location(lib: StepLibrary) -> None:
    """Location and QoS-profile list steps that need the subscriber's record or the answer."""
    add = lib.add
    add(
        r"a valid testing device which cannot be located by the network operator, identified "
        r"by the token or provided in the request body",
        _skip("the simulated network always knows a last position of every device"),
    )
    add(
        r"the testing device, identified by the token or provided in the request, is located "
        r"by the network operator within a surface of certain area",
        device_role("approves"),
    )
    add(
        r"the request body property " + Q + r" is set to a value smaller than that area",
        smallest_surface,
    )
    add(
        r"the testing device, identified by the token or provided in the request, is not "
        r"connected to the network for some time",
        stale_device,
    )
    add(
        r"a valid testing device supported by the service, identified by the token or provided "
        r"in the request body, with no historical location information for some time",
        stale_device,
    )
    add(
        r"the request body property " + Q + r" is set to a value shorter than that time",
        max_age_shorter,
    )
    add(
        r"a valid testing device supported by the service, identified by the token or provided "
        r"in the request body, for which there is no historical location information",
        _skip("the simulated network always knows a last position of every device"),
    )
    add(
        r"the request body property " + Q + r" is set to an area not covered by the "
        r"implementation",
        area_not_covered,
    )
    add(
        r"there is a minimum radius allowed by the implementation",
        _skip("ogsim's minimum radius is the schema's own (1 m): smaller is a 400"),
    )
    add(
        r"the response property " + Q + r" value is equal to the request body property " + Q,
        response_equals_request,
    )
    add(
        r"the response property " + Q + r" value is equal to path param " + Q,
        response_equals_path_param,
    )
    add(r"the response property " + Q + r" includes " + Q, includes)
    add(r"the response property " + Q + r" includes both " + Q + r" and " + Q, includes)
    add(
        r"each item of the response array, if any, has property " + Q + r" equal to (\S+)",
        items_have,
    )


def default_library() -> StepLibrary:
    """A fresh library holding every step CAMARA's feature files use."""
    lib = StepLibrary()
    register_qod(lib)
    register_location(lib)
    add = lib.add
    DEV = r"(?:device|phone ?number)"  # noqa: N806
    # request set-up
    add(r"an environment at " + Q, _noop)
    add(r"the resource " + Q + r"(?: set as base-url| as base url)?", resource)
    add(r"the header " + Q + r" is set to " + Q, header_set)
    add(r"the header " + Q + r" (?:is removed|is not sent)", header_removed)
    add(r"the header " + Q + r" complies with the schema at " + Q, x_correlator)
    add(r'the header "x-correlator" is set to a UUID value', x_correlator)
    add(r'the header "Authorization" is set to a valid access token', auth("valid"))
    add(
        r'the header "Authorization" is set to a valid access token which does not identify a '
        r"single " + DEV,
        auth("two"),
    )
    add(
        r'the header "Authorization" is set to a valid (?:3-legged )?access token (?:identifying|'
        r"associated to) a (?:valid testing )?" + DEV + r".*",
        auth("three"),
    )
    add(r'the header "Authorization" is set to an expired access token', auth("expired"))
    add(r'the header "Authorization" is set to an invalid access token', auth("invalid"))
    add(r'the header "Authorization" is set to a malformed token', auth("malformed"))
    add(
        r'(?:the )?header "Authorization" (?:is )?set to an access token (?:without the required '
        r"scope|that does not include scope .*|not including scope .*)",
        auth("no-scope"),
    )
    add(
        r'the header "Authorization" is set to a token for which neither Network-based nor '
        r"SIM-based authentication was used",
        auth("not-network"),
    )
    add(
        r'the header "Authorization" is set to a valid access token emitted to a client which '
        r"did not created the QoS session",
        auth("other-client"),
    )
    add(
        r'the header "Authorization" is set to a valid access token emitted for a different '
        r"phone number",
        kyc_token_other_number,
    )
    add(r"the token has been obtained by a supported authentication method", _noop)
    add(r"the request body is set by default to a request body compliant with the schema.*", _noop)
    add(r"the request body is set to a valid request body", _noop)
    add(r"a request body compliant with the schema at " + Q, _noop)
    add(r"the request body is not included", body_absent)
    add(r"the request body is set to " + Q, body_literal)
    add(r"the request body is set to (\{\}|\[\])", body_literal)
    add(
        r"the request body is set to any value which is not compliant with the (?:OAS )?schema "
        r"at " + Q,
        body_invalid,
    )
    add(r"the request body property " + Q + r" is set to: ?(\{\})", prop_set_object)
    add(r"the request body property " + Q + r" is set to (\{\})", prop_set_object)
    add(r"the request body property " + Q + r" is set to (\d+)", prop_max_age_huge)
    add(r"the request (?:body )?property " + Q + r" is set to " + Q, prop_set)
    add(r"the request (?:body )?property " + Q + r" is not included", prop_removed)
    add(r"the request body properties " + Q + r" and " + Q + r" are not included", props_removed)
    add(
        r"the request body property " + Q + r" does not comply with the OAS schema at (.*)",
        prop_not_compliant,
    )
    add(r"the " + Q + r" is set to 6a0", lambda w, p: prop_set(w, f"$.{p}", '"6a0"'))
    add(
        r"the request body property " + Q + r" is compliant with the schema,? but does not "
        r"identify a (?:valid (?:phone number|device)|device whose connectivity is managed by "
        r"the API provider)",
        prop_unknown_device,
    )
    add(
        r"the request body property " + Q + r" is set to a valid (?:testing )?(?:device|phone "
        r"number)(?:, which may or may not be the same device that is identified by the access "
        r"token| supported by the service)?",
        prop_valid_device,
    )
    add(
        r"the request body property " + Q + r" only includes device identifiers not supported "
        r"by the implementation",
        prop_unsupported_identifiers,
    )
    add(
        r"the request body property " + Q + r" includes several identifiers, each of them "
        r"identifying a valid but different device",
        prop_mismatched_identifiers,
    )
    add(r"some types of device identifiers are not supported by the implementation", _noop)
    add(r"at least 2 types of device identifiers are supported by the implementation", _noop)
    # which device
    add(
        r"a valid (?:testing )?(?:phone ?number|device)(?: supported by the service)?,? "
        r"identified,? by the (?:access )?token or provided in the request(?: body)?",
        device_role("approves"),
    )
    add(
        r"a valid (?:testing )?(?:phone ?number|device) supported by the service,? identified,? "
        r"by the (?:access )?token or provided in the request(?: body)?",
        device_role("approves"),
    )
    add(
        r"a valid (?:testing )?(?:phone ?number|phone number|device) supported by the service, "
        r"identified by the token",
        device_role("approves", "token"),
    )
    add(
        r"a valid phone number identified by the token and provided in the request body",
        device_role("approves", "token"),
    )
    add(
        r"the device is supported by the service, and may be (?:reachable or not reachable|"
        r"roaming or not roaming)",
        _noop,
    )
    # environment: SIM swap
    add(r"the SIM for this phone number has been swapped in the last 240 hours", swapped_within)
    add(r"the SIM for this phone number has been swapped in the last " + Q, swapped_within)
    add(r"the SIM for this phone number has been swapped", lambda w: swapped_within(w))
    add(
        r"the "
        + Q
        + r" request body property is set to a value equal or greater than "
        + Q
        + r" within the allowed range",
        max_age_at_least,
    )
    add(r"the SIM for this phone number has been swapped more than 240 hours ago", swapped_long_ago)
    add(
        r"the request body property " + Q + r" is set to the number of hours since the last SIM "
        r"swap minus 1",
        max_age_below_swap,
    )
    add(r"the last swap for this phone number's SIM was more than " + Q + r" hours ago", _noop)
    add(r"the SIM for this phone number has never been swapped", never_swapped)
    add(r"the activation of the SIM occurred more than (\d+) hours ago", activation_before)
    add(r"the activation of the SIM occurred more than " + Q + r" hours ago", activation_before)
    add(
        r"the request body property "
        + Q
        + r" is set to a value less than "
        + Q
        + r" within the allowed range",
        max_age_less_than,
    )
    add(
        r"the phone number is not associated to any sim card",
        _skip("every number ogsim serves has a SIM"),
    )
    add(
        r"the SIM for this phone number has been swapped before the limited history window "
        r"threshold",
        _skip("ogsim keeps the full SIM swap history (no legal monitoring window)"),
    )
    add(
        r"the request body property " + Q + r" is set to a valid value above the supported "
        r"monitored period of the API Provider",
        _skip("ogsim has no restricted monitored period"),
    )
    # environment: service applicability
    add(
        r"the service is not available for all (?:phone numbers|devices) commercialized by the "
        r"(?:operator|API provider)",
        _noop,
    )
    add(
        r"a (?:valid )?(?:phone number|device),? (?:identified by the token or )?provided in the "
        r"request body(?: or identified by the access token)?,? for which the service is not "
        r"applicable",
        _service_not_applicable,
    )
    add(
        r"a (?:valid )?(?:phone number|device), identified by the token or provided in the "
        r"request body, for which the service is not applicable",
        _service_not_applicable,
    )
    add(
        r"a device for which the service is not applicable, provided in the request body or "
        r"identified by the access token",
        _no_profiles_device,
    )
    # environment: device status
    add(
        r"the device which is in roaming inside Germany and supported by the service",
        roaming_in_germany,
    )
    add(r"the device which is not in roaming and supported by the service", device_role("approves"))
    add(
        r"a network error prevents the device (?:reachability|roaming) status from being "
        r"retrieved",
        outage("sim_data_register"),
    )
    add(
        r"the device is supported by the service, but is not connected to the API provider's "
        r"network",
        device_unreachable,
    )
    add(r"the device is connected with sms and supported by the service", device_role("sms-only"))
    add(
        r"the device has data connectivity and is supported by the service", device_role("approves")
    )
    add(
        r"the device has both data and sms connectivity, and is supported by the service",
        device_role("approves"),
    )
    # environment: number verification
    add(
        r"the body property " + Q + r" is set to the phone number identified by the access token",
        nv_body("same"),
    )
    add(
        r"the body property " + Q + r" is set to a valid phone number different from the one "
        r"identified by the access token",
        nv_body("other"),
    )
    add(
        r"the body property " + Q + r" is set to the phone number identified by the access "
        r"token, hashed in SHA-256 \(in hexadecimal representation\)",
        nv_body("same-hash"),
    )
    add(
        r"the body property " + Q + r" is set to a valid phone number different from the one "
        r"identified by the access token, hashed in SHA-256 \(in hexadecimal representation\)",
        nv_body("other-hash"),
    )
    add(r"the request body property " + Q + r" is set to a valid phone number", _nv_phone)
    add(r"the same phone number is compliant with OAS schema at " + Q, _nv_hash_too)
    add(
        r'the request body property "\$\.additional_property" is set to "foo_value"',
        nv_extra_only,
        first=True,
    )
    add(
        r"the request body property " + Q + r" is set to a valid phone number compliant with "
        r"OAS schema at " + Q,
        _nv_hash_too,
    )
    add(r"the request body does not contain neither " + Q + r" nor " + Q, _noop)
    # environment: location
    add(
        r"the request body property " + Q + r" is set to a valid area covered by the service"
        r"(?: where the device is located)?",
        area_where_located,
    )
    add(
        r"the request body property " + Q + r" is set to a valid area covered by the service "
        r"where the device is not located",
        area_where_not_located,
    )
    add(r"the request body property " + Q + r" is included", _include_max_age)
    # environment: KYC
    add(r"the request body is set to a valid parameter combination", kyc_combination)
    add(
        r"the request body property " + Q + r" is set to a valid value that complies with the "
        r"OAS schema at " + Q,
        kyc_valid,
    )
    add(
        r"the request body is set to a valid parameter combination with property "
        + Q
        + r" set to a valid formatted value that does not match the value stored in the MNO "
        r"system",
        kyc_mismatch,
    )
    add(
        r"the request body property " + Q + r" is set to (?:a|the) (?:valid )?(?:identity "
        r"document|name|given name|family name|middle names|family name at birth|address|street "
        r"name of the address|street number of the address|postal code of the address|region of "
        r"the address|locality of the address|country of the address value.*|house number "
        r"extension of the address|birthdate value.*|email value.*|gender value.*)",
        kyc_valid,
    )
    add(r"the given request body is populated with any random combination of .*", _noop)
    add(
        r"the request body property " + Q + r" is set to a valid identity document associated "
        r"with the identified phoneNumber",
        kyc_valid,
    )
    add(r"the request body property " + Q + r" set to a valid formatted value", _noop)
    add(r"the request body contains only the property " + Q, kyc_phone_only)
    add(
        r"the request body property " + Q + r" is set to a valid testing phone number",
        kyc_body_number,
    )
    add(
        r"the request body is set to a valid parameter combination without property " + Q,
        _skip_id_document_required,
    )
    add(
        r"the request body property " + Q + r" is set to a valid idDocument that is not "
        r"associated with the identified phone number",
        _skip_id_document_required,
    )
    # sending
    add(r"the request " + Q + r" is sent", send_operation)
    add(r"the HTTP " + Q + r" request is sent", send_method)
    # assertions
    add(r"the response (?:status )?code is \"?(\d{3})\"?", status_is)
    add(r"the response header " + Q + r" is " + Q, header_is)
    add(
        r"the response header " + Q + r" has (?:the )?same value as the request header " + Q,
        header_echoed,
    )
    add(r"the response property " + Q + r" is (-?\d+|true|false)", property_is)
    add(r"the response property " + Q + r" is null", property_null)
    add(r"the response property " + Q + r" is " + Q + r" or " + Q, property_either)
    add(r"the response property " + Q + r" is (?:equal to )?" + Q, property_is_quoted)
    add(r"(?:the value of )?(?:the )?response property " + Q + r" == (true|false)", property_is)
    add(r"the response property " + Q + r" is one of: (\[.*\])", property_one_of)
    add(r"the response property " + Q + r" contains a user[- ]friendly text(.*)", property_friendly)
    add(r"the response property " + Q + r" exists", property_exists)
    add(r"the response contains the property " + Q, property_exists)
    add(r"the response property " + Q + r" (?:does not exist|is not present)", property_absent)
    add(r"the response property " + Q + r" exists only if " + Q + r" is " + Q, property_only_if)
    add(r"the response property " + Q + r" contains a valid timestamp", property_timestamp)
    add(
        r"if the response property " + Q + r" is present, then the value (?:has|is) a valid "
        r"date-time format",
        optional_timestamp,
    )
    add(
        r"the response property " + Q + r" contains the sim's activation timestamp",
        activation_timestamp,
    )
    add(r"the response body complies with the OAS schema at " + Q, schema_complies)
    add(
        r"each item of the response array(?:, if any,)? complies with the OAS schema at " + Q,
        items_comply,
    )
    add(
        r"the response array has only one item which complies with the OAS schema at " + Q,
        single_item_complies,
    )
    add(
        r"the response property "
        + Q
        + r" value is not older than the value of "
        + Q
        + r" (?:in )?the request(?: time)?",
        not_older_than_max_age,
    )
    add(
        r"the response property " + Q + r" is equal to the phone number associated with the "
        r"access token",
        equals_token_number,
    )
    add(
        r"the response property " + Q + r" has the value " + Q + r" as the Mobile Country Code "
        r"\(MCC\) for Germany",
        country_code_germany,
    )
    add(
        r"the response property " + Q + r" is a non-empty array containing the ISO 3166 ALPHA-2 "
        r"country-code (\[.*\])",
        country_name_contains,
    )
    add(
        r"the response property " + Q + r" is equal to an integer value between 0 and 100",
        integer_between,
    )
    add(r"the response body is (\[\]|\{\})", body_is)
    add(
        r"the response optionally contains the property " + Q + r" with the value of .*",
        optional_property,
    )
    register_consent_info(lib)
    return lib


async def _service_not_applicable(world: World, *_: str) -> None:
    applicable = {
        "quality-on-demand": "unreachable",
    }
    role = applicable.get(world.api.key)
    if role is None and world.api.key == "qos-profiles":
        raise Unsupported(
            "a device with no data connection has no QoS profile here (200 [], as the same"
            " feature's scenario 06 asks), not this scenario's 422"
        )
    if role is None:
        raise Unsupported(f"every ogsim subscriber is eligible for {world.api.key}")
    world.role = role


async def _no_profiles_device(world: World, *args: str) -> None:
    """QoS Profiles' scenario 06: a device with no data connection, which has no profile."""
    if world.api.key == "qos-profiles":
        world.role = "unreachable"
        return
    await _service_not_applicable(world, *args)


async def _nv_phone(world: World, path: str) -> None:
    if world.api.key == "number-verification":
        world.body = {"phoneNumber": await world.number()}
        return
    await prop_valid_device(world, path)


async def _nv_hash_too(world: World, *_: str) -> None:
    await nv_same_number_ok(world)


def _include_max_age(world: World, path: str) -> None:
    world.body_edits.append((path, 60))


def _skip_id_document_required(world: World, *_: str) -> None:
    raise Unsupported("this operator does not require idDocument for KYC Match (an option)")
