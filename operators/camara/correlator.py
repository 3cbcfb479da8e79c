"""The ``x-correlator`` and ``Idempotency-Key`` headers and the CAMARA error answer that
echoes the correlator: one rule each.

A correlator is echoed when it matches its API's pattern (CAMARA_common's ``XCorrelator``, or
the narrower one Device Status and KYC Match declare), created when absent and refused (400)
when malformed; every CAMARA error answer is rendered by
:func:`render_error`, whoever raised it (an endpoint, the gateway's chain, its middleware,
the framework's own handlers).

The correlator only correlates (CAMARA_common: "a correlation id for the different services"):
a client may send one value across a whole flow, and a second call under it is a new call. A
call is run at most once only when the client asks for that with an ``Idempotency-Key``
(draft-ietf-httpapi-idempotency-key-header), which the gateway meters the call under and which
replays the first answer to a retry of the same request.
"""

from __future__ import annotations

import os
import random
import re
import time

from starlette.responses import JSONResponse

from operators.errors import CamaraError

__all__ = [
    "HEADER",
    "IDEMPOTENCY_HEADER",
    "KEY_PATTERN",
    "PATTERN",
    "SHORT_PATTERN",
    "correlator_for",
    "echoable",
    "idempotency_key",
    "new_correlator",
    "render_error",
]

HEADER = "x-correlator"
PATTERN = re.compile(r"^[a-zA-Z0-9\-_:;./<>{}]{0,256}$")
"""CAMARA_common's ``XCorrelator``, which most APIs reference."""
SHORT_PATTERN = re.compile(r"^[a-zA-Z0-9-]{0,55}$")
"""The x-correlator that Device Reachability Status, Device Roaming Status and KYC Match
declare inline instead: letters, digits and hyphens, at most 55 (a UUID fits). A correlator
the common pattern allows (``a:b``, 60 characters) is malformed for them."""

IDEMPOTENCY_HEADER = "idempotency-key"
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9\-_:;./<>{}]{1,256}$")
"""An ``Idempotency-Key``: what a correlator may be (a UUID fits), never empty."""


def echoable(value: str | None) -> str | None:
    """``value`` if an answer may echo it (present and well formed), else None."""
    return value if value and PATTERN.match(value) else None


def render_error(error: CamaraError, correlator: str | None = None) -> JSONResponse:
    """The one rendering of a CAMARA error: its body, its status and headers, the correlator."""
    headers = dict(error.headers)
    if correlator:
        headers[HEADER] = correlator
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


class _Tails:
    """The 74 bits after a version 7 UUID's timestamp: random, from a generator seeded from
    ``os.urandom`` once per process (again in a forked child, so parent and child never draw
    alike). Drawing from ``os.urandom`` per call was a system call per call (2.5 % of the
    server); a per-process prefix and a counter instead would let a client that sees two
    correlators tell which replica served it and how many calls came in between. Two
    correlators collide with odds of 2**-74 in one millisecond; they are identifiers, not
    secrets (the client echoes them), so the generator need not be a cryptographic one."""

    def __init__(self) -> None:
        self.random = random.Random()
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.random.seed(os.urandom(32))

    def next(self) -> int:
        return self.random.getrandbits(74)


_tails = _Tails()
_RAND_B = (1 << 62) - 1


def new_correlator() -> str:
    """A new correlator for a call that came without one: a version 7 UUID (RFC 9562), the
    Unix time in milliseconds, then 74 bits unique to the call (:class:`_Tails`), in its text
    form.

    Time-ordered on purpose: the correlator is half of the usage events' key, and random keys
    put each new event on a random page of that index, so every group commit wrote about one
    index page per event; keys that grow with time land on the index's last pages (measured:
    a quarter less time per event committed). Formatted from one integer, without a
    :class:`uuid.UUID`: every call without a client's correlator pays it.
    """
    tail = _tails.next()
    value = (
        (time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF) << 80
        | 0x7 << 76
        | (tail >> 62) << 64
        | 0b10 << 62
        | tail & _RAND_B
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def correlator_for(value: str | None, pattern: re.Pattern[str] = PATTERN) -> str:
    """The correlator this call is known by; a new UUID when the client sent none. ``pattern``
    is the called API's (see ``operators.camara.operations.correlator_pattern``)."""
    if value is None or value == "":
        return new_correlator()
    if not pattern.match(value):
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"x-correlator does not match the pattern {pattern.pattern}"
        )
    return value


def idempotency_key(value: str | None) -> str | None:
    """The ``Idempotency-Key`` a client sent (None when it sent none): the key its call is
    metered under, so a retry under it gets the first answer instead of running twice.

    The draft makes the value a quoted string (``"8e03978e-..."``); the quotes are dropped, so
    the quoted and the bare spelling are one key."""
    if value is None:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not KEY_PATTERN.match(value):
        raise CamaraError(
            400,
            "INVALID_ARGUMENT",
            f"Idempotency-Key does not match the pattern {KEY_PATTERN.pattern}",
        )
    return value
