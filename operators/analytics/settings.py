"""The analytics' knobs: detector thresholds and gates, and the segments' definitions.

Frozen so one settings object can be shared by the live monitor and every simulated
replication; a sweep over thresholds builds new ones with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

from .alerts import ALERT_KINDS, AlertKind
from .records import HOUR

__all__ = ["AnalyticsSettings", "DetectorSettings", "Thresholds"]

DAY = 86_400.0


class Thresholds(Mapping[AlertKind, float]):
    """Per-kind thresholds: a read-only, hashable mapping, so the settings holding it stay
    frozen and hashable (and equal when their overrides are)."""

    __slots__ = ("_items",)

    def __init__(
        self, overrides: Mapping[AlertKind, float] | Mapping[str, float] | None = None
    ) -> None:
        items: dict[AlertKind, float] = {}
        for kind, value in (overrides or {}).items():
            if kind not in ALERT_KINDS:
                raise ValueError(
                    f"thresholds.{kind}: unknown alert kind (known: {', '.join(ALERT_KINDS)})"
                )
            number = float(value)
            if not (math.isfinite(number) and number > 0):
                raise ValueError(f"thresholds.{kind} must be finite and > 0 (it is {value!r})")
            items[cast(AlertKind, kind)] = number
        self._items = dict(sorted(items.items()))

    def __getitem__(self, kind: AlertKind) -> float:
        return self._items[kind]

    def __iter__(self) -> Iterator[AlertKind]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == dict(other.items())

    def __repr__(self) -> str:
        return f"Thresholds({self._items!r})"

    def __reduce__(self) -> tuple[type[Thresholds], tuple[dict[AlertKind, float]]]:
        return (Thresholds, (self._items,))


@dataclass(frozen=True)
class DetectorSettings:
    """How a closed bucket is scored against its key's own history.

    A key is one application calling one API. The robust score is
    ``(x - median) / max(1.4826 * MAD, floor)`` (see :mod:`operators.analytics.baselines` for
    the floor); only rises are scored, so a quiet hour never alerts.
    """

    bucket_seconds: float = HOUR
    """Length of a UsageBucket."""
    season_buckets: int | None = 168
    """Hour-of-week seasonality; None: the baseline is the last ``recent_buckets`` buckets."""
    recent_buckets: int = 24
    """The non-seasonal baseline window (and the seasonal fallback while the season is short)."""
    min_history: int = 24
    """Buckets of history (empty ones after the first call included) before a key is scored."""
    threshold: float = 5.0
    """A robust score at or above this raises an alert (of a kind without its own)."""
    thresholds: Mapping[AlertKind, float] = field(default_factory=Thresholds)
    """Per-kind overrides of ``threshold``: detectors' scores differ in scale (the smallest
    quota farm scores 5 whatever the threshold suits spikes). Stored as :class:`Thresholds`."""
    record_floor: float = 2.0
    """Scores at or above this are kept in ``Analytics.scores`` (for threshold sweeps)."""
    enumeration_min_subscribers: int = 50
    """Distinct subscribers in one bucket below which enumeration is never flagged."""
    min_calls: int = 20
    """Volume, error, off-hours and new-source scores need this many calls in the bucket."""
    season_weeks: int = 4
    """Seasons of history kept per key: 4 weeks of hours is 672 values per metric."""
    season_min_weeks: int = 2
    """Same-slot values needed before the seasonal baseline replaces the recent window."""
    relative_floor: float = 0.2
    """The score's floor as a share of the median: with the default threshold nothing below
    twice the usual level is a spike, whatever the MAD of four quiet weeks says."""
    new_source_share: float = 0.5
    """Share of a bucket's calls from unseen sources before new_source is scored."""
    farming_min_apps: int = 3
    """Applications of one developer near quota on one API that make a farm."""
    farming_window: float = 7 * DAY
    """The farm's applications were all created within this many seconds."""
    farming_share: float = 0.8
    """Share of its quota (calls over the last 30 days) that puts an application near it."""

    def __post_init__(self) -> None:
        _positive("bucket_seconds", self.bucket_seconds)
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite (it is {self.threshold!r})")
        _positive("threshold", self.threshold)
        if not isinstance(self.thresholds, Thresholds):
            object.__setattr__(self, "thresholds", Thresholds(self.thresholds))
        for name in ("recent_buckets", "season_weeks", "season_min_weeks", "farming_min_apps"):
            _positive(name, getattr(self, name))
        if self.season_buckets is not None:
            _positive("season_buckets", self.season_buckets)
            if self.season_min_weeks > self.season_weeks:
                raise ValueError("season_min_weeks must not exceed season_weeks")
            if self.recent_buckets > self.season_buckets * self.season_weeks:
                raise ValueError("recent_buckets must fit in season_buckets * season_weeks")
        for name in ("min_history", "min_calls", "enumeration_min_subscribers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 < self.new_source_share <= 1 or self.farming_share <= 0:
            raise ValueError("new_source_share must be in (0, 1] and farming_share > 0")

    def threshold_of(self, kind: AlertKind) -> float:
        """The score at or above which ``kind`` raises an alert."""
        return self.thresholds.get(kind, self.threshold)

    @property
    def ring_length(self) -> int:
        """Buckets of history kept per key and metric."""
        if self.season_buckets is None:
            return self.recent_buckets
        return self.season_buckets * self.season_weeks


@dataclass(frozen=True)
class AnalyticsSettings:
    """Detectors plus the definitions of funnels and segments."""

    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    funnel_window: float = 24 * 3600.0
    """The default conversion window, from the funnel's first step."""
    churn_weeks: int = 4
    """Segments: weeks of declining usage compared with its own history."""
    dormant_days: int = 14
    upsell_share: float = 0.8
    """Near quota or tier boundary."""
    alert_cooldown_buckets: int = 6
    """One alert per (client, api, kind) within this many buckets."""
    alert_cooldown_days: int = 7
    """One quota-farming alert per (developer, api) within this many days: farming is judged
    once a day, and a farm stays one for weeks."""
    power_share: float = 0.05
    """Power users: this top share of applications by calls over the last 4 weeks."""
    power_min_calls: int = 1000
    """Power users also made at least this many calls over those 4 weeks."""

    def __post_init__(self) -> None:
        _positive("funnel_window", self.funnel_window)
        for name in ("churn_weeks", "dormant_days"):
            _positive(name, getattr(self, name))
        for name in ("alert_cooldown_buckets", "alert_cooldown_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 < self.power_share <= 1 or self.upsell_share <= 0:
            raise ValueError("power_share must be in (0, 1] and upsell_share > 0")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (it is {value!r})")
