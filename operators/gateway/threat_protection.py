"""Threat protection: the first gateway policy, refusing hostile bodies before anything parses them.

The bounded reader and the strict parser are :mod:`operators.request_body`, shared with the
identity server, the admin APIs and the federation; the depth scan walks the raw bytes once, so
a body nested ten thousand levels deep is refused without ever reaching ``json.loads``.
"""

from __future__ import annotations

from typing import Any

from operators.errors import CamaraError
from operators.request_body import (
    BodyRefusedError,
    ThreatLimits,
    media_type,
    nesting_depth,
    openapi_body,
    parse_json,
    read_body,
    read_json,
    read_json_object,
    read_model,
    unencodable,
)

__all__ = [
    "BodyRefusedError",
    "ThreatLimits",
    "inspect_body",
    "media_type",
    "nesting_depth",
    "openapi_body",
    "parse_json",
    "read_body",
    "read_json",
    "read_json_object",
    "read_model",
    "unencodable",
]


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
    return parse_json(body, limits)
