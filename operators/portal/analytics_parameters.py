"""The analytics pages' query parameters, read and refused by name, and how dates are shown.

A parameter a report refuses raises :class:`AnalyticsQueryError` naming it: the pages turn it
into a 400 (or 404) page, JSON body or line of text, and ``ogsim analytics`` into a message
naming the matching flag.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from ..analytics.settings import DAY
from ..billing import Month, MonthError

__all__ = [
    "MAX_DAYS",
    "MAX_WINDOW",
    "AnalyticsQueryError",
    "date_text",
    "duration_text",
    "iso",
    "month_param",
    "parse_duration",
    "whole_number",
]

MAX_DAYS = 366
MAX_WINDOW = 90 * DAY
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


class AnalyticsQueryError(Exception):
    """A query a report refuses: the HTTP status, the parameter at fault and why."""

    def __init__(self, status: int, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.status = status
        self.parameter = parameter
        self.message = message


def parse_duration(text: str, parameter: str, *, most: float = MAX_WINDOW) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` or ``2w`` in seconds, above 0 and at most
    ``most``; :class:`AnalyticsQueryError` naming ``parameter`` otherwise."""
    found = _DURATION.match(text.strip().lower())
    seconds = float(found.group(1)) * _UNITS[found.group(2)] if found else math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise AnalyticsQueryError(
            400, parameter, f"{text[:40]!r} is not a duration; write e.g. 90s, 15m, 24h or 7d."
        )
    if seconds > most:
        raise AnalyticsQueryError(
            400, parameter, f"{text[:40]!r} is longer than {most / DAY:g} days."
        )
    return seconds


def whole_number(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """``params[name]`` as a whole number in ``[low, high]``; ``default`` when absent."""
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not low <= int(raw) <= high:
        raise AnalyticsQueryError(
            400, name, f"{raw[:40]!r} is not a whole number from {low} to {high}."
        )
    return int(raw)


def month_param(params: Mapping[str, str], now: float) -> Month:
    """``?month=YYYY-MM``, one that has begun; the current month when absent."""
    raw = params.get("month", "").strip()
    if not raw:
        return Month.of(now)
    try:
        month = Month.parse(raw)
    except MonthError as error:
        raise AnalyticsQueryError(400, "month", str(error)) from None
    if month.start > now:
        raise AnalyticsQueryError(400, "month", f"{month} has not begun.")
    return month


def duration_text(seconds: float) -> str:
    """A duration in its largest whole unit (``86400`` -> ``1d``), as a window is written."""
    for unit, size in (("w", 7 * DAY), ("d", DAY), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def iso(at: float | None) -> str | None:
    """Epoch seconds as ``2026-01-31T10:00:00Z`` (None stays None)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def date_text(at: float) -> str:
    """Epoch seconds as the UTC date ``2026-01-31``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
