"""Housekeeping: rows that no rule will read again are purged on a schedule.

An operator that runs for weeks issues tokens, codes and CIBA requests, sees client
assertions and stores the answer of every billed call for replays; each of these has a life,
and past it (plus a margin that keeps the answers a late client gets right) the row is dead
weight. :class:`Housekeeping` decides, from its clock alone, what is past its life
(:meth:`Housekeeping.cutoffs`, pure), deletes it in short batches (:meth:`Housekeeping.purge`),
and runs itself periodically in the live operator (:meth:`Housekeeping.start`). Usage events
are billing records and stay; only the stored answer body of a call past its replay window
goes, after which the idempotency key no longer replays (the event still makes a reuse unbilled).

The analytics' usage buckets and alerts go once older than its history window
(``analytics.retention_days``: the admin pages replay 13 weeks, the monitor at most that).
Before that, a bucket's subscriber keys (up to 4096 hashes, the bulk of its row) are dropped
once no replica's part can still be merged into it (its end, the grace and a margin): only
the count is read after that, and it stays. Developers' milestones stay: there are a few per
developer, not per call, and an application's creation is what ties its alerts to its owner.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from operators.background import cancel_and_wait

from .config import AnalyticsConfig, TokenLifetimes
from .portal.login_throttle import WINDOW as LOGIN_FAILURE_WINDOW
from .storage import Database
from .types import Clock, Seconds

log = logging.getLogger(__name__)

REPLAY_WINDOW: Seconds = 24 * 3600.0
"""How long a billed call's answer is kept for a client reusing its idempotency key: a day, as
payment APIs keep idempotency keys (a retry storm or a restarted batch comes within hours)."""

ACCESS_LOG_RETENTION: Seconds = 90 * 86400.0
"""How long an unbilled call stays in its subscriber's access log (billed ones are usage events
and stay): long enough for a subscriber to look, short enough that refusals do not pile up."""

ANALYTICS_HISTORY: Seconds = 98 * 86400.0
"""How long usage buckets and alerts are kept: the admin pages' 13 weeks and a week more."""

KEYS_MARGIN: Seconds = 3600.0
"""Kept past a usage bucket's end and grace before its subscriber keys are dropped: a replica
stalled this long still merges its part exactly."""

BATCH = 5000
"""Rows deleted per statement, so one purge never holds the database for long."""
ANALYTICS_BATCH = 200
"""Usage buckets per statement: a row may be tens of kilobytes of subscriber keys."""


@dataclass(frozen=True)
class Retention:
    """Seconds each kind of row is kept past its own expiry (``at`` for stored answers)."""

    access_token: Seconds
    """Past ``exp``: the verification skew; a token this old cannot verify any more."""
    authorization_code: Seconds
    """Past expiry: the longest life of a token issued from the code, so a replayed code
    still finds the code and revokes those tokens."""
    ciba_request: Seconds
    """Past expiry: as long as the request lived, so a late poll still reads
    ``expired_token`` rather than an unknown ``auth_req_id``."""
    seen_jti: Seconds = 0.0
    """Past the stored expiry, which already holds the replay guard's own margin."""
    operator_token: Seconds = 0.0
    """Past a TS.43 operator token's expiry: it resolves nobody any more."""
    idempotent_answer: Seconds = REPLAY_WINDOW
    """After the call: the replay window of a billed call's stored answer."""
    portal_code: Seconds = 600.0
    """Past a portal sign-in code's expiry: its number's send throttle window is over."""
    portal_link: Seconds = 0.0
    """Past a portal invitation's or set-a-password link's expiry: it lets nobody in."""
    login_failure: Seconds = LOGIN_FAILURE_WINDOW
    """After a failed developer sign-in: the throttle's window. Its row holds a hash of what
    a stranger typed as an email (sometimes a password), kept no longer than it counts."""
    unbilled_call: Seconds = ACCESS_LOG_RETENTION
    """After the call: how long the access log shows an unbilled call."""
    analytics_history: Seconds = ANALYTICS_HISTORY
    """After a usage bucket's start or an alert's raising: the analytics' history."""
    analytics_keys: Seconds = 3600.0 + 5.0 + KEYS_MARGIN
    """After a usage bucket's start: its subscriber keys are dropped (its count stays) past
    its length, the monitor's grace and :data:`KEYS_MARGIN`."""

    @classmethod
    def for_lifetimes(
        cls, lifetimes: TokenLifetimes, analytics: AnalyticsConfig | None = None
    ) -> Retention:
        """The retention the operator's token lifetimes and ``analytics`` section imply."""
        analytics = analytics or AnalyticsConfig()
        return cls(
            access_token=float(lifetimes.clock_skew),
            authorization_code=float(lifetimes.access_token + lifetimes.clock_skew),
            ciba_request=float(lifetimes.ciba_request),
            analytics_history=analytics.retention_days * 86400.0,
            analytics_keys=analytics.bucket_seconds + analytics.grace_seconds + KEYS_MARGIN,
        )


