"""Decoding a CAMARA request body: strict JSON in UTF-8, or a CAMARA 400 before anything is done.

What :func:`json.loads` lets through and a CAMARA body must not carry, each refused here once
so that no service, store or network function ever sees it:

* bytes that are not UTF-8 (UTF-16, UTF-32, Latin-1) and a byte order mark (RFC 8259 §8.1),
  UTF-16 of ASCII included: it decodes as UTF-8 only with NUL characters, never JSON text;
* an object that names a key twice (RFC 8259 §4 leaves the meaning open: refuse, don't guess);
* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON;
* a string holding a lone UTF-16 surrogate (``"\\ud800"``): valid JSON text, but no Unicode
  string, so it cannot be encoded to UTF-8 and would fail later, in a store or an answer;
* ``null`` for a property: no request schema of the CAMARA definitions is nullable.

The first offence is named by its path in the body (``sinkCredential.accessToken``).

orjson parses first (a C parser, several times faster than ``json.loads`` with hooks); a body
it refuses, or one whose members in the text outnumber its parsed keys (a repeated key), is
decoded again by the standard library's strict path, so every refusal keeps its message.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import orjson

from operators.errors import CamaraError
from operators.request_body import members

__all__ = ["PARSED_BODY", "check_parsed_object", "decode_json_object"]

PARSED_BODY = "ogsim.parsed_body"
"""The request-state key under which a gateway that already parsed the body strictly
(:func:`operators.request_body.parse_json`: UTF-8, unique keys, no ``NaN``, no lone surrogate)
leaves the document, so the endpoint does not parse it a second time."""


def _invalid(message: str) -> CamaraError:
    return CamaraError(400, "INVALID_ARGUMENT", f"Client specified an invalid argument. {message}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {_printable(key)!r}")
        document[key] = value
    return document


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _printable(text: str) -> str:
    """``text`` with anything UTF-8 cannot carry escaped, fit for a message."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _where(path: list[str | int]) -> str:
    return ".".join(str(part) for part in path) or "body"


def _first_offence(document: dict[str, Any]) -> str | None:
    """The first lone surrogate or ``null`` in ``document``, as a message naming its path."""
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, node = stack.pop()
        if node is None:
            return f"{_where(path)}: must not be null"
        if isinstance(node, str):
            if not _encodable(node):
                return f"{_where(path)}: string holds a lone UTF-16 surrogate"
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                if not _encodable(key):
                    return f"{_where(path)}: a key holds a lone UTF-16 surrogate"
                stack.append(([*path, key], value))
        elif isinstance(node, list):
            stack.extend(([*path, index], item) for index, item in reversed(list(enumerate(node))))
    return None


def _keys(document: Any) -> int:
    """Every key of every object in ``document``."""
    count = 0
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            count += len(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, or the CAMARA ``400 INVALID_ARGUMENT`` saying what is wrong."""
    if not raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the strict path below says why
        else:
            if isinstance(document, dict) and _keys(document) == members(raw):
                offence = _first_offence(document)
                if offence is not None:
                    raise _invalid(offence)
                return document
    return _decode_strictly(raw)


def check_parsed_object(document: Any, raw: bytes) -> None:
    """:func:`decode_json_object`'s verdict on ``raw`` when ``document`` is what the gateway's
    strict parser made of it: that parser already refused what is not UTF-8 JSON, a repeated
    key, ``NaN`` and a lone surrogate, so what is left to refuse is a ``null`` and a body that
    is no object (the strict path names the latter, as before)."""
    if not isinstance(document, dict):
        _decode_strictly(raw)
        return
    offence = _first_offence(document)
    if offence is not None:
        raise _invalid(offence)


def _decode_strictly(raw: bytes) -> dict[str, Any]:
    """:func:`decode_json_object` by the standard library, with hooks: every refusal named."""
    if raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _invalid("Request body must be JSON in UTF-8 without a byte order mark.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("Request body must be JSON in UTF-8.") from exc
    if "\x00" in text:  # never in JSON text: UTF-16 or UTF-32 of ASCII decodes to NULs
        raise _invalid("Request body must be JSON in UTF-8.")
    if not text.strip():
        raise _invalid("Request body must be a JSON object")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"Request body is not valid JSON: {_printable(str(exc))}"
        ) from exc
    if not isinstance(document, dict):
        raise _invalid("Request body must be a JSON object")
    offence = _first_offence(document)
    if offence is not None:
        raise _invalid(offence)
    return document
