"""Synthetic usage for the analytics tests: diurnal keys with seeded noise, fed hour by hour."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

from operators.analytics.alerts import Alert
from operators.analytics.engine import Analytics
from operators.analytics.records import HOUR, Activity, DistinctCounter, UsageBucket

MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday
DAY = 24 * HOUR
WEEK = 7 * DAY

Maker = Callable[[int, float], UsageBucket | None]
"""``make(hour, start)``: the key's bucket of that hour (None: no call)."""
Steady = Callable[[int, float], UsageBucket]


def diurnal(hour: int, peak: float) -> float:
    """A day that peaks mid-afternoon and bottoms out (at a seventh of the peak) at night."""
    return peak * (0.57 + 0.43 * math.sin(2 * math.pi * (hour % 24 - 9) / 24))


def bucket(
    client_id: str,
    start: float,
    calls: int,
    *,
    api: str = "sim-swap",
    errors: int = 0,
    throttled: int = 0,
    subscribers: int = 0,
    sources: Mapping[str, int] | None = None,
    subscriber_prefix: str = "s",
) -> UsageBucket:
    successes = max(0, calls - errors - throttled)
    return UsageBucket(
        client_id,
        api,
        start,
        calls=calls,
        successes=successes,
        errors=errors,
        throttled=throttled,
        subscribers=DistinctCounter(f"{subscriber_prefix}{i}" for i in range(subscribers)),
        sources=dict(sources or {}),
    )


def normal_key(
    client_id: str,
    rng: random.Random,
    *,
    peak: float = 60.0,
    api: str = "sim-swap",
    source: str = "net-a",
    error_share: float = 0.01,
) -> Steady:
    """A steady application: diurnal calls with Poisson-like noise, a few errors, subscribers
    about a third of the calls, always from ``source``."""

    def make(hour: int, start: float) -> UsageBucket:
        level = diurnal(hour, peak)
        calls = max(0, round(rng.gauss(level, math.sqrt(level))))
        errors = sum(1 for _ in range(calls) if rng.random() < error_share)
        return bucket(
            client_id,
            start,
            calls,
            api=api,
            errors=errors,
            subscribers=calls // 3,
            sources={source: calls} if calls else None,
        )

    return make


def created(analytics: Analytics, client_id: str, at: float = MONDAY, developer: str = "") -> None:
    developer = developer or f"dev-{client_id}"
    analytics.record_activity(Activity(at, "signed_up", developer, f"org-{developer}"))
    analytics.record_activity(
        Activity(at, "application_created", developer, f"org-{developer}", client_id=client_id)
    )


def feed(
    analytics: Analytics,
    keys: Mapping[str, Maker],
    *,
    hours: int,
    first_hour: int = 0,
    start: float = MONDAY,
) -> list[Alert]:
    """Feed every key's bucket hour by hour, advancing past each; the alerts raised."""
    alerts: list[Alert] = []
    for hour in range(first_hour, first_hour + hours):
        at = start + hour * HOUR
        for make in keys.values():
            made = make(hour, at)
            if made is not None:
                analytics.record_usage(made)
        alerts.extend(analytics.advance(at + HOUR))
    return alerts
