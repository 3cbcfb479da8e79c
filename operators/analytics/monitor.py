"""The live analytics: the operator's own records scored as they close, alerts kept and sent.

:class:`AnalyticsMonitor` runs in the operator process beside the gateway. At start it
replays recent history from the database into an :class:`~operators.analytics.engine.Analytics`
(every developer milestone, and enough usage buckets for the detectors' baselines); then at
every bucket boundary, once ``grace`` seconds have let every replica write its part of the
bucket that just ended, it feeds the newly closed buckets and the milestones written since,
and advances the analytics to now. The alerts that raises are added to the alerts table (the
admin pages read it) and, when a webhook is configured, posted to it with a signed body.
A tick that fails before its buckets are fed (a plan read) leaves them to the next tick; an
alert whose insert fails (a database locked past its timeout) waits in memory for the next
tick, and is sent once kept, so neither a bucket nor an alert is lost to a passing error.

Replicas sharing one database may each run a monitor: the alerts table keeps an alert once
(UNIQUE on kind, application, API and bucket), and only the monitor whose insert added it
posts it, so the webhook hears of each alert once. A part of a bucket written after the bucket
was scored (a replica stalled longer than ``grace``) is not scored live; it is there for the
next replay and for the pages.

:func:`replay` feeds any Analytics from the database (the CLI and the admin pages use it
for a period of their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from operators.config import AnalyticsConfig, replayed_buckets
from operators.storage import Database
from operators.types import Clock

from .activity_log import ActivityLog
from .alerts import Alert, WebhookSender
from .engine import Analytics
from .quotas import HeldPlans, PlanLimits
from .records import Activity, UsageBucket
from .settings import AnalyticsSettings, DetectorSettings
from .usage_recorder import UsageRecorder

__all__ = [
    "AlertLog",
    "AnalyticsMonitor",
    "Replayed",
    "analytics_settings",
    "replay",
]

log = logging.getLogger("ogsim.analytics")

Sleep = Callable[[float], Awaitable[None]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    developer_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    bucket_start REAL NOT NULL,
    raised_at REAL NOT NULL,
    score REAL NOT NULL,
    observed REAL NOT NULL,
    baseline REAL NOT NULL,
    detail TEXT NOT NULL,
    UNIQUE (kind, client_id, api, bucket_start)
);
CREATE INDEX IF NOT EXISTS analytics_alerts_raised ON analytics_alerts (raised_at);
CREATE INDEX IF NOT EXISTS analytics_alerts_client ON analytics_alerts (client_id);
"""
_ALERT_COLUMNS = (
    "kind, client_id, api, developer_id, org_id, bucket_start, raised_at, score, observed,"
    " baseline, detail"
)


def analytics_settings(config: AnalyticsConfig) -> AnalyticsSettings:
    """The engine's settings from the operator config's ``analytics`` section."""
    return config.settings()


