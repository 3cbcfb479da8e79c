"""Threat protection refuses hostile bodies with CAMARA errors, before any parser sees them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request

from operators.camara.correlator import correlator_for
from operators.errors import CamaraError
from operators.gateway.threat_protection import (
    BodyRefusedError,
    ThreatLimits,
    inspect_body,
    nesting_depth,
    parse_json,
    read_body,
    read_json,
    read_json_object,
    unencodable,
)

LIMITS = ThreatLimits(max_body_bytes=2048, max_depth=5, max_keys=20, max_string_length=64)


def refusal(content_type: str | None, body: bytes) -> CamaraError:
    with pytest.raises(CamaraError) as caught:
        inspect_body(content_type, body, LIMITS)
    return caught.value


def test_a_normal_body_is_parsed() -> None:
    body = json.dumps({"phoneNumber": "+34600000001", "maxAge": 240}).encode()
    assert inspect_body("application/json; charset=utf-8", body, LIMITS) == {
        "phoneNumber": "+34600000001",
        "maxAge": 240,
    }
    assert inspect_body(None, b"", LIMITS) is None


def test_oversized_body() -> None:
    error = refusal("application/json", b'{"a": "' + b"x" * 4096 + b'"}')
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert "2048 bytes" in error.message


def test_wrong_content_type() -> None:
    error = refusal("text/plain", b'{"a": 1}')
    assert (error.status, error.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert refusal(None, b'{"a": 1}').status == 415


def test_over_deep_body_is_refused_without_recursion() -> None:
    deep = b"[" * 1500 + b"]" * 1500
    error = refusal("application/json", deep[:2000])
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert "depth" in error.message


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth(b'{"a": "[[[[[[[[[[\\"{{{{"}') == 1
    assert nesting_depth(b'{"a": {"b": [1, {"c": 2}]}}') == 4


def test_too_many_keys_and_long_strings() -> None:
    many = json.dumps({f"k{i}": i for i in range(30)}).encode()
    assert "keys" in refusal("application/json", many).message
    long = json.dumps({"a": "x" * 100}).encode()
    assert "longer" in refusal("application/json", long).message


def test_malformed_json() -> None:
    error = refusal("application/json", b'{"a": ')
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")


def test_correlator_is_echoed_created_or_refused() -> None:
    assert correlator_for("b4333c46-49c0-4f62-80d7-f0ef930f1c46") == (
        "b4333c46-49c0-4f62-80d7-f0ef930f1c46"
    )
    created = correlator_for(None)
    assert len(created) == 36 and created != correlator_for(None)
    with pytest.raises(CamaraError) as caught:
        correlator_for("bad correlator with spaces")
    assert caught.value.code == "INVALID_ARGUMENT"


# -- the shared reader and parser (operators.request_body) ------------------------------------

STRICT = ThreatLimits(max_body_bytes=64, max_depth=3, max_keys=4, max_string_length=16,
                      read_timeout=0.05)


def parse_refusal(raw: bytes) -> BodyRefusedError:
    with pytest.raises(BodyRefusedError) as caught:
        parse_json(raw, STRICT)
    return caught.value


@pytest.mark.parametrize(
    "raw,why",
    [
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
        ('{"a": 1}'.encode("utf-16"), "byte order mark"),
        ('{"a": 1}'.encode("utf-16-le"), "byte order mark"),
        ('{"a": 1}'.encode("utf-32-be"), "byte order mark"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "UTF-8"),  # a surrogate encoded as if it were a character
        (b'{"a": "\\ud800"}', "surrogate"),
        (b'{"\\udfff": 1}', "surrogate"),
        (b'["x", "\\ud83d"]', "surrogate"),
        (b'{"a": 1, "a": 2}', "repeats"),
        (b'{"a": {"b": 1, "b": 1}}', "repeats"),
        (b'{"a": NaN}', "not a JSON value"),
        (b'[Infinity]', "not a JSON value"),
        (b'[1e999]', "out of range"),
        (b'[[[[1]]]]', "depth"),
        (b'{"a":1,"b":2,"c":3,"d":4,"e":5}', "keys"),
        (b'["' + b"x" * 17 + b'"]', "longer"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_strict_parser_refusals(raw: bytes, why: str) -> None:
    refusal = parse_refusal(raw)
    assert (refusal.status, refusal.code) == (400, "INVALID_ARGUMENT")
    assert why in refusal.message
    assert refusal.oauth().body()["error"] == "invalid_request"


def test_strict_parser_accepts_json_and_paired_surrogates() -> None:
    assert parse_json(b'{"a": ["\\ud83d\\ude00", 1.5, null]}', STRICT) == {
        "a": ["\U0001f600", 1.5, None]
    }
    assert parse_json(b'"\xc3\xa9"', STRICT) == "\u00e9"


def test_a_thousand_levels_never_reach_the_parser() -> None:
    refusal = parse_refusal(b'{"a":' * 1000 + b"1" + b"}" * 1000)
    assert "depth 1000" in refusal.message


def test_unencodable_walks_keys_and_values() -> None:
    assert unencodable({"a": ["ok", {"b": "\ud800"}]})
    assert unencodable({"\udc00": 1})
    assert not unencodable({"a": ["ok", {"b": "\U0001f600"}], "n": 1})


def _request(messages: list[dict[str, Any]] | None, headers: dict[str, str],
             taken: list[int]) -> Request:
    """A request whose body arrives as ``messages`` (None: the client never sends it)."""
    pending = list(messages or [])

    async def receive() -> dict[str, Any]:
        taken.append(1)
        if messages is None:
            await asyncio.Event().wait()  # a client that sent its head and then nothing
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/x", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope, receive)


def _chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)]


async def test_reader_assembles_chunks_and_caches_the_body() -> None:
    taken: list[int] = []
    request = _request(_chunks(b'{"a"', b": 1}"), {"content-type": "application/json"}, taken)
    assert await read_json(request, STRICT) == {"a": 1}
    assert await request.body() == b'{"a": 1}' and len(taken) == 2


async def test_declared_length_over_the_limit_is_413_before_reading() -> None:
    taken: list[int] = []
    request = _request(_chunks(b"x"), {"content-length": "65"}, taken)
    with pytest.raises(BodyRefusedError) as caught:
        await read_body(request, STRICT)
    assert (caught.value.status, caught.value.code) == (413, "PAYLOAD_TOO_LARGE")
    assert caught.value.headers == {"Connection": "close"} and taken == []


async def test_chunked_body_is_cut_at_the_limit_never_read_whole() -> None:
    taken: list[int] = []
    endless = _chunks(*([b"x" * 30] * 1000))  # 30 000 bytes, no Content-Length
    request = _request(endless, {}, taken)
    with pytest.raises(BodyRefusedError) as caught:
        await read_body(request, STRICT)
    assert caught.value.status == 413
    assert len(taken) == 3  # 90 bytes read: the first chunk past 64 stops it


async def test_a_body_shorter_than_its_length_is_408_not_a_held_connection() -> None:
    taken: list[int] = []
    request = _request(None, {"content-length": "40"}, taken)
    with pytest.raises(BodyRefusedError) as caught:
        await read_body(request, STRICT)
    assert (caught.value.status, caught.value.code) == (408, "REQUEST_TIMEOUT")
    assert caught.value.oauth().status == 408


async def test_a_client_gone_mid_body_is_a_400() -> None:
    taken: list[int] = []
    messages = [{"type": "http.request", "body": b"{", "more_body": True},
                {"type": "http.disconnect"}]
    with pytest.raises(BodyRefusedError) as caught:
        await read_body(_request(messages, {}, taken), STRICT)
    assert caught.value.status == 400


async def test_json_needs_its_content_type_and_an_object_where_one_is_due() -> None:
    taken: list[int] = []
    with pytest.raises(BodyRefusedError) as caught:
        await read_json(_request(_chunks(b"{}"), {"content-type": "text/plain"}, taken), STRICT)
    assert caught.value.status == 415
    with pytest.raises(BodyRefusedError):
        await read_json_object(
            _request(_chunks(b"[]"), {"content-type": "application/json"}, taken), STRICT)
    empty = _request(_chunks(b""), {}, taken)
    assert await read_json_object(empty, STRICT, empty_is_object=True) == {}
