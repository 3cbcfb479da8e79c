"""Retention by sign-up week: week k of a cohort counts its developers with a successful call
by any of their applications in that week; weeks not over yet have no figure."""

from __future__ import annotations

import pytest

from operators.analytics.engine import Analytics
from operators.analytics.records import HOUR

from .feeds import DAY, MONDAY, WEEK, bucket, created


def _call(analytics: Analytics, client: str, at: float, *, errors: int = 0) -> None:
    analytics.record_usage(bucket(client, at - at % HOUR, 5, errors=errors))


def test_retention_by_sign_up_week() -> None:
    analytics = Analytics()
    # week 0: three developers (Monday, Wednesday, Sunday night); week 1: two
    created(analytics, "a", at=MONDAY + 1)
    created(analytics, "b", at=MONDAY + 2 * DAY)
    created(analytics, "c", at=MONDAY + WEEK - 60)
    created(analytics, "d", at=MONDAY + WEEK + DAY)
    created(analytics, "e", at=MONDAY + WEEK + 3 * DAY)
    calls = {
        "a": [0, 1, 2, 3],  # weeks with a successful call
        "b": [0, 2],
        "c": [1],
        "d": [1, 2],
        "e": [],
    }
    for client, weeks in calls.items():
        for week in weeks:
            _call(analytics, client, MONDAY + week * WEEK + 3 * DAY)
    _call(analytics, "e", MONDAY + 2 * WEEK + DAY, errors=5)  # only failures: not active
    now = MONDAY + 4 * WEEK + DAY
    analytics.advance(now)
    table = analytics.cohorts(now=now, weeks=5)
    first, second = table.cohorts
    assert (first.week_start, first.size) == (MONDAY, 3)
    assert first.active == (2, 2, 2, 1, None)  # week 4 is not over
    assert first.retention[:4] == pytest.approx((2 / 3, 2 / 3, 2 / 3, 1 / 3))
    assert (second.week_start, second.size) == (MONDAY + WEEK, 2)
    assert second.active == (1, 1, 0, None, None)
    assert table.weeks == 5


def test_the_current_week_has_no_figure_and_bad_weeks_are_refused() -> None:
    analytics = Analytics()
    created(analytics, "a", at=MONDAY + DAY)
    _call(analytics, "a", MONDAY + 2 * DAY)
    analytics.advance(MONDAY + 3 * DAY)
    (cohort,) = analytics.cohorts(now=MONDAY + 3 * DAY, weeks=2).cohorts
    assert cohort.active == (None, None)
    with pytest.raises(ValueError, match="weeks"):
        analytics.cohorts(now=MONDAY, weeks=0)
