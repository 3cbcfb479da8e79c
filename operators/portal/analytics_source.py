"""What the analytics reports read: the serving party's records and the names behind ids.

Every report is computed from what the operator keeps in its database, so any replica serving
the page answers the same: the developers' milestones (:class:`~operators.analytics.
activity_log.ActivityLog`), the usage buckets (:class:`~operators.analytics.usage_recorder.
UsageRecorder`), the monitor's alerts table (:class:`~operators.analytics.monitor.AlertLog`),
the metering's usage events and the plan history (for revenue), and the portal's accounts
(who a developer, an organisation or an application is). The engine behind funnels, cohorts
and segments is :class:`~operators.portal.analytics_replay.ReplayCache`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..analytics.activity_log import ActivityLog
from ..analytics.engine import Analytics
from ..analytics.monitor import AlertLog, analytics_settings
from ..analytics.settings import DAY, AnalyticsSettings
from ..analytics.usage_recorder import UsageRecorder
from .analytics_parameters import date_text
from .analytics_replay import ReplayCache

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .host import PortalHost

__all__ = ["AnalyticsSource", "Names"]


@dataclass
class AnalyticsSource:
    """The serving party's parts and its analytics records."""

    host: PortalHost
    accounts: DeveloperAccounts
    activity: ActivityLog
    usage: UsageRecorder
    alert_log: AlertLog
    settings: AnalyticsSettings
    replay: ReplayCache

    @classmethod
    def of(cls, host: PortalHost, accounts: DeveloperAccounts) -> AnalyticsSource | None:
        """The party's analytics records; None for a party that keeps none (the aggregator:
        its calls are the operators')."""
        if host.activity is None or host.usage is None:
            return None
        config = host.config.analytics
        usage = UsageRecorder(host.db, host.clock, bucket_seconds=config.bucket_seconds)
        settings = analytics_settings(config)
        replay = ReplayCache(settings, host.activity, usage, grace=config.grace_seconds)
        return cls(host, accounts, host.activity, usage, AlertLog(host.db), settings, replay)

    @property
    def seconds(self) -> float:
        return self.usage.seconds

    def now(self) -> float:
        return self.host.clock()

    def since(self, now: float) -> float:
        """The first instant the engine saw (older cohorts and calls are not in it)."""
        return self.replay.since(now)

    def current_end(self, now: float) -> float:
        """The end of the bucket under way: what the buckets table holds is read up to it."""
        return (math.floor(now / self.seconds) + 1) * self.seconds

    @contextmanager
    def analytics(self, now: float) -> Iterator[Analytics]:
        """The replayed engine, lent for the ``with`` block."""
        with self.replay.analytics(now) as analytics:
            yield analytics

    # -- names -----------------------------------------------------------------------------

    def developer(self, developer_id: str) -> dict[str, Any]:
        found = self.accounts.developer(developer_id) if developer_id else None
        return {
            "developerId": developer_id,
            "email": found.email if found else None,
            "name": found.name if found else None,
        }

    def organisation_name(self, org_id: str) -> str | None:
        found = self.accounts.organisation(org_id) if org_id else None
        return found.name if found else None

    def application_name(self, client_id: str) -> str | None:
        found = self.accounts.application(client_id) if client_id else None
        return found.name if found else None

    def known_client(self, client_id: str) -> bool:
        if self.accounts.application(client_id) is not None:
            return True
        if self.host.identity.clients.get(client_id) is not None:
            return True
        row = self.host.db.one(
            "SELECT 1 AS found FROM analytics_alerts WHERE client_id = ? LIMIT 1", (client_id,)
        )
        return row is not None

    # -- calls from the buckets table ------------------------------------------------------

    def daily(
        self, first_day: float, until: float, client_ids: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """Calls per UTC day from the usage buckets (the current bucket's written part too)."""
        where = "seconds = ? AND start >= ? AND start < ?"
        params: list[object] = [self.seconds, first_day, until]
        if client_ids is not None:
            if not client_ids:
                client_ids = [""]
            where += f" AND client_id IN ({','.join('?' for _ in client_ids)})"
            params.extend(client_ids)
        rows = self.host.db.all(
            "SELECT CAST(start / 86400 AS INTEGER) AS day, SUM(calls) AS calls,"
            " SUM(successes) AS successes, SUM(errors) AS errors, SUM(throttled) AS throttled,"
            " COUNT(DISTINCT client_id) AS applications"
            f" FROM analytics_usage_buckets WHERE {where} GROUP BY day",
            params,
        )
        by_day = {int(row["day"]): row for row in rows}
        days: list[dict[str, Any]] = []
        for day in range(math.floor(first_day / DAY), math.floor((until - 1) / DAY) + 1):
            row = by_day.get(day)
            days.append(
                {
                    "date": date_text(day * DAY),
                    "calls": int(row["calls"]) if row else 0,
                    "successes": int(row["successes"]) if row else 0,
                    "errors": int(row["errors"]) if row else 0,
                    "throttled": int(row["throttled"]) if row else 0,
                    "activeApplications": int(row["applications"]) if row else 0,
                }
            )
        return days

    def last_calls_before(self, before: float) -> dict[str, float]:
        """Each application's last call before ``before`` (the end of its newest bucket)."""
        rows = self.host.db.all(
            "SELECT client_id, MAX(start) AS last FROM analytics_usage_buckets"
            " WHERE seconds = ? AND start < ? AND calls > 0 GROUP BY client_id",
            (self.seconds, before),
        )
        return {str(r["client_id"]): float(r["last"]) + self.seconds for r in rows}


class Names:
    """Per-report memo of the lookups a table repeats for every row."""

    def __init__(self, source: AnalyticsSource) -> None:
        self.source = source
        self._developers: dict[str, dict[str, Any]] = {}
        self._orgs: dict[str, str | None] = {}
        self._apps: dict[str, str | None] = {}

    def developer(self, developer_id: str) -> dict[str, Any]:
        if developer_id not in self._developers:
            self._developers[developer_id] = self.source.developer(developer_id)
        return self._developers[developer_id]

    def organisation(self, org_id: str) -> str | None:
        if org_id not in self._orgs:
            self._orgs[org_id] = self.source.organisation_name(org_id)
        return self._orgs[org_id]

    def application(self, client_id: str) -> str | None:
        if client_id not in self._apps:
            self._apps[client_id] = self.source.application_name(client_id)
        return self._apps[client_id]

    def who(self, developer_id: str, org_id: str) -> dict[str, Any]:
        developer = self.developer(developer_id)
        return {
            "developerId": developer_id,
            "email": developer["email"],
            "orgId": org_id,
            "organisation": self.organisation(org_id),
        }
