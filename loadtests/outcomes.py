"""What one answer means to a load test, decided from its status and CAMARA error body.

Throttling (429) and protective refusals (503 from an open breaker, a full request buffer or
shed load) are the federation doing its job: they are reported under their own request type
and are not failures. A 503 from a data centre that is down (or from a front with none
healthy) is a real failure the client sees; a client may retry it with the same
``Idempotency-Key``, which the gateways and the aggregator count once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    SUCCESS = "success"
    THROTTLED = "429 throttled"
    PROTECTIVE = "503 protective"
    DATA_CENTRE_DOWN = "503 data centre down"
    ERROR = "error"


REJECTION_TYPES = frozenset({"429", "503 protective"})
"""Locust request types of answers that are the federation protecting itself, not failures:
what a load test reports apart from its served calls."""

PROTECTIVE_MARKERS = ("circuit open", "load shed", "request buffer full")
DATA_CENTRE_MARKERS = (
    "data centre",
    "no healthy",
    "authorization server failed",  # the aggregator's token hop met the dead site
    "is unreachable",  # the aggregator could not reach the operator
)


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    status: int
    code: str
    message: str
    body: Any
    retry_after: float | None = None

    @property
    def billable(self) -> bool:
        """A 2xx through a gateway: exactly what the operator meters."""
        return 200 <= self.status < 300


def parse_body(text: str | bytes | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def classify(status: int, body: Any, retry_after: str | None = None) -> Outcome:
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if 200 <= status < 300:
        return Outcome(Kind.SUCCESS, status, code, message, body)
    if status == 429:
        wait = None
        if retry_after is not None:
            try:
                wait = float(retry_after)
            except ValueError:
                wait = None
        return Outcome(Kind.THROTTLED, status, code, message, body, wait)
    if status == 503:
        lowered = message.lower()
        if any(marker in lowered for marker in PROTECTIVE_MARKERS):
            return Outcome(Kind.PROTECTIVE, status, code, message, body)
        if any(marker in lowered for marker in DATA_CENTRE_MARKERS):
            return Outcome(Kind.DATA_CENTRE_DOWN, status, code, message, body)
    return Outcome(Kind.ERROR, status, code, message, body)
