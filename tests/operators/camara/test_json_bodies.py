"""A body that is not strict UTF-8 JSON is a 400 before anything is written anywhere."""

from __future__ import annotations

import codecs
import json

import httpx
import pytest

from operators.camara import CallContext
from operators.core import NetworkFunctionKind
from operators.integrator import Integrator
from operators.subscriber_base import SubscriberBase
from tests.operators.direct_backends import Direct
from tests.operators.gateway.conftest import Harness

SESSIONS = "/quality-on-demand/v1/sessions"
JSON = {"Content-Type": "application/json"}


def _session_text(number: str, token: str = '"it-is-a-token"') -> str:
    """A createSession body as JSON text, so a test can put in what json.dumps never writes."""
    body = {
        "device": {"phoneNumber": number},
        "applicationServer": {"ipv4Address": "198.51.100.1"},
        "qosProfile": "QOS_E",
        "duration": 600,
        "sink": "https://app.example.com/events",
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN",
            "accessToken": "TOKEN",
            "accessTokenType": "bearer",
            "accessTokenExpiresUtc": "2030-01-01T00:00:00Z",
        },
    }
    return json.dumps(body).replace('"TOKEN"', token)


BAD_BODIES: dict[str, tuple[str, str]] = {
    # name: (how the body is made from the valid text, a word the message must hold)
    "lone high surrogate in sinkCredential.accessToken": ('token:"\\ud800"', "accessToken"),
    "lone low surrogate in sinkCredential.accessToken": ('token:"ab\\udfffcd"', "accessToken"),
    "surrogate pair reversed": ('token:"\\ude00\\ud83d"', "accessToken"),
    "lone surrogate in a key": ('replace:"sink":|"sink\\ud800":', "surrogate"),
    "duplicate top-level key": (
        'replace:"duration": 600|"duration": 600, "duration": 5',
        "duration",
    ),
    "duplicate nested key": (
        'replace:"qosProfile"|"device": {"phoneNumber": "+1"}, "qosProfile"',
        "device",
    ),
    "NaN": ('replace:"duration": 600|"duration": NaN', "NaN"),
    "Infinity": ('replace:"duration": 600|"duration": Infinity', "Infinity"),
    "null where a string is defined": ('replace:"https://app.example.com/events"|null', "sink"),
    "UTF-16-LE": ("encode:utf-16-le", "UTF-8"),
    "UTF-16 with its BOM": ("encode:utf-16", "UTF-8"),
    "UTF-32": ("encode:utf-32", "UTF-8"),
    "UTF-8 with a BOM": ("bom", "byte order mark"),
    "Latin-1 bytes": ("latin1", "UTF-8"),
}


def _bad_body(number: str, how: str) -> bytes:
    kind, _, arg = how.partition(":")
    if kind == "token":
        return _session_text(number, arg).encode()
    text = _session_text(number)
    if kind == "replace":
        old, new = arg.split("|")
        assert old in text
        return text.replace(old, new, 1).encode()
    if kind == "encode":
        return text.encode(arg)
    if kind == "bom":
        return codecs.BOM_UTF8 + text.encode()
    assert kind == "latin1"
    return _session_text(number, '"caf\u00e9"').encode("latin-1")


def _pcf(functions: dict[NetworkFunctionKind, Direct]) -> object:
    return functions[NetworkFunctionKind.POLICY_FUNCTION].handler


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_a_bad_body_is_refused_and_leaves_no_session_behind(
    name: str,
    client: httpx.AsyncClient,
    base: SubscriberBase,
    integrator: Integrator,
    functions: dict[NetworkFunctionKind, Direct],
) -> None:
    how, word = BAD_BODIES[name]
    raw = _bad_body(base.test_number("approves"), how)
    r = await client.post(SESSIONS, content=raw, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_ARGUMENT"
    assert word in r.json()["message"]
    assert integrator.sessions.all() == []
    assert _pcf(functions).active_sessions() == 0  # type: ignore[attr-defined]


async def test_the_same_body_done_right_creates_one_session(
    client: httpx.AsyncClient,
    base: SubscriberBase,
    integrator: Integrator,
    functions: dict[NetworkFunctionKind, Direct],
) -> None:
    """A real astral character written as its surrogate pair is a character, not an offence."""
    raw = _session_text(base.test_number("approves"), '"token-\\ud83d\\ude00"').encode()
    r = await client.post(SESSIONS, content=raw, headers=JSON)
    assert r.status_code == 201, r.text
    [stored] = integrator.sessions.all()
    assert stored.request.sinkCredential is not None
    assert stored.request.sinkCredential.accessToken == "token-\U0001f600"
    assert _pcf(functions).active_sessions() == 1  # type: ignore[attr-defined]
    again = await client.get(f"{SESSIONS}/{r.json()['sessionId']}")
    assert again.status_code == 200, again.text


@pytest.mark.parametrize("field", ["givenName", "familyName", "address", "email"])
async def test_a_lone_surrogate_in_a_kyc_claim_is_refused_naming_it(
    field: str, client: httpx.AsyncClient, base: SubscriberBase, context: dict[str, CallContext]
) -> None:
    context["ctx"] = CallContext(client_id="app-1", msisdn=base.test_number("approves"))
    text = json.dumps({"idDocument": "66666666q", "givenName": "Ana", field: "SURROGATE"})
    raw = text.replace('"SURROGATE"', '"x\\ud800y"').encode()
    r = await client.post("/kyc-match/v0.3/match", content=raw, headers=JSON)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")
    assert field in r.json()["message"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"[]", b'"text"', b"42", b"null", b"{", b'{"a": 1} {"b": 2}', b"\xff\xfe"],
)
async def test_anything_but_one_json_object_is_invalid_argument(
    raw: bytes, client: httpx.AsyncClient
) -> None:
    r = await client.post("/sim-swap/v2/check", content=raw, headers=JSON)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_deep_nesting_without_a_gateway_is_a_400_not_a_crash(
    client: httpx.AsyncClient,
) -> None:
    raw = b'{"device": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = await client.post("/sim-swap/v2/check", content=raw, headers=JSON)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")


def _policy_function_sessions(harness: Harness) -> int:
    """Sessions the live policy function holds (its table in the operator's database)."""
    row = harness.operator.subscribers.db.one("SELECT COUNT(*) AS n FROM pcf_sessions")
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("name", ["lone high surrogate in sinkCredential.accessToken", "UTF-16-LE"])
async def test_through_the_gateway_too_a_bad_body_is_a_400_and_nothing_is_kept(
    name: str, gateway_harness: Harness
) -> None:
    """The case the outside survey found: a QoD create that answered 500 and left an orphan."""
    harness = gateway_harness
    token = await harness.two_legged(
        "quality-on-demand:sessions:create dpv:RequestedServiceProvision"
    )
    raw = _bad_body(harness.number("approves"), BAD_BODIES[name][0])
    r = await harness.http.post(
        SESSIONS, content=raw, headers={**JSON, "Authorization": f"Bearer {token}"}
    )
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT"), r.text
    assert harness.operator.integrator.sessions.all() == []
    assert _policy_function_sessions(harness) == 0  # no orphan at the network side either
    done_right = _session_text(harness.number("approves")).encode()
    r = await harness.http.post(
        SESSIONS, content=done_right, headers={**JSON, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    assert len(harness.operator.integrator.sessions.all()) == 1
    assert _policy_function_sessions(harness) == 1
