"""Segments with their reasons: churn risk (weeks of decline against the application's own
peak), power users, upsell near a quota, dormant applications."""

from __future__ import annotations

from operators.analytics.engine import Analytics

from .feeds import DAY, MONDAY, WEEK, bucket, created


def _weekly(analytics: Analytics, client: str, per_week: list[int]) -> None:
    """``per_week[k]`` calls in week k, one bucket a day at noon."""
    for week, calls in enumerate(per_week):
        for day in range(7):
            share = calls // 7 + (day < calls % 7)
            if share:
                at = MONDAY + week * WEEK + day * DAY + 12 * 3600
                analytics.record_usage(bucket(client, at, share))


def test_churn_risk_is_a_decline_of_n_weeks_to_below_half_the_peak() -> None:
    analytics = Analytics()
    series = {
        "churning": [1000] * 6 + [800, 600, 300, 100],
        "stopped": [1000] * 6 + [900, 400, 0, 0],
        "steady": [1000] * 10,
        "dip": [1000] * 6 + [900, 800, 700, 600],  # declining, but still above half the peak
        "three-weeks": [1000] * 7 + [600, 300, 100],  # only three weeks of decline
        "wobbly": [1000] * 6 + [800, 900, 300, 100],
    }
    for client, weekly in series.items():
        created(analytics, client)
        _weekly(analytics, client, weekly)
    now = MONDAY + 10 * WEEK + DAY
    analytics.advance(now)
    churn = analytics.segments(now=now).churn_risk
    assert [e.client_id for e in churn] == ["churning", "stopped"]
    assert churn[0].reason == (
        "calls fell 4 weeks in a row (1,000 -> 800 -> 600 -> 300 -> 100 a week); the last week"
        " is 10% of its peak 4-week mean of 1,000"
    )
    assert churn[0].developer_id == "dev-churning"


def test_power_users_are_the_top_five_percent_with_enough_calls() -> None:
    analytics = Analytics()
    for k in range(40):
        created(analytics, f"app-{k:02}")
        _weekly(analytics, f"app-{k:02}", [100 * (k + 1)] * 4)
    created(analytics, "tiny")
    _weekly(analytics, "tiny", [5] * 4)
    now = MONDAY + 4 * WEEK
    analytics.advance(now)
    power = analytics.segments(now=now).power_users
    assert [e.client_id for e in power] == ["app-39", "app-38", "app-37"]  # ceil(5 % of 41)
    assert power[0].value == 16_000 and "#1 of 41" in power[0].reason


def test_upsell_is_near_the_monthly_quota_of_an_api() -> None:
    analytics = Analytics()
    for client in ("near", "far"):
        created(analytics, client)
    _weekly(analytics, "near", [6_300] * 5)  # 900 a day: 27,000 in 30 days
    _weekly(analytics, "far", [2_100] * 5)
    now = MONDAY + 5 * WEEK
    analytics.advance(now)
    quotas = {("near", "sim-swap"): 30_000, ("far", "sim-swap"): 30_000}
    (entry,) = analytics.segments(now=now, quotas=quotas).upsell
    assert (entry.client_id, entry.api, entry.value) == ("near", "sim-swap", 0.9)
    assert (
        entry.reason
        == "27,000 sim-swap calls over the last 30 days, 90% of its monthly limit of 30,000"
    )
    assert analytics.segments(now=now).upsell == ()  # no quotas known


def test_dormant_after_calls_or_never_called() -> None:
    analytics = Analytics()
    created(analytics, "went-quiet", at=MONDAY)
    created(analytics, "never-called", at=MONDAY)
    created(analytics, "new", at=MONDAY + 25 * DAY)
    created(analytics, "active", at=MONDAY)
    analytics.record_usage(bucket("went-quiet", MONDAY + DAY, 10))
    analytics.record_usage(bucket("active", MONDAY + 27 * DAY, 10))
    now = MONDAY + 30 * DAY
    analytics.advance(now)
    dormant = {e.client_id: e.reason for e in analytics.segments(now=now).dormant}
    assert dormant == {
        "went-quiet": "no call for 29 days",
        "never-called": "created 30 days ago and never called",
    }
    assert analytics.segments(now=now).developers("dormant") == [
        "dev-never-called",
        "dev-went-quiet",
    ]
