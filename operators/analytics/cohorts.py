"""Retention cohorts by sign-up week.

A cohort is the developers who signed up in one ISO week (Monday 00:00 UTC). Week ``k`` of a
cohort is the ``k``-th week after its sign-up week (week 0 is the sign-up week); a developer
is active in it with at least one successful call by any of their applications in that week.
A week that has not ended by ``now`` has no figure yet (None), since a part week would read
as a drop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .baselines import week_of, week_start

__all__ = ["Cohort", "CohortTable", "cohort_table"]


@dataclass(frozen=True)
class Cohort:
    week_start: float
    size: int
    active: tuple[int | None, ...]
    """Developers active in week k (None: week k has not ended)."""
    retention: tuple[float | None, ...]


@dataclass(frozen=True)
class CohortTable:
    weeks: int
    cohorts: tuple[Cohort, ...]


def cohort_table(
    signups: Mapping[str, float],
    active: Mapping[str, frozenset[int]],
    *,
    now: float,
    weeks: int,
    oldest_week: int | None = None,
) -> CohortTable:
    """``signups``: developer -> sign-up time; ``active``: developer -> week indices (see
    :func:`~operators.analytics.baselines.week_of`) with a successful call. Cohorts that
    signed up before ``oldest_week`` (whose early weeks are no longer known) are left out."""
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1 (it is {weeks})")
    members: dict[int, list[str]] = {}
    for developer_id, at in signups.items():
        week = week_of(at)
        if at <= now and (oldest_week is None or week >= oldest_week):
            members.setdefault(week, []).append(developer_id)
    cohorts: list[Cohort] = []
    for week in sorted(members):
        people = members[week]
        counts: list[int | None] = []
        for k in range(weeks):
            if week_start(week + k + 1) > now:
                counts.append(None)
            else:
                counts.append(sum(1 for d in people if week + k in active.get(d, ())))
        cohorts.append(
            Cohort(
                week_start(week),
                len(people),
                tuple(counts),
                tuple(None if c is None else c / len(people) for c in counts),
            )
        )
    return CohortTable(weeks, tuple(cohorts))
