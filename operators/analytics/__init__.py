"""Product analytics over the operator's own records: timelines, funnels, cohorts, anomalies,
segments and revenue, computed by the same code on live traffic and on simulated months.

The face offers the engine and its records (both modes) and the live workings around it:
the usage recorder and activity log that write the records, the monitor that scores them,
the plans' monthly limits (:func:`monthly_limit`, which the simulation uses too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.faces import lazy_face

if TYPE_CHECKING:
    from operators.analytics.activity_log import FIRST_KINDS, ActivityLog, OwnerOf, once_key
    from operators.analytics.alerts import (
        ALERT_KINDS,
        Alert,
        AlertKind,
        WebhookSender,
        signed_body,
        verify_signature,
        webhook_key,
    )
    from operators.analytics.cohorts import Cohort, CohortTable
    from operators.analytics.engine import DAYS_KEPT, WEEKS_KEPT, Analytics, Score
    from operators.analytics.funnels import FunnelReport, FunnelStep, StepResult
    from operators.analytics.monitor import (
        AlertLog,
        AnalyticsMonitor,
        Replayed,
        analytics_settings,
        replay,
    )
    from operators.analytics.quotas import DAYS_PER_MONTH, HeldPlans, PlanLimits, monthly_limit
    from operators.analytics.records import (
        ACTIVITY_KINDS,
        HOUR,
        MAX_DISTINCT,
        MAX_SOURCES,
        Activity,
        ActivityKind,
        DistinctCounter,
        UsageBucket,
    )
    from operators.analytics.revenue import RevenueRow, RevenueTable, revenue_table
    from operators.analytics.segments import SegmentEntry, Segments
    from operators.analytics.settings import AnalyticsSettings, DetectorSettings, Thresholds
    from operators.analytics.timeline import ApplicationInfo, DeveloperInfo, TimelineEntry
    from operators.analytics.usage_recorder import UsageRecorder, source_of

__all__ = [
    "ACTIVITY_KINDS",
    "ALERT_KINDS",
    "DAYS_KEPT",
    "DAYS_PER_MONTH",
    "FIRST_KINDS",
    "HOUR",
    "MAX_DISTINCT",
    "MAX_SOURCES",
    "WEEKS_KEPT",
    "Activity",
    "ActivityKind",
    "ActivityLog",
    "Alert",
    "AlertKind",
    "AlertLog",
    "Analytics",
    "AnalyticsMonitor",
    "AnalyticsSettings",
    "ApplicationInfo",
    "Cohort",
    "CohortTable",
    "DetectorSettings",
    "DeveloperInfo",
    "DistinctCounter",
    "FunnelReport",
    "FunnelStep",
    "HeldPlans",
    "OwnerOf",
    "PlanLimits",
    "Replayed",
    "RevenueRow",
    "RevenueTable",
    "Score",
    "SegmentEntry",
    "Segments",
    "StepResult",
    "Thresholds",
    "TimelineEntry",
    "UsageBucket",
    "UsageRecorder",
    "WebhookSender",
    "analytics_settings",
    "monthly_limit",
    "once_key",
    "replay",
    "revenue_table",
    "signed_body",
    "source_of",
    "verify_signature",
    "webhook_key",
]

_HOMES = {
    "ACTIVITY_KINDS": "operators.analytics.records",
    "HOUR": "operators.analytics.records",
    "MAX_DISTINCT": "operators.analytics.records",
    "MAX_SOURCES": "operators.analytics.records",
    "Activity": "operators.analytics.records",
    "ActivityKind": "operators.analytics.records",
    "DistinctCounter": "operators.analytics.records",
    "UsageBucket": "operators.analytics.records",
    "AnalyticsSettings": "operators.analytics.settings",
    "DetectorSettings": "operators.analytics.settings",
    "ALERT_KINDS": "operators.analytics.alerts",
    "Alert": "operators.analytics.alerts",
    "AlertKind": "operators.analytics.alerts",
    "WebhookSender": "operators.analytics.alerts",
    "signed_body": "operators.analytics.alerts",
    "verify_signature": "operators.analytics.alerts",
    "Analytics": "operators.analytics.engine",
    "Score": "operators.analytics.engine",
    "ApplicationInfo": "operators.analytics.timeline",
    "DeveloperInfo": "operators.analytics.timeline",
    "TimelineEntry": "operators.analytics.timeline",
    "FunnelReport": "operators.analytics.funnels",
    "FunnelStep": "operators.analytics.funnels",
    "StepResult": "operators.analytics.funnels",
    "Cohort": "operators.analytics.cohorts",
    "CohortTable": "operators.analytics.cohorts",
    "SegmentEntry": "operators.analytics.segments",
    "Segments": "operators.analytics.segments",
    "RevenueRow": "operators.analytics.revenue",
    "RevenueTable": "operators.analytics.revenue",
    "revenue_table": "operators.analytics.revenue",
    "FIRST_KINDS": "operators.analytics.activity_log",
    "ActivityLog": "operators.analytics.activity_log",
    "OwnerOf": "operators.analytics.activity_log",
    "once_key": "operators.analytics.activity_log",
    "webhook_key": "operators.analytics.alerts",
    "DAYS_KEPT": "operators.analytics.engine",
    "WEEKS_KEPT": "operators.analytics.engine",
    "AlertLog": "operators.analytics.monitor",
    "AnalyticsMonitor": "operators.analytics.monitor",
    "Replayed": "operators.analytics.monitor",
    "analytics_settings": "operators.analytics.monitor",
    "replay": "operators.analytics.monitor",
    "DAYS_PER_MONTH": "operators.analytics.quotas",
    "HeldPlans": "operators.analytics.quotas",
    "PlanLimits": "operators.analytics.quotas",
    "monthly_limit": "operators.analytics.quotas",
    "Thresholds": "operators.analytics.settings",
    "UsageRecorder": "operators.analytics.usage_recorder",
    "source_of": "operators.analytics.usage_recorder",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
