"""The ``x-correlator`` header and the CAMARA error answer that echoes it: one rule each.

A correlator is echoed when it matches CAMARA_common's ``XCorrelator`` pattern, created
when absent and refused (400) when malformed; every CAMARA error answer is rendered by
:func:`render_error`, whoever raised it (an endpoint, the gateway's chain, its middleware,
the framework's own handlers).
"""

from __future__ import annotations

import re
import uuid

from starlette.responses import JSONResponse

from operators.errors import CamaraError

__all__ = ["HEADER", "PATTERN", "correlator_for", "echoable", "render_error"]

HEADER = "x-correlator"
PATTERN = re.compile(r"^[a-zA-Z0-9\-_:;./<>{}]{0,256}$")


def echoable(value: str | None) -> str | None:
    """``value`` if an answer may echo it (present and well formed), else None."""
    return value if value and PATTERN.match(value) else None


def render_error(error: CamaraError, correlator: str | None = None) -> JSONResponse:
    """The one rendering of a CAMARA error: its body, its status and headers, the correlator."""
    headers = dict(error.headers)
    if correlator:
        headers[HEADER] = correlator
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def correlator_for(value: str | None) -> str:
    """The correlator this call is known by; a new UUID when the client sent none."""
    if value is None or value == "":
        return str(uuid.uuid4())
    if not PATTERN.match(value):
        raise CamaraError(
            400, "INVALID_ARGUMENT", "x-correlator does not match the CAMARA XCorrelator pattern."
        )
    return value
