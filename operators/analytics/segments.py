"""Segments of applications, each entry with its reason in words.

* **churn_risk**: the last ``churn_weeks`` complete weeks each had fewer calls than the week
  before (or none at all), and the last complete week is below 50 % of the application's own
  peak 4-week mean (the highest mean of 4 consecutive weeks among the kept weeks).
* **power_users**: the top ``power_share`` (5 %) of applications by calls over the last 28
  complete days, among applications with calls, that made at least ``power_min_calls``.
* **upsell**: an application's calls of one API over the last 30 complete days reach
  ``upsell_share`` of the monthly limit given for it in ``quotas`` (a plan's quota, or the
  boundary of its current price tier: the caller decides which limit matters).
* **dormant**: no call for ``dormant_days`` after having had calls, or created
  ``dormant_days`` ago and never called.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .settings import DAY, AnalyticsSettings

__all__ = ["AppUsage", "SegmentEntry", "Segments", "segments"]

PEAK_WEEKS = 4
CHURN_DROP = 0.5


@dataclass(frozen=True)
class AppUsage:
    """What segments read of one application."""

    client_id: str
    developer_id: str
    org_id: str
    created_at: float | None
    last_call_at: float | None
    """The end of the bucket of its last call (None: never called)."""
    weekly: tuple[float, ...]
    """Calls per complete week, oldest first, the last ending at ``last_weeks_end``."""
    last_weeks_end: float
    calls_28d: float
    calls_30d_by_api: Mapping[str, float]


@dataclass(frozen=True)
class SegmentEntry:
    client_id: str
    developer_id: str
    org_id: str
    api: str
    reason: str
    value: float


@dataclass(frozen=True)
class Segments:
    churn_risk: tuple[SegmentEntry, ...]
    power_users: tuple[SegmentEntry, ...]
    upsell: tuple[SegmentEntry, ...]
    dormant: tuple[SegmentEntry, ...]

    def developers(self, segment: str) -> list[str]:
        """The distinct developers of one segment (by field name)."""
        entries: tuple[SegmentEntry, ...] = getattr(self, segment)
        return sorted({e.developer_id for e in entries if e.developer_id})


def segments(
    usage: Iterable[AppUsage],
    *,
    now: float,
    settings: AnalyticsSettings,
    quotas: Mapping[tuple[str, str], int] | None = None,
) -> Segments:
    apps = sorted(usage, key=lambda a: a.client_id)
    return Segments(
        tuple(e for a in apps if (e := churn_risk(a, settings.churn_weeks)) is not None),
        power_users(apps, settings.power_share, settings.power_min_calls),
        tuple(e for a in apps for e in upsell(a, quotas or {}, settings.upsell_share)),
        tuple(e for a in apps if (e := dormant(a, now, settings.dormant_days)) is not None),
    )


def _entry(app: AppUsage, reason: str, value: float, api: str = "") -> SegmentEntry:
    return SegmentEntry(app.client_id, app.developer_id, app.org_id, api, reason, value)


def churn_risk(app: AppUsage, weeks: int) -> SegmentEntry | None:
    series = app.weekly
    if len(series) < weeks + 1:
        return None
    tail = series[-(weeks + 1) :]
    if not all(b < a or b == 0 for a, b in itertools.pairwise(tail)) or tail[0] == 0:
        return None
    peak = max(
        (sum(series[k : k + PEAK_WEEKS]) / PEAK_WEEKS for k in range(len(series) - PEAK_WEEKS + 1)),
        default=0.0,
    )
    last = series[-1]
    if not last < CHURN_DROP * peak:
        return None
    shown = " -> ".join(f"{x:,.0f}" for x in tail)
    return _entry(
        app,
        f"calls fell {weeks} weeks in a row ({shown} a week); the last week is "
        f"{last / peak:.0%} of its peak 4-week mean of {peak:,.0f}",
        last / peak,
    )


def power_users(apps: Iterable[AppUsage], share: float, min_calls: int) -> tuple[SegmentEntry, ...]:
    active = sorted((a for a in apps if a.calls_28d > 0), key=lambda a: (-a.calls_28d, a.client_id))
    top = math.ceil(share * len(active))
    return tuple(
        _entry(
            a,
            f"{a.calls_28d:,.0f} calls over the last 28 days, #{rank} of {len(active)} "
            f"active applications (top {share:.0%})",
            a.calls_28d,
        )
        for rank, a in enumerate(active[:top], start=1)
        if a.calls_28d >= min_calls
    )


def upsell(
    app: AppUsage, quotas: Mapping[tuple[str, str], int], share: float
) -> list[SegmentEntry]:
    entries: list[SegmentEntry] = []
    for api, calls in sorted(app.calls_30d_by_api.items()):
        limit = quotas.get((app.client_id, api))
        if limit and calls >= share * limit:
            entries.append(
                _entry(
                    app,
                    f"{calls:,.0f} {api} calls over the last 30 days, {calls / limit:.0%} of its"
                    f" monthly limit of {limit:,}",
                    calls / limit,
                    api,
                )
            )
    return entries


def dormant(app: AppUsage, now: float, days: int) -> SegmentEntry | None:
    if app.last_call_at is not None:
        idle = (now - app.last_call_at) / DAY
        if idle >= days:
            return _entry(app, f"no call for {idle:.0f} days", idle)
        return None
    if app.created_at is not None and (now - app.created_at) / DAY >= days:
        age = (now - app.created_at) / DAY
        return _entry(app, f"created {age:.0f} days ago and never called", age)
    return None
