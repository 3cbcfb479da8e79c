"""The analytics engine: usage buckets and milestones in, scores, alerts and reports out.

Streaming and bounded in memory: buckets are held only while open (until :meth:`advance`
closes them), then folded into fixed rings per key (one application calling one API):
``season_buckets * season_weeks`` buckets for the detectors, :data:`DAYS_KEPT` days for the
timeline and segments, :data:`WEEKS_KEPT` weeks for cohorts and churn. Scores and alerts are
kept in bounded deques (:data:`MAX_SCORES`, :data:`MAX_ALERTS`, the oldest dropped).

A part of a bucket that arrives after :meth:`advance` closed its bucket is counted in
:attr:`Analytics.late_parts` and dropped: whoever feeds the engine flushes a bucket before
advancing past its end.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from . import cohorts as _cohorts
from . import funnels as _funnels
from . import segments as _segments
from .alerts import Alert, AlertKind
from .baselines import Baseline, Ints, PeriodRings, day_of, week_of, week_start
from .detectors import (
    Closed,
    FarmCandidate,
    Scored,
    Wording,
    close,
    enumeration,
    error_spike,
    new_source,
    off_hours,
    quota_farming,
    unthrottled_subscribers,
    volume_spike,
)
from .records import Activity, UsageBucket
from .settings import DAY, AnalyticsSettings
from .timeline import ApplicationInfo, DailyCounts, DeveloperInfo, Milestones, TimelineEntry

__all__ = [
    "DAYS_KEPT",
    "MAX_ALERTS",
    "MAX_KNOWN_SOURCES",
    "MAX_SCORES",
    "WEEKS_KEPT",
    "Analytics",
    "Score",
]

DAYS_KEPT = 35
"""Days of calls, errors and throttles kept per key (timeline, power users, upsell)."""
WEEKS_KEPT = 26
"""Weeks of calls and successes kept per key (churn, cohorts)."""
MAX_SCORES = 200_000
MAX_ALERTS = 50_000
MAX_KNOWN_SOURCES = 64
"""Sources remembered per key (the least recently seen forgotten first)."""
QUOTA_DAYS = 30
ALIGNMENT = 1e-6
"""A bucket's start may be off a multiple of the bucket length by this share of it (float
rounding in whoever computed it), no more."""


@dataclass(frozen=True)
class Score:
    """One scored bucket of one detector, kept when score >= record_floor."""

    kind: AlertKind
    client_id: str
    api: str
    bucket_start: float
    score: float
    observed: float
    baseline: float


class Analytics:
    """Streaming, bounded in memory: aggregates per application x API x bucket only, rings
    of history per key.

    ``quotas`` maps ``(client_id, api)`` to a monthly calls limit for the quota-farming
    detector (no quota, no farming verdict); :meth:`set_quota` changes one later.
    """

    def __init__(
        self,
        settings: AnalyticsSettings = AnalyticsSettings(),
        *,
        on_alert: Callable[[Alert], None] | None = None,
        quotas: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.settings = settings
        self._detectors = settings.detectors
        self._wording = Wording.of(settings.detectors)
        self._on_alert = on_alert
        self._quotas = dict(quotas or {})
        self._baseline = Baseline(self._detectors)
        self._bucket_seconds = self._detectors.bucket_seconds
        self._ring = self._detectors.ring_length
        self._buckets = PeriodRings(self._ring, ("calls", "errors", "subscribers"))
        self._fresh = PeriodRings(self._detectors.recent_buckets, ("fresh",))
        self._days = PeriodRings(
            DAYS_KEPT, ("calls", "successes", "errors", "throttled"), np.float64
        )
        self._weeks = PeriodRings(WEEKS_KEPT, ("calls", "successes"), np.float64)
        self._rows: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._first = np.zeros(0, dtype=np.int64)
        self._last_call = np.zeros(0, dtype=np.int64)
        self._known: list[dict[str, int]] = []
        self._by_client: dict[str, list[int]] = {}
        self._open: dict[int, dict[tuple[str, str], UsageBucket]] = {}
        self._merged: set[tuple[int, str, str]] = set()
        self._next: int | None = None
        self._farmed: int | None = None
        """The last day whose quota farming was judged."""
        self._cooldown: dict[tuple[str, str, str], int] = {}
        self._milestones = Milestones()
        self._alerts: deque[Alert] = deque(maxlen=MAX_ALERTS)
        self._scores: deque[Score] = deque(maxlen=MAX_SCORES)
        self.late_parts = 0
        """Parts of buckets that arrived after their bucket closed (dropped)."""
        self.scores_dropped = 0

    # -- input -------------------------------------------------------------------------------

    def record_activity(self, activity: Activity) -> None:
        """Any order within a bucket; application_created teaches client -> (developer, org)."""
        self._milestones.record(activity)

    def record_usage(self, bucket: UsageBucket) -> None:
        """A whole bucket, or a part of it: parts of one bucket merge until it closes. The
        first part is kept as it is (not copied): do not change it afterwards. A start that
        is not a multiple of the bucket length is refused here (ValueError), not later when
        a part of the same bucket fails to merge with it."""
        seconds = self._bucket_seconds
        index = math.floor(bucket.start / seconds + 1e-9)
        if not abs(bucket.start - index * seconds) <= ALIGNMENT * seconds:
            raise ValueError(
                f"usage bucket of {bucket.client_id} on {bucket.api}: start {bucket.start!r} is"
                f" not a multiple of the bucket length ({seconds:g} s); the bucket holding it"
                f" starts at {index * seconds!r}"
            )
        if self._next is not None and index < self._next:
            self.late_parts += 1
            return
        parts = self._open.get(index)
        if parts is None:
            parts = self._open[index] = {}
        key = (bucket.client_id, bucket.api)
        held = parts.get(key)
        if held is None:
            parts[key] = bucket
            return
        mark = (index, bucket.client_id, bucket.api)
        if mark not in self._merged:
            self._merged.add(mark)
            held = parts[key] = _copy(held)
        held.merge(bucket)

    def set_quota(self, client_id: str, api: str, monthly_calls: int | None) -> None:
        if monthly_calls is None:
            self._quotas.pop((client_id, api), None)
        else:
            self._quotas[client_id, api] = monthly_calls

    def advance(self, now: float) -> list[Alert]:
        """Closes every bucket ending at or before ``now`` (empty buckets count as zero for
        keys with history), scores them, returns new alerts (also passed to on_alert)."""
        last = math.floor(now / self._bucket_seconds + 1e-9) - 1
        alerts: list[Alert] = []
        for index in sorted(i for i in self._open if i <= last):
            alerts.extend(self._close(index, self._open.pop(index), now))
        # a day ends even when no call opens a bucket of the next one (a quiet night)
        alerts.extend(self._finish_day(last + 1, now))
        if self._next is None or last + 1 > self._next:
            self._next = last + 1
        self._merged = {m for m in self._merged if m[0] > last} if self._merged else self._merged
        for alert in alerts:
            self._alerts.append(alert)
            if self._on_alert is not None:
                self._on_alert(alert)
        return alerts

    # -- closing a bucket --------------------------------------------------------------------

    def _row(self, key: tuple[str, str]) -> int:
        row = self._rows.get(key)
        if row is not None:
            return row
        row = self._rows[key] = len(self._keys)
        self._keys.append(key)
        self._known.append({})
        self._by_client.setdefault(key[0], []).append(row)
        self._milestones.saw_api(*key)
        if row >= len(self._first):
            capacity = max(16, 2 * len(self._first))
            self._first = np.concatenate([self._first, np.full(capacity - len(self._first), -1)])
            self._last_call = np.concatenate(
                [self._last_call, np.full(capacity - len(self._last_call), -1)]
            )
            for rings in (self._buckets, self._fresh, self._days, self._weeks):
                rings.grow(capacity)
        return row

    def _close(
        self, bucket: int, parts: dict[tuple[str, str], UsageBucket], now: float
    ) -> list[Alert]:
        keys = list(parts)
        rows, values, fresh_names = self._tabulate(bucket, parts)
        first = self._first[rows]
        first[first < 0] = bucket
        self._first[rows] = first
        ages = bucket - first

        alerts = self._finish_day(bucket, now)
        self._buckets.roll_to(bucket - 1)
        self._fresh.roll_to(bucket - 1)
        closed = close(bucket, rows, ages, values, self._buckets, self._baseline, self._detectors)
        for scored in self._detect(closed):
            alerts.extend(self._judge(scored, keys, bucket, now, fresh_names, closed.seasonal))
        self._fold(bucket, rows, values)
        return alerts

    def _tabulate(
        self, bucket: int, parts: dict[tuple[str, str], UsageBucket]
    ) -> tuple[Ints, np.ndarray, dict[int, list[str]]]:
        """Rows of the bucket's keys, and a column each of calls, errors, distinct
        subscribers, calls from unseen sources, successes and throttled calls (comprehensions
        rather than one loop: this is the engine's only per-key Python)."""
        rows_get = self._rows.get
        listed = [rows_get(key) for key in parts]
        if None in listed:
            listed = [self._row(key) for key in parts]
        usages = list(parts.values())
        fresh = [0] * len(usages)
        fresh_names: dict[int, list[str]] = {}
        horizon = bucket - self._ring
        known_of = self._known
        for position, usage in enumerate(usages):
            if not usage.sources:
                continue
            known = known_of[listed[position]]  # type: ignore[index]
            for source, calls in usage.sources.items():
                seen = known.get(source)
                if seen is None or seen <= horizon:
                    fresh[position] += calls
                    fresh_names.setdefault(position, []).append(source)
                known[source] = bucket
            if len(known) > MAX_KNOWN_SOURCES:
                _forget_oldest(known)
        values = np.array(
            [
                [u.calls for u in usages],
                [u.errors for u in usages],
                [u.subscribers.count for u in usages],
                fresh,
                [u.successes for u in usages],
                [u.throttled for u in usages],
            ],
            dtype=np.float64,
        ).T
        return np.array(listed, dtype=np.int64), values, fresh_names

    def _detect(self, closed: Closed) -> list[Scored]:
        settings = self._detectors
        return [
            volume_spike(closed, settings),
            error_spike(closed, self._buckets, self._baseline, settings),
            enumeration(closed, self._buckets, self._baseline, settings),
            off_hours(closed, self._buckets, self._baseline, settings),
            new_source(closed, self._fresh, settings),
        ]

    def _fold(self, bucket: int, rows: Ints, values: np.ndarray) -> None:
        """The closed bucket into every ring; subscribers as enumeration's baseline wants
        them (:func:`~operators.analytics.detectors.unthrottled_subscribers`)."""
        for column, name in enumerate(("calls", "errors")):
            self._buckets.add(name, rows, bucket, values[:, column])
        subscribers = unthrottled_subscribers(values[:, 0], values[:, 5], values[:, 2])
        self._buckets.add("subscribers", rows, bucket, subscribers)
        self._fresh.add("fresh", rows, bucket, values[:, 3])
        start = bucket * self._bucket_seconds
        day, week = day_of(start), week_of(start)
        self._days.add("calls", rows, day, values[:, 0])
        self._days.add("errors", rows, day, values[:, 1])
        self._days.add("successes", rows, day, values[:, 4])
        self._days.add("throttled", rows, day, values[:, 5])
        self._weeks.add("calls", rows, week, values[:, 0])
        self._weeks.add("successes", rows, week, values[:, 4])
        called = values[:, 0] > 0
        self._last_call[rows[called]] = bucket

    def _judge(
        self,
        scored: Scored,
        keys: Sequence[tuple[str, str]],
        bucket: int,
        now: float,
        fresh_names: Mapping[int, list[str]],
        seasonal: npt.NDArray[np.bool_],
    ) -> list[Alert]:
        settings = self._detectors
        threshold = settings.threshold_of(scored.kind)
        kept = scored.at_least(min(settings.record_floor, threshold))
        start = bucket * self._bucket_seconds
        alerts: list[Alert] = []
        for position, score, observed, baseline in zip(
            kept.index.tolist(),
            kept.score.tolist(),
            kept.observed.tolist(),
            kept.baseline.tolist(),
            strict=True,
        ):
            client_id, api = keys[position]
            if score >= settings.record_floor:
                self._keep(Score(scored.kind, client_id, api, start, score, observed, baseline))
            if score < threshold or not self._cool(scored.kind, client_id, api, bucket):
                continue
            developer_id, org_id = self._milestones.owner(client_id)
            detail = self._wording.describe(
                scored.kind,
                observed,
                baseline,
                seasonal=bool(seasonal[position]),
                sources=fresh_names.get(position, ()),
            )
            alerts.append(
                Alert(
                    scored.kind,
                    client_id,
                    api,
                    developer_id,
                    org_id,
                    start,
                    max(now, start + self._bucket_seconds),
                    score,
                    observed,
                    baseline,
                    detail,
                )
            )
        return alerts

    def _keep(self, score: Score) -> None:
        if len(self._scores) == MAX_SCORES:
            self.scores_dropped += 1
        self._scores.append(score)

    def _cool(self, kind: str, owner: str, api: str, period: int) -> bool:
        """True (and the cooldown restarted) unless this key alerted of this kind lately:
        ``period`` is a bucket, or a day for quota farming (judged once a day), and the
        cooldown ``alert_cooldown_buckets`` or ``alert_cooldown_days`` of them."""
        key = (kind, owner, api)
        last = self._cooldown.get(key)
        cooldown = (
            self.settings.alert_cooldown_days
            if kind == "quota_farming"
            else self.settings.alert_cooldown_buckets
        )
        if last is not None and period - last < cooldown:
            return False
        self._cooldown[key] = period
        return True

    # -- quota farming, once a day -------------------------------------------------------------

    def _finish_day(self, bucket: int, now: float) -> list[Alert]:
        """Quota farming over the last day with calls, once ``bucket``'s day is after it
        (once per day: when a bucket of a later day closes, or when advancing past its end)."""
        day = day_of(bucket * self._bucket_seconds)
        finished = self._days.current
        if finished is None or day <= finished:
            return []
        if self._farmed is not None and finished <= self._farmed:
            return []
        self._farmed = finished
        if not self._quotas or not self._keys:
            return []
        rows = np.arange(len(self._keys), dtype=np.int64)
        used = self._days.window("calls", rows, finished, QUOTA_DAYS).sum(axis=1)
        candidates: list[FarmCandidate] = []
        for row in np.flatnonzero(used > 0).tolist():
            client_id, api = self._keys[row]
            quota = self._quotas.get((client_id, api))
            if not quota:
                continue
            share = float(used[row]) / quota
            if share < self._detectors.farming_share:
                continue
            info = self._milestones.application(client_id)
            if info.created_at is not None:
                candidates.append(
                    FarmCandidate(client_id, info.developer_id, api, info.created_at, share)
                )
        start = finished * DAY
        threshold = self._detectors.threshold_of("quota_farming")
        alerts: list[Alert] = []
        for farm in quota_farming(candidates, self._detectors):
            first = farm.client_ids[0]
            observed = float(sum(farm.shares))
            if farm.score >= self._detectors.record_floor:
                self._keep(
                    Score("quota_farming", first, farm.api, start, farm.score, observed, 0.0)
                )
            if farm.score < threshold or not self._cool(
                "quota_farming", farm.developer_id, farm.api, finished
            ):
                continue
            _, org_id = self._milestones.owner(first)
            shares = ", ".join(
                f"{c} {s:.0%}" for c, s in zip(farm.client_ids, farm.shares, strict=True)
            )
            detail = (
                f"{len(farm.client_ids)} applications created within "
                f"{self._detectors.farming_window / DAY:g} days, each near its monthly {farm.api}"
                f" quota over the last {QUOTA_DAYS} days ({shares})"
            )
            alerts.append(
                Alert(
                    "quota_farming",
                    first,
                    farm.api,
                    farm.developer_id,
                    org_id,
                    start,
                    max(now, start + DAY),
                    farm.score,
                    observed,
                    0.0,
                    detail,
                )
            )
        return alerts

    # -- reading -----------------------------------------------------------------------------

    @property
    def alerts(self) -> Sequence[Alert]:
        return tuple(self._alerts)

    @property
    def scores(self) -> Sequence[Score]:
        """The last :data:`MAX_SCORES` scores at or above ``record_floor`` (oldest dropped,
        counted in :attr:`scores_dropped`)."""
        return tuple(self._scores)

    @property
    def keys(self) -> int:
        """Application x API pairs seen."""
        return len(self._keys)

    @property
    def history_bytes(self) -> int:
        """Bytes held by the rings (everything per key except the small dictionaries)."""
        rings = (self._buckets, self._fresh, self._days, self._weeks)
        return sum(r.nbytes for r in rings) + self._first.nbytes + self._last_call.nbytes

    @property
    def ring_lengths(self) -> Mapping[str, int]:
        return MappingProxyType(
            {
                "buckets": self._buckets.length,
                "fresh": self._fresh.length,
                "days": self._days.length,
                "weeks": self._weeks.length,
            }
        )

    def developers(self) -> Mapping[str, DeveloperInfo]:
        return MappingProxyType(
            {d: self._milestones.developer(d) for d in self._milestones.developer_ids()}
        )

    def applications(self) -> Mapping[str, ApplicationInfo]:
        return MappingProxyType(
            {c: self._milestones.application(c) for c in self._milestones.client_ids()}
        )

    def timeline(self, developer_id: str) -> list[TimelineEntry]:
        """Milestones, first success per API, and per application the days (of the last
        :data:`DAYS_KEPT`) with errors or throttled calls."""
        try:
            info = self._milestones.developer(developer_id)
        except KeyError:
            raise KeyError(f"unknown developer {developer_id!r}") from None
        daily = {c: self._daily(c) for c in info.applications}
        return self._milestones.timeline(developer_id, daily)

    def _daily(self, client_id: str) -> list[DailyCounts]:
        rows = np.array(self._by_client.get(client_id, []), dtype=np.int64)
        last = self._days.current
        if not len(rows) or last is None:
            return []
        errors = self._days.window("errors", rows, last, DAYS_KEPT).sum(axis=0)
        throttled = self._days.window("throttled", rows, last, DAYS_KEPT).sum(axis=0)
        first = last - DAYS_KEPT + 1
        return [
            DailyCounts((first + k) * DAY, int(errors[k]), int(throttled[k]))
            for k in range(DAYS_KEPT)
            if errors[k] or throttled[k]
        ]

    def funnel(
        self, steps: Sequence[_funnels.FunnelStep], *, window: float | None = None, now: float
    ) -> _funnels.FunnelReport:
        developers = self.developers()
        return _funnels.funnel(
            developers.values(),
            steps,
            window=self.settings.funnel_window if window is None else window,
            now=now,
        )

    def cohorts(self, *, now: float, weeks: int = 12) -> _cohorts.CohortTable:
        """Retention by sign-up week (active = >= 1 successful call in week k after sign-up);
        activity older than :data:`WEEKS_KEPT` weeks is not kept, so neither are those
        cohorts."""
        current = week_of(now)
        active = self._active_weeks(current)
        signups = {
            d.developer_id: d.signed_up_at
            for d in self.developers().values()
            if d.signed_up_at is not None
        }
        apps = {d: self._milestones.developer(d).applications for d in signups}
        return _cohorts.cohort_table(
            signups,
            {d: frozenset(w for c in cs for w in active.get(c, ())) for d, cs in apps.items()},
            now=now,
            weeks=weeks,
            oldest_week=current - WEEKS_KEPT + 1,
        )

    def _active_weeks(self, current: int) -> dict[str, list[int]]:
        """Per application, the weeks (indices) with a successful call."""
        if self._weeks.current is None or not self._keys:
            return {}
        rows = np.arange(len(self._keys), dtype=np.int64)
        last = max(current, self._weeks.current)
        success = self._weeks.window("successes", rows, last, WEEKS_KEPT) > 0
        first = last - WEEKS_KEPT + 1
        active: dict[str, list[int]] = {}
        for row, column in zip(*np.nonzero(success), strict=True):
            active.setdefault(self._keys[int(row)][0], []).append(first + int(column))
        return active

    def segments(
        self, *, now: float, quotas: Mapping[tuple[str, str], int] | None = None
    ) -> _segments.Segments:
        """Churn risk, power users, upsell candidates and dormant applications, each with
        its reason (see :mod:`operators.analytics.segments`)."""
        return _segments.segments(
            self._usage(now),
            now=now,
            settings=self.settings,
            quotas=self._quotas if quotas is None else quotas,
        )

    def _usage(self, now: float) -> list[_segments.AppUsage]:
        rows = np.arange(len(self._keys), dtype=np.int64)
        last_week = week_of(now) - 1  # the last complete week
        last_day = day_of(now) - 1  # the last complete day
        weekly = self._weeks.window("calls", rows, last_week, WEEKS_KEPT)
        days = self._days.window("calls", rows, last_day, DAYS_KEPT)
        month = days[:, -QUOTA_DAYS:].sum(axis=1)
        recent = days[:, -28:].sum(axis=1)
        usage: list[_segments.AppUsage] = []
        applications = self.applications()
        for client_id, info in applications.items():
            mine = self._by_client.get(client_id, [])
            last_call = max((int(self._last_call[r]) for r in mine), default=-1)
            usage.append(
                _segments.AppUsage(
                    client_id=client_id,
                    developer_id=info.developer_id,
                    org_id=info.org_id,
                    created_at=info.created_at,
                    last_call_at=(
                        None if last_call < 0 else (last_call + 1) * self._bucket_seconds
                    ),
                    weekly=tuple(float(x) for x in weekly[mine].sum(axis=0)) if mine else (),
                    last_weeks_end=week_start(last_week + 1),
                    calls_28d=float(recent[mine].sum()) if mine else 0.0,
                    calls_30d_by_api={self._keys[r][1]: float(month[r]) for r in mine},
                )
            )
        return usage


def _copy(bucket: UsageBucket) -> UsageBucket:
    fresh = UsageBucket(bucket.client_id, bucket.api, bucket.start)
    fresh.merge(bucket)
    return fresh


def _forget_oldest(known: dict[str, int]) -> None:
    for source, _ in sorted(known.items(), key=lambda item: item[1])[
        : len(known) - MAX_KNOWN_SOURCES
    ]:
        del known[source]
