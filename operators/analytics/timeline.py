"""Who is who and what happened when: developers, their applications and milestones.

Learnt from :class:`~operators.analytics.records.Activity` alone (``application_created``
ties an application to its developer and organisation). Bounded: a developer keeps their
first time of each (kind, API) and at most :data:`MAX_ENTRIES` timeline entries (plan changes
are the only milestone that repeats).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .records import Activity

__all__ = [
    "MAX_ENTRIES",
    "ApplicationInfo",
    "DailyCounts",
    "DeveloperInfo",
    "Milestones",
    "TimelineEntry",
    "step_key",
]

MAX_ENTRIES = 200
"""Milestones kept per developer (the oldest go first)."""


def step_key(kind: str, api: str = "") -> str:
    """``"first_success"`` (any API) or ``"first_success:sim-swap"``."""
    return f"{kind}:{api}" if api else kind


@dataclass(frozen=True)
class TimelineEntry:
    """A milestone (``kind`` an activity kind), or a day's ``errors`` or ``throttled`` count
    for one application (``at`` the day's start, ``count`` the calls)."""

    at: float
    kind: str
    client_id: str = ""
    api: str = ""
    detail: str = ""
    count: int = 0


@dataclass(frozen=True)
class DailyCounts:
    day_start: float
    errors: int
    throttled: int


@dataclass(frozen=True)
class ApplicationInfo:
    client_id: str
    developer_id: str
    org_id: str
    created_at: float | None
    apis: tuple[str, ...]


@dataclass(frozen=True)
class DeveloperInfo:
    developer_id: str
    org_id: str
    signed_up_at: float | None
    applications: tuple[str, ...]
    firsts: Mapping[str, float]
    """Earliest time of each milestone, by :func:`step_key` (with and without the API)."""


@dataclass(slots=True)
class _Developer:
    org_id: str
    signed_up_at: float | None = None
    applications: list[str] = field(default_factory=list)
    firsts: dict[str, float] = field(default_factory=dict)
    entries: deque[TimelineEntry] = field(default_factory=lambda: deque(maxlen=MAX_ENTRIES))


@dataclass(slots=True)
class _Application:
    developer_id: str
    org_id: str
    created_at: float | None = None
    apis: list[str] = field(default_factory=list)


class Milestones:
    """The directory of developers and applications, fed activities in any order."""

    def __init__(self) -> None:
        self._developers: dict[str, _Developer] = {}
        self._applications: dict[str, _Application] = {}

    def record(self, activity: Activity) -> None:
        developer = self._developers.get(activity.developer_id)
        if developer is None:
            developer = self._developers[activity.developer_id] = _Developer(activity.org_id)
        if activity.kind == "signed_up":
            developer.signed_up_at = _earliest(developer.signed_up_at, activity.at)
        if activity.client_id:
            application = self._application(activity.client_id, activity, developer)
            if activity.kind == "application_created":
                application.created_at = _earliest(application.created_at, activity.at)
        for key in {step_key(activity.kind), step_key(activity.kind, activity.api)}:
            developer.firsts[key] = min(developer.firsts.get(key, activity.at), activity.at)
        developer.entries.append(
            TimelineEntry(
                activity.at, activity.kind, activity.client_id, activity.api, activity.detail
            )
        )

    def _application(
        self, client_id: str, activity: Activity, developer: _Developer
    ) -> _Application:
        application = self._applications.get(client_id)
        if application is None:
            application = self._applications[client_id] = _Application(
                activity.developer_id, activity.org_id
            )
        elif activity.kind == "application_created" and (
            application.developer_id != activity.developer_id
        ):
            self._disown(client_id, application.developer_id)
            application.developer_id, application.org_id = activity.developer_id, activity.org_id
        if client_id not in developer.applications:
            developer.applications.append(client_id)
        return application

    def _disown(self, client_id: str, developer_id: str) -> None:
        previous = self._developers.get(developer_id)
        if previous is not None and client_id in previous.applications:
            previous.applications.remove(client_id)

    def saw_api(self, client_id: str, api: str) -> None:
        """An application called ``api`` (its first bucket of it)."""
        application = self._applications.get(client_id)
        if application is None:
            application = self._applications[client_id] = _Application("", "")
        if api not in application.apis:
            application.apis.append(api)

    def owner(self, client_id: str) -> tuple[str, str]:
        """``(developer_id, org_id)``, empty strings while unknown."""
        application = self._applications.get(client_id)
        return ("", "") if application is None else (application.developer_id, application.org_id)

    def application(self, client_id: str) -> ApplicationInfo:
        found = self._applications[client_id]
        return ApplicationInfo(
            client_id, found.developer_id, found.org_id, found.created_at, tuple(found.apis)
        )

    def developer(self, developer_id: str) -> DeveloperInfo:
        found = self._developers[developer_id]
        return DeveloperInfo(
            developer_id,
            found.org_id,
            found.signed_up_at,
            tuple(found.applications),
            MappingProxyType(dict(found.firsts)),
        )

    def developer_ids(self) -> Iterable[str]:
        return self._developers.keys()

    def client_ids(self) -> Iterable[str]:
        return self._applications.keys()

    def timeline(
        self, developer_id: str, daily: Mapping[str, Iterable[DailyCounts]]
    ) -> list[TimelineEntry]:
        """The developer's milestones and, per application in ``daily``, its days with
        errors or throttled calls, in time order."""
        if developer_id not in self._developers:
            raise KeyError(f"unknown developer {developer_id!r}")
        entries = list(self._developers[developer_id].entries)
        for client_id, days in daily.items():
            for day in days:
                if day.errors:
                    entries.append(
                        TimelineEntry(day.day_start, "errors", client_id, count=day.errors)
                    )
                if day.throttled:
                    entries.append(
                        TimelineEntry(day.day_start, "throttled", client_id, count=day.throttled)
                    )
        entries.sort(key=lambda e: e.at)
        return entries


def _earliest(current: float | None, at: float) -> float:
    return at if current is None else min(current, at)
