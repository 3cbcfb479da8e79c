"""Threat protection refuses hostile bodies with CAMARA errors, before any parser sees them."""

from __future__ import annotations

import json

import pytest

from operators.camara.correlator import correlator_for
from operators.errors import CamaraError
from operators.gateway.threat_protection import ThreatLimits, inspect_body, nesting_depth

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