_PURGES = {
    # name: (what the cutoff compares, the statement; ``?`` is the cutoff, then the batch);
    # the name is the table's unless :data:`_TABLES` says otherwise
    "identity_access_tokens": (
        "access_token",
        "DELETE FROM identity_access_tokens WHERE rowid IN (SELECT rowid FROM"
        " identity_access_tokens WHERE expires_at < ? LIMIT ?)",
    ),
    "identity_authorization_codes": (
        "authorization_code",
        "DELETE FROM identity_authorization_codes WHERE rowid IN (SELECT rowid FROM"
        " identity_authorization_codes WHERE expires_at < ? LIMIT ?)",
    ),
    "identity_ciba_requests": (
        "ciba_request",
        "DELETE FROM identity_ciba_requests WHERE rowid IN (SELECT rowid FROM"
        " identity_ciba_requests WHERE expires_at < ? LIMIT ?)",
    ),
    "identity_seen_jti": (
        "seen_jti",
        "DELETE FROM identity_seen_jti WHERE rowid IN (SELECT rowid FROM"
        " identity_seen_jti WHERE expires_at < ? LIMIT ?)",
    ),
    "identity_operator_tokens": (
        "operator_token",
        "DELETE FROM identity_operator_tokens WHERE rowid IN (SELECT rowid FROM"
        " identity_operator_tokens WHERE expires_at < ? LIMIT ?)",
    ),
    "usage_events": (
        "idempotent_answer",
        "UPDATE usage_events SET response = NULL WHERE rowid IN (SELECT rowid FROM"
        " usage_events WHERE response IS NOT NULL AND at < ? LIMIT ?)",
    ),
    "aggregator_qod_sessions": (  # the hub's: a deleted session's tombstone (federation)
        "idempotent_answer",
        "DELETE FROM aggregator_qod_sessions WHERE rowid IN (SELECT rowid FROM"
        " aggregator_qod_sessions WHERE deleted_at < ? LIMIT ?)",
    ),
    "portal_codes": (
        "portal_code",
        "DELETE FROM portal_codes WHERE rowid IN (SELECT rowid FROM"
        " portal_codes WHERE expires_at < ? LIMIT ?)",
    ),
    "portal_invitations": (
        "portal_link",
        "DELETE FROM portal_invitations WHERE rowid IN (SELECT rowid FROM"
        " portal_invitations WHERE expires_at < ? LIMIT ?)",
    ),
    "portal_password_links": (
        "portal_link",
        "DELETE FROM portal_password_links WHERE rowid IN (SELECT rowid FROM"
        " portal_password_links WHERE expires_at < ? LIMIT ?)",
    ),
    "portal_login_failures": (
        "login_failure",
        "DELETE FROM portal_login_failures WHERE rowid IN (SELECT rowid FROM"
        " portal_login_failures WHERE at <= ? LIMIT ?)",
    ),
    "unbilled_calls": (
        "unbilled_call",
        "DELETE FROM unbilled_calls WHERE rowid IN (SELECT rowid FROM"
        " unbilled_calls WHERE at < ? LIMIT ?)",
    ),
    "analytics_usage_buckets": (
        "analytics_history",
        "DELETE FROM analytics_usage_buckets WHERE rowid IN (SELECT rowid FROM"
        " analytics_usage_buckets WHERE start < ? LIMIT ?)",
    ),
    "analytics_subscriber_keys": (
        "analytics_keys",
        # the condition on subscriber_keys is the partial index's: only rows still keyed
        "UPDATE analytics_usage_buckets SET subscriber_keys = '[]' WHERE rowid IN (SELECT"
        " rowid FROM analytics_usage_buckets WHERE subscriber_keys != '[]' AND start < ?"
        " LIMIT ?)",
    ),
    "analytics_alerts": (
        "analytics_history",
        "DELETE FROM analytics_alerts WHERE rowid IN (SELECT rowid FROM"
        " analytics_alerts WHERE raised_at < ? LIMIT ?)",
    ),
}
_TABLES = {"analytics_subscriber_keys": "analytics_usage_buckets"}
"""Purges named otherwise than the table they change."""
_BATCHES = {
    "analytics_usage_buckets": ANALYTICS_BATCH,
    "analytics_subscriber_keys": ANALYTICS_BATCH,
}
"""Purges of fewer rows per statement than :data:`BATCH`."""


class Housekeeping:
    """Purges one database's expired rows; ``clock`` is the epoch clock the rows were written
    with (a fake one in tests), ``interval`` the wall seconds between two live purges."""

    def __init__(
        self,
        db: Database,
        retention: Retention,
        *,
        clock: Clock,
        interval: Seconds = 60.0,
    ) -> None:
        self.db = db
        self.retention = retention
        self.clock = clock
        self.interval = interval
        self.purged: dict[str, int] = dict.fromkeys(_PURGES, 0)
        """Rows purged (or answers dropped) per table since start: for logs and tests."""
        self._task: asyncio.Task[None] | None = None

    def cutoffs(self, now: float) -> dict[str, float]:
        """Per purge (a table's name, or ``analytics_subscriber_keys``), the expiry (or time)
        before which a row is dead at ``now``."""
        return {
            table: now - float(getattr(self.retention, kind))
            for table, (kind, _) in _PURGES.items()
        }

    def purge(self) -> dict[str, int]:
        """Delete what is past its life now; the number of rows per purge."""
        present = {
            row["name"]
            for row in self.db.all("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        counts: dict[str, int] = {}
        for name, cutoff in self.cutoffs(self.clock()).items():
            if _TABLES.get(name, name) not in present:
                continue
            statement, batch = _PURGES[name][1], _BATCHES.get(name, BATCH)
            total = 0
            while True:
                changed = self.db.execute(statement, (cutoff, batch))
                total += changed
                if changed < batch:
                    break
            counts[name] = total
            self.purged[name] += total
        if any(counts.values()):
            log.info("%s: purged %s", self.db.path, counts)
        return counts

    # -- live: a background task of the operator's lifespan ----------------------------------

    def start(self) -> None:
        """Purge now and then every ``interval`` seconds, in the running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                # in a worker thread, in short batches: between two statements the event loop
                # gets the database (a batch of usage buckets is megabytes of keys)
                await asyncio.to_thread(self.purge)
            except Exception:  # a failed purge is retried next time, never fatal
                log.exception("%s: housekeeping failed", self.db.path)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
