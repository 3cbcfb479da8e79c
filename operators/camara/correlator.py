"""The ``x-correlator`` header and the CAMARA error answer that echoes it: one rule each.

A correlator is echoed when it matches CAMARA_common's ``XCorrelator`` pattern, created
when absent and refused (400) when malformed; every CAMARA error answer is rendered by
:func:`render_error`, whoever raised it (an endpoint, the gateway's chain, its middleware,
the framework's own handlers).
"""

from __future__ import annotations

import os
import re
import time

from starlette.responses import JSONResponse

from operators.errors import CamaraError

__all__ = ["HEADER", "PATTERN", "correlator_for", "echoable", "new_correlator", "render_error"]

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


def new_correlator() -> str:
    """A new correlator for a call that came without one: a version 7 UUID (RFC 9562), the
    Unix time in milliseconds, then 74 random bits from ``os.urandom``, in its text form.

    Time-ordered on purpose: the correlator is half of the usage events' key, and random keys
    put each new event on a random page of that index, so every group commit wrote about one
    index page per event; keys that grow with time land on the index's last pages (measured:
    a quarter less time per event committed). Formatted by hand, without a
    :class:`uuid.UUID`: every call without a client's correlator pays it.
    """
    stamp = f"{time.time_ns() // 1_000_000:012x}"[-12:]
    rand = os.urandom(10).hex()
    variant = _VARIANT[int(rand[3], 16) & 3]
    return f"{stamp[:8]}-{stamp[8:]}-7{rand[:3]}-{variant}{rand[4:7]}-{rand[8:20]}"


_VARIANT = "89ab"
"""The RFC 9562 variant's first hex digit (binary 10xx) for each value of its two low bits."""


def correlator_for(value: str | None) -> str:
    """The correlator this call is known by; a new UUID when the client sent none."""
    if value is None or value == "":
        return new_correlator()
    if not PATTERN.match(value):
        raise CamaraError(
            400, "INVALID_ARGUMENT", "x-correlator does not match the CAMARA XCorrelator pattern."
        )
    return value
