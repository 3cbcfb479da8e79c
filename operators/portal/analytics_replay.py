"""The analytics engine the pages read, replayed once from the records and fed as they grow.

Funnels, cohorts, segments and timelines come from an :class:`~operators.analytics.engine.
Analytics` fed from the database: every developer milestone (:class:`~operators.analytics.
activity_log.ActivityLog`, followed by row id) and the usage buckets of the last
:data:`REPLAY_WEEKS` whole weeks that have closed, a bucket counting as closed ``grace``
seconds after its end, as the monitor scores it (every replica has written its part by
then). It is not the monitor's live engine: a replica that runs no monitor serves the pages
too.

A page view feeds only what appeared since the last one: milestones after the last row read
and buckets that closed since. New calls in the bucket under way change nothing the engine
holds (they are read when their bucket closes), so a busy gateway does not make every view
replay thirteen weeks. The engine is built again only when the replayed weeks move on (once
a week). The bucket under way shows on the pages through the reports that read the buckets
table directly (calls per day, active applications).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from ..analytics.baselines import week_of, week_start
from ..analytics.engine import Analytics
from ..analytics.records import Activity, UsageBucket
from ..analytics.settings import AnalyticsSettings

__all__ = ["REPLAY_WEEKS", "BucketReader", "MilestoneReader", "ReplayCache"]

REPLAY_WEEKS = 13
"""Whole weeks of usage buckets replayed (a quarter: cohorts of up to 12 weeks, churn over 4)."""


class MilestoneReader(Protocol):
    """The activity log's reading side (:class:`~operators.analytics.activity_log.ActivityLog`)."""

    def read_rows(
        self, since: float | None = None, until: float | None = None, *, after_id: int = 0
    ) -> list[tuple[int, Activity]]: ...


class BucketReader(Protocol):
    """The usage buckets' reading side (:class:`~operators.analytics.usage_recorder.
    UsageRecorder`)."""

    seconds: float

    def read_buckets(
        self, since: float | None = None, until: float | None = None
    ) -> list[UsageBucket]: ...


class ReplayCache:
    """One engine per process, fed incrementally; :meth:`analytics` lends it under a lock
    (a report reads it while no other view feeds it)."""

    def __init__(
        self,
        settings: AnalyticsSettings,
        milestones: MilestoneReader,
        buckets: BucketReader,
        *,
        grace: float,
    ) -> None:
        self.settings = settings
        self.milestones = milestones
        self.buckets = buckets
        self.seconds = buckets.seconds
        self.grace = grace
        self.replays = 0
        """Times the engine was built from nothing (the first view, then once a week)."""
        self.fed_buckets = 0
        """Buckets fed since the last build."""
        self._engine: Analytics | None = None
        self._since = math.nan
        self._closed = math.nan
        self._last_id = 0
        self._lock = threading.Lock()

    def since(self, now: float) -> float:
        """The first instant replayed: the start of the week :data:`REPLAY_WEEKS` back."""
        return week_start(week_of(now) - REPLAY_WEEKS)

    def closed_until(self, now: float) -> float:
        """The end of the newest closed bucket (``grace`` past its end at ``now``)."""
        return math.floor((now - self.grace) / self.seconds) * self.seconds

    @contextmanager
    def analytics(self, now: float) -> Iterator[Analytics]:
        """The engine with everything closed by ``now`` fed, held for the ``with`` block."""
        with self._lock:
            yield self._fed(now)

    def _fed(self, now: float) -> Analytics:
        since = self.since(now)
        engine = self._engine
        if engine is None or since != self._since:
            engine = self._engine = Analytics(self.settings)
            self._since, self._closed, self._last_id = since, since, 0
            self.replays += 1
            self.fed_buckets = 0
        rows = self.milestones.read_rows(None, None, after_id=self._last_id)
        for row_id, activity in rows:
            self._last_id = max(self._last_id, row_id)
            if activity.developer_id:  # the analytics follows developers, as the monitor does
                engine.record_activity(activity)
        closed = self.closed_until(now)
        if closed > self._closed:
            fresh = self.buckets.read_buckets(self._closed, closed)
            for bucket in fresh:
                engine.record_usage(bucket)
            engine.advance(closed)
            self._closed = closed
            self.fed_buckets += len(fresh)
        return engine
