"""Threat protection: the first gateway policy, refusing hostile bodies before anything parses them.

The depth scan walks the raw bytes once, so a body nested ten thousand levels deep is refused
without ever reaching ``json.loads`` (whose recursion it would otherwise exhaust).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from operators.errors import CamaraError

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


@dataclass(frozen=True)
class ThreatLimits:
    """Limits in the spirit of API gateways' JSON threat protection policies."""

    max_body_bytes: int = 16 * 1024
    max_depth: int = 12
    max_keys: int = 512
    max_string_length: int = 4096
    allowed_content_types: tuple[str, ...] = ("application/json",)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def inspect_body(content_type: str | None, body: bytes, limits: ThreatLimits) -> Any:
    """The parsed JSON body, or a CAMARA error saying which limit the request broke."""
    if not body:
        return None
    if len(body) > limits.max_body_bytes:
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"Request body exceeds {limits.max_body_bytes} bytes."
        )
    if media_type(content_type) not in limits.allowed_content_types:
        raise CamaraError(
            415, "UNSUPPORTED_MEDIA_TYPE", "The request body must be sent as application/json."
        )
    depth = nesting_depth(body)
    if depth > limits.max_depth:
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"JSON nesting depth {depth} exceeds {limits.max_depth}."
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise CamaraError(400, "INVALID_ARGUMENT", "Request body is not valid JSON.") from error
    keys, longest = _census(document)
    if keys > limits.max_keys:
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"JSON body has {keys} keys, more than {limits.max_keys}."
        )
    if longest > limits.max_string_length:
        raise CamaraError(
            400,
            "INVALID_ARGUMENT",
            f"A JSON string is longer than {limits.max_string_length} characters.",
        )
    return document


def nesting_depth(body: bytes) -> int:
    """The deepest bracket nesting outside string literals, in one pass over the bytes."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def _census(document: Any) -> tuple[int, int]:
    """Total number of object keys and the longest string (key or value), iteratively."""
    keys = longest = 0
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys += len(item)
            for key, value in item.items():
                longest = max(longest, len(key))
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            longest = max(longest, len(item))
    return keys, longest
