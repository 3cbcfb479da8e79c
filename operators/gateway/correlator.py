"""The ``x-correlator`` header: echoed when valid, created when absent, refused when malformed."""

from __future__ import annotations

import re
import uuid

from operators.errors import CamaraError

HEADER = "x-correlator"
PATTERN = re.compile(r"^[a-zA-Z0-9\-_:;./<>{}]{0,256}$")


def correlator_for(value: str | None) -> str:
    """The correlator this call is known by; a new UUID when the client sent none."""
    if value is None or value == "":
        return str(uuid.uuid4())
    if not PATTERN.match(value):
        raise CamaraError(
            400, "INVALID_ARGUMENT", "x-correlator does not match the CAMARA XCorrelator pattern."
        )
    return value
