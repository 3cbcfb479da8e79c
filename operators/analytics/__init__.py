"""Product analytics over the operator's own records: timelines, funnels, cohorts, anomalies,
segments and revenue, computed by the same code on live traffic and on simulated months."""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.faces import lazy_face

if TYPE_CHECKING:
    from operators.analytics.alerts import (
        ALERT_KINDS,
        Alert,
        AlertKind,
        WebhookSender,
        signed_body,
        verify_signature,
    )
    from operators.analytics.cohorts import Cohort, CohortTable
    from operators.analytics.engine import Analytics, Score
    from operators.analytics.funnels import FunnelReport, FunnelStep, StepResult
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
    from operators.analytics.settings import AnalyticsSettings, DetectorSettings
    from operators.analytics.timeline import ApplicationInfo, DeveloperInfo, TimelineEntry

__all__ = [
    "ACTIVITY_KINDS",
    "ALERT_KINDS",
    "HOUR",
    "MAX_DISTINCT",
    "MAX_SOURCES",
    "Activity",
    "ActivityKind",
    "Alert",
    "AlertKind",
    "Analytics",
    "AnalyticsSettings",
    "ApplicationInfo",
    "Cohort",
    "CohortTable",
    "DetectorSettings",
    "DeveloperInfo",
    "DistinctCounter",
    "FunnelReport",
    "FunnelStep",
    "RevenueRow",
    "RevenueTable",
    "Score",
    "SegmentEntry",
    "Segments",
    "StepResult",
    "TimelineEntry",
    "UsageBucket",
    "WebhookSender",
    "revenue_table",
    "signed_body",
    "verify_signature",
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
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