class AlertLog:
    """The alerts raised, one row each, for the admin pages (and the webhook's dedup)."""

    def __init__(self, db: Database) -> None:
        db.ensure_schema(SCHEMA)
        self.db = db

    def add(self, alert: Alert) -> bool:
        """Keep ``alert``; False when this alert (kind, application, API, bucket) was already
        kept, by this process or another sharing the database."""
        changed = self.db.execute(
            f"INSERT OR IGNORE INTO analytics_alerts ({_ALERT_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.kind,
                alert.client_id,
                alert.api,
                alert.developer_id,
                alert.org_id,
                alert.bucket_start,
                alert.raised_at,
                alert.score,
                alert.observed,
                alert.baseline,
                alert.detail,
            ),
        )
        return changed == 1

    def read(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        client_id: str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """Alerts raised at ``since <= raised_at < until`` (bounds open when None), newest
        first, optionally of one application and at most ``limit`` of them."""
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if since is not None:
            where.append("raised_at >= ?")
            params.append(since)
        if until is not None:
            where.append("raised_at < ?")
            params.append(until)
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.db.all(
            f"SELECT {_ALERT_COLUMNS} FROM analytics_alerts WHERE {' AND '.join(where)}"
            f" ORDER BY raised_at DESC, id DESC{tail}",
            params,
        )
        return [_alert(row) for row in rows]


def _alert(row: Any) -> Alert:
    return Alert(
        kind=row["kind"],
        client_id=row["client_id"],
        api=row["api"],
        developer_id=row["developer_id"],
        org_id=row["org_id"],
        bucket_start=float(row["bucket_start"]),
        raised_at=float(row["raised_at"]),
        score=float(row["score"]),
        observed=float(row["observed"]),
        baseline=float(row["baseline"]),
        detail=row["detail"],
    )


@dataclass(frozen=True)
class Replayed:
    """What :func:`replay` fed: counts, and the last activity row (to follow the log on)."""

    activities: int
    buckets: int
    last_activity_id: int


def _developers_only(rows: Iterable[tuple[int, Activity]]) -> tuple[list[Activity], int]:
    """The milestones the analytics follows (a developer's), and the last row id seen."""
    last = 0
    kept = []
    for row_id, activity in rows:
        last = row_id
        if activity.developer_id:
            kept.append(activity)
    return kept, last


def replay(
    analytics: Analytics,
    activities: ActivityLog,
    usage: UsageRecorder,
    *,
    since: float | None = None,
    until: float | None = None,
) -> Replayed:
    """Feed ``analytics`` every developer milestone written before ``until`` and the usage
    buckets starting in ``[since, until)``; the caller then advances it (to ``until``).

    Milestones of clients no developer owns (registered over the admin API) stay in the log
    but are not fed: the analytics follows developers."""
    kept, last = _developers_only(activities.read_rows(None, until))
    for activity in kept:
        analytics.record_activity(activity)
    buckets = usage.read_buckets(since, until)
    for bucket in buckets:
        analytics.record_usage(bucket)
    return Replayed(len(kept), len(buckets), last)


class AnalyticsMonitor:
    """Scores the closed buckets live; see the module's docstring.

    ``clock`` is the operator's epoch clock, ``sleep`` how the loop waits (both injectable so
    a test drives it in virtual time). ``webhook`` delivers alerts when set. ``plans`` is the
    operator's plan store: the analytics learns each application's monthly limit per API from
    it (:mod:`operators.analytics.quotas`) before each feed, which quota farming and the
    upsell segment need; without it neither has a limit to compare with.
    """

    def __init__(
        self,
        db: Database,
        activities: ActivityLog,
        usage: UsageRecorder,
        *,
        settings: AnalyticsSettings | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        grace: float = 5.0,
        history_buckets: int | None = None,
        webhook: WebhookSender | None = None,
        plans: HeldPlans | None = None,
    ) -> None:
        self.settings = settings or AnalyticsSettings(
            detectors=DetectorSettings(bucket_seconds=usage.seconds)
        )
        if self.settings.detectors.bucket_seconds != usage.seconds:
            raise ValueError("the detectors' bucket_seconds must be the recorder's")
        if not 0 <= grace < usage.seconds:
            raise ValueError(f"grace ({grace}) must be in [0, bucket_seconds)")
        self.db = db
        self.activities = activities
        self.usage = usage
        self.alert_log = AlertLog(db)
        self.clock = clock
        self.sleep = sleep
        self.grace = grace
        self.seconds = usage.seconds
        detectors = self.settings.detectors
        self.history_buckets = history_buckets or replayed_buckets(
            detectors.season_buckets, detectors.recent_buckets, detectors.min_history
        )
        self.webhook = webhook
        self.limits = PlanLimits(plans) if plans is not None else None
        self.analytics = Analytics(self.settings)
        """The live engine: funnels, cohorts and segments of what it has been fed so far
        (changed in a worker thread during a tick: read it between ticks)."""
        self.cursor: float | None = None
        """Buckets starting before this have been fed (None before :meth:`catch_up`)."""
        self.last_activity_id = 0
        self.raised: list[Alert] = []
        """Alerts this monitor added to the table (and sent), oldest first."""
        self.unkept: list[Alert] = []
        """Alerts raised by the analytics but not in the table yet (an insert failed): the
        next tick (or :meth:`stop`) tries again; sent once added."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ticking = False

    @classmethod
    def from_config(
        cls,
        config: AnalyticsConfig,
        db: Database,
        activities: ActivityLog,
        usage: UsageRecorder,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        plans: HeldPlans | None = None,
    ) -> AnalyticsMonitor:
        """The monitor an operator's ``analytics`` section describes, reading quotas from
        ``plans``."""
        webhook = None
        if config.webhook_url is not None and config.webhook_secret is not None:
            webhook = WebhookSender(config.webhook_url, config.webhook_secret.encode(), clock=clock)
        return cls(
            db,
            activities,
            usage,
            settings=analytics_settings(config),
            clock=clock,
            sleep=sleep,
            grace=config.grace_seconds,
            history_buckets=config.history_buckets,
            webhook=webhook,
            plans=plans,
        )

    # -- feeding --------------------------------------------------------------------------

    def _boundary(self, at: float) -> float:
        return math.floor(at / self.seconds) * self.seconds

    async def catch_up(self) -> list[Alert]:
        """Replay recent history (the buckets that ended ``grace`` ago or earlier, every
        milestone) and score it; the alerts it raised that no one had kept yet.

        A bucket that ended less than ``grace`` ago is left to the next tick, as a tick would:
        the replicas may not have written their parts of it yet."""
        upto = self._boundary(self.clock() - self.grace)
        since = upto - self.history_buckets * self.seconds
        activities = await asyncio.to_thread(self.activities.read_rows, None, None)
        buckets = await asyncio.to_thread(self.usage.read_buckets, since, upto)
        return await self._feed(activities, buckets, upto, upto)

    async def tick(self) -> list[Alert]:
        """Feed the buckets that closed (``grace`` ago) since the last tick and the
        milestones written since, advance, keep and send the alerts; the new ones.

        The cursor moves only once the buckets are fed: a tick that fails before (a plan
        read, a database error) leaves them to the next. Alerts raised but not yet kept (an
        insert that failed) are kept, and sent, by the next tick."""
        if self.cursor is None:
            return await self.catch_up()
        now = self.clock()
        upto = self._boundary(now - self.grace)
        if upto <= self.cursor:
            return await self._keep_unkept()
        rows = await asyncio.to_thread(
            self.activities.read_rows, None, None, after_id=self.last_activity_id
        )
        buckets = await asyncio.to_thread(self.usage.read_buckets, self.cursor, upto)
        # a late tick must not close the bucket after ``upto``: it has not been fed
        return await self._feed(rows, buckets, now if now < upto + self.seconds else upto, upto)

    async def _feed(
        self, rows: list[tuple[int, Activity]], buckets: list[UsageBucket], at: float, upto: float
    ) -> list[Alert]:
        """Score ``buckets`` (those starting before ``upto``) and ``rows``, advance to ``at``;
        then keep and send the alerts raised (and any left unkept before)."""
        kept, last = _developers_only(rows)
        # scoring is CPU work (the replay at start is seconds of it with a few hundred keys)
        # and learning limits and keeping alerts use the database: all in a worker thread,
        # so the gateway sharing this event loop keeps answering meanwhile
        raised = await asyncio.to_thread(self._score, kept, buckets, at)
        # fed: from here on these buckets and milestones must never be fed again
        self.cursor = upto
        self.last_activity_id = max(self.last_activity_id, last)
        self.unkept.extend(raised)
        return await self._keep_unkept()

    async def _keep_unkept(self) -> list[Alert]:
        """Keep the alerts not kept yet, oldest first, and send those this monitor added."""
        if not self.unkept:
            return []
        fresh = await asyncio.to_thread(self._keep)
        for alert in fresh:
            log.warning(
                "analytics alert %s: %s %s (score %.1f)",
                alert.kind,
                alert.client_id,
                alert.api,
                alert.score,
            )
            if self.webhook is not None:
                self.webhook.submit(alert)
        self.raised.extend(fresh)
        return fresh

    def _score(
        self, activities: list[Activity], buckets: list[UsageBucket], at: float
    ) -> list[Alert]:
        """Feed, advance to ``at``: the alerts raised. Nothing is fed when learning the
        limits fails (the only database read here), so the tick can be tried again."""
        self._learn_limits(buckets)
        for activity in activities:
            self.analytics.record_activity(activity)
        for bucket in buckets:
            self.analytics.record_usage(bucket)
        return self.analytics.advance(at)

    def _learn_limits(self, buckets: list[UsageBucket]) -> None:
        """Tell the analytics the monthly limit of every application and API about to be fed
        for the first time, and of those whose plan changed."""
        if self.limits is None:
            return
        pairs = {(bucket.client_id, bucket.api) for bucket in buckets}
        try:
            changes = self.limits.changes(pairs)
        except Exception:
            # a read that failed half-way may have noted limits it never reported: start
            # afresh, so every pair is asked about again when it is next fed
            self.limits = PlanLimits(self.limits.plans)
            raise
        for (client_id, api), limit in changes.items():
            self.analytics.set_quota(client_id, api, limit)

    def _keep(self) -> list[Alert]:
        """Add the unkept alerts to the table, oldest first, until one fails (the rest wait
        for the next tick); those this monitor added (not already kept by another)."""
        added: list[Alert] = []
        try:
            while self.unkept:
                if self.alert_log.add(self.unkept[0]):
                    added.append(self.unkept[0])
                del self.unkept[0]
        except Exception:
            log.exception(
                "%d analytics alerts not kept yet; trying at the next tick", len(self.unkept)
            )
        return added

    # -- running --------------------------------------------------------------------------

    def next_tick(self, now: float) -> float:
        """The next time a bucket may be scored after ``now``: a boundary plus ``grace``."""
        due = self._boundary(now) + self.grace
        return due if due > now else due + self.seconds

    async def start(self) -> None:
        """Catch up, then tick at every bucket boundary (plus grace) until :meth:`stop`."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        if self.webhook is not None:
            await self.webhook.start()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            self._ticking = True
            try:
                await self.tick()
            except Exception:
                log.exception("the analytics monitor's tick failed; trying at the next one")
            finally:
                self._ticking = False
            if self._stopping:
                return
            now = self.clock()
            await self.sleep(max(0.0, self.next_tick(now) - now))

    async def stop(self) -> None:
        """Stop ticking (a tick under way finishes), then let the webhook deliver what is
        queued (bounded by its drain timeout)."""
        task, self._task = self._task, None
        self._stopping = True
        if task is not None:
            if not self._ticking:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._keep_unkept()  # a last try for alerts a failed insert left behind
        if self.webhook is not None:
            await self.webhook.stop()
