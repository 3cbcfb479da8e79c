"""The hostile bodies every fuzz test sends, in one place (operator, gateway, aggregator).

:func:`battery` is the fixed set of shapes (deep nesting, lone surrogates, duplicate keys,
UTF-16, BOM, invalid UTF-8, NaN, huge numbers, wrong types, empty and truncated bodies, the
wrong media types), built around a plausible body of the endpoint so the poison sits where a
real field would; :data:`documents` is the hypothesis strategy for drawn JSON documents with
lone surrogates among their strings; :func:`endless` is a chunked body nobody may read whole.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import strategies as st

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
ENDLESS_CHUNKS = 4096
"""Chunks of 16 kB in :func:`endless`: 64 MiB if anybody read it all."""


def poisoned(document: Any, value: Any) -> Any:
    """``document`` with every leaf replaced by ``value`` (keys kept)."""
    if isinstance(document, dict):
        return {k: poisoned(v, value) for k, v in document.items()}
    if isinstance(document, list):
        return [poisoned(v, value) for v in document]
    return value


def battery(plausible: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(content type, body) pairs an endpoint whose good body looks like ``plausible`` must
    refuse or survive."""
    plausible = plausible or {"a": "b"}
    text = json.dumps(plausible)
    first_key = next(iter(plausible))
    duplicate = "{" + f'"{first_key}": null, ' + text[1:]
    return [
        (JSON, b'{"a":' * 1000 + b"1" + b"}" * 1000),
        (JSON, b"[" * 5000 + b"]" * 5000),
        (JSON, json.dumps(poisoned(plausible, "\ud800")).encode()),
        (JSON, json.dumps({"\udc00": 1, **plausible}).encode()),
        (JSON, json.dumps(poisoned(plausible, "x")).encode().replace(b'"x"', b'"\xed\xa0\x80"')),
        (JSON, duplicate.encode()),
        (JSON, text.encode("utf-16")),
        (JSON, text.encode("utf-16-le")),
        (JSON, b"\xef\xbb\xbf" + text.encode()),
        (JSON, b'{"a": "\xff\xfe"}'),
        (JSON, text.replace("}", ', "n": NaN}', 1).encode()),
        (JSON, json.dumps(poisoned(plausible, [])).encode()),
        (JSON, json.dumps(poisoned(plausible, {"deep": [1, 2]})).encode()),
        (JSON, json.dumps(poisoned(plausible, 10**30)).encode()),
        (JSON, text.replace("}", ', "big": ' + "9" * 5000 + "}", 1).encode()),
        (JSON, json.dumps(poisoned(plausible, True)).encode()),
        (JSON, json.dumps({"x": "y" * 100_000}).encode()),
        (JSON, b"[]"), (JSON, b'"text"'), (JSON, b"null"), (JSON, b""), (JSON, b"{"),
        ("text/plain", text.encode()),
        (FORM, b"grant_type=%ED%A0%80&scope=%ff"),
        (FORM, b"a=1&a=2&" + b"&".join(b"k%d=v" % i for i in range(200))),
        (FORM, text.encode()),
    ]


class Endless:
    """A chunked body of :data:`ENDLESS_CHUNKS` chunks that counts what was pulled from it."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(ENDLESS_CHUNKS):
            self.sent += 1
            yield b" " * 16384

    @property
    def read_whole(self) -> bool:
        return self.sent >= ENDLESS_CHUNKS


def assert_error_shape(response: httpx.Response, where: str) -> None:
    """A refusal carries a CAMARA error (status, code, message) or an OAuth one (error)."""
    body = response.json()
    assert isinstance(body, dict), f"{where}: {response.text[:200]}"
    assert "error" in body or {"status", "code", "message"} <= set(body), where


surrogates = st.characters(categories=["Cs"])
strings = st.text(alphabet=st.one_of(st.characters(), surrogates), max_size=8)
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | strings,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4),
    max_leaves=10,
)
"""JSON documents with lone surrogates among their strings (keys too)."""
