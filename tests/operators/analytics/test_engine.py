"""The engine's bookkeeping: parts of a bucket merge, late parts are counted and dropped,
alerts go to the callback, scores do not depend on the threshold, memory does not grow with
the buckets fed, and the directory and timeline come from milestones."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from operators.analytics.alerts import Alert
from operators.analytics.engine import Analytics
from operators.analytics.records import HOUR, Activity, UsageBucket
from operators.analytics.settings import AnalyticsSettings, DetectorSettings

from .feeds import DAY, MONDAY, Maker, bucket, created, feed, normal_key

SPIKE_HOUR = 35 * 24 - 10


def _spiky(rng: random.Random, keys: int = 4) -> dict[str, Maker]:
    makers: dict[str, Maker] = {}
    for k in range(keys):
        normal = normal_key(f"app-{k}", rng, peak=50 + 30 * k)

        def make(hour: int, start: float, normal: Maker = normal, k: int = k) -> UsageBucket | None:
            made = normal(hour, start)
            if made is not None and k == 0 and hour == SPIKE_HOUR:
                made.calls *= 8
            return made

        makers[f"app-{k}"] = make
    return makers


def test_parts_of_one_bucket_merge_and_the_first_part_is_left_as_it_was() -> None:
    analytics = Analytics()
    created(analytics, "app")
    first = bucket("app", MONDAY, 10, errors=3, throttled=1)
    analytics.record_usage(first)
    analytics.record_usage(bucket("app", MONDAY, 5, errors=3, throttled=2))
    analytics.record_usage(bucket("app", MONDAY, 1, errors=1))
    analytics.advance(MONDAY + HOUR)
    assert first.calls == 10 and first.errors == 3
    daily = [(e.kind, e.count) for e in analytics.timeline("dev-app") if e.client_id and e.count]
    assert daily == [("errors", 7), ("throttled", 3)]


def test_a_part_arriving_after_its_bucket_closed_is_counted_and_dropped() -> None:
    analytics = Analytics()
    created(analytics, "app")
    analytics.record_usage(bucket("app", MONDAY + HOUR, 10))
    analytics.advance(MONDAY + 2 * HOUR)
    analytics.record_usage(bucket("app", MONDAY, 10, errors=10))  # closed already
    analytics.record_usage(bucket("app", MONDAY + HOUR, 10, errors=10))  # so is this one
    analytics.advance(MONDAY + 3 * HOUR)
    assert analytics.late_parts == 2
    assert not any(e.kind == "errors" for e in analytics.timeline("dev-app"))


def test_a_bucket_that_does_not_start_on_a_bucket_boundary_is_refused_at_once() -> None:
    analytics = Analytics()
    with pytest.raises(
        ValueError,
        match=r"app on sim-swap: start .* is not a multiple of the"
        r" bucket length \(3600 s\); the bucket holding it starts at",
    ):
        analytics.record_usage(bucket("app", MONDAY + 1800, 10))
    assert analytics.advance(MONDAY + HOUR) == []
    # float rounding in whoever computed the start is not misalignment
    tenths = Analytics(AnalyticsSettings(DetectorSettings(bucket_seconds=0.1)))
    start = 17_000_000_001 * 0.1
    tenths.record_usage(bucket("app", start, 10))
    tenths.record_usage(bucket("app", start, 5))
    with pytest.raises(ValueError, match="not a multiple"):
        tenths.record_usage(bucket("app", start + 0.05, 1))


def test_a_bucket_stays_open_until_advance_passes_its_end() -> None:
    seen: list[Alert] = []
    analytics = Analytics(on_alert=seen.append)
    created(analytics, "app")
    analytics.record_usage(bucket("app", MONDAY, 10, errors=2))
    analytics.advance(MONDAY + HOUR - 0.5)
    assert analytics.timeline("dev-app")[-1].kind == "application_created"  # not closed yet
    analytics.advance(MONDAY + HOUR)
    assert analytics.timeline("dev-app")[-1].kind == "errors"


def test_alerts_go_to_the_callback_and_stay_listed() -> None:
    seen: list[Alert] = []
    analytics = Analytics(on_alert=seen.append)
    for k in range(4):
        created(analytics, f"app-{k}")
    returned = feed(analytics, _spiky(random.Random(4)), hours=35 * 24)
    assert returned == seen == list(analytics.alerts)
    assert [(a.kind, a.client_id) for a in returned] == [("volume_spike", "app-0")]


def test_scores_do_not_depend_on_the_threshold() -> None:
    runs = []
    for threshold in (5.0, 50.0):
        settings = AnalyticsSettings()
        settings = replace(settings, detectors=replace(settings.detectors, threshold=threshold))
        analytics = Analytics(settings)
        for k in range(4):
            created(analytics, f"app-{k}")
        feed(analytics, _spiky(random.Random(4)), hours=35 * 24)
        runs.append(analytics)
    low, high = runs
    assert low.scores == high.scores and len(low.scores) > 1
    assert all(s.score >= 2.0 for s in low.scores)  # the record floor
    assert len(low.alerts) == 1 and not high.alerts


def test_memory_does_not_grow_with_the_buckets_fed() -> None:
    analytics = Analytics()
    rng = random.Random(9)
    keys = {f"app-{k}": normal_key(f"app-{k}", rng, peak=40) for k in range(3)}
    feed(analytics, keys, hours=700)
    before = (analytics.history_bytes, dict(analytics.ring_lengths), analytics.keys)
    feed(analytics, keys, hours=2_000, first_hour=700)
    after = (analytics.history_bytes, dict(analytics.ring_lengths), analytics.keys)
    assert before == after
    assert after[1] == {"buckets": 672, "fresh": 24, "days": 35, "weeks": 26}


def test_a_key_back_after_ten_silent_weeks_starts_from_zeros() -> None:
    analytics = Analytics()
    created(analytics, "app")
    rng = random.Random(1)
    keys = {"app": normal_key("app", rng, peak=40)}
    feed(analytics, keys, hours=3 * 7 * 24)
    analytics.advance(MONDAY + 13 * 7 * DAY)  # ten weeks without a bucket
    alerts = feed(analytics, keys, hours=24, first_hour=13 * 7 * 24)
    # every hour of the week has only zeros in its history now: a spike, and off-hours too
    assert {a.kind for a in alerts} == {"volume_spike", "off_hours"}
    assert all(a.baseline == 0 for a in alerts)


def test_ownership_and_apis_come_from_milestones_and_usage() -> None:
    analytics = Analytics()
    analytics.record_activity(Activity(MONDAY, "signed_up", "dev-1", "org-1"))
    analytics.record_activity(
        Activity(MONDAY + 60, "application_created", "dev-1", "org-1", client_id="app-1")
    )
    analytics.record_usage(bucket("app-1", MONDAY, 3, api="sim-swap"))
    analytics.record_usage(bucket("app-1", MONDAY, 2, api="kyc-match"))
    analytics.record_usage(bucket("stray", MONDAY, 2))  # calls before its owner is known
    analytics.advance(MONDAY + HOUR)
    apps = analytics.applications()
    assert (apps["app-1"].developer_id, apps["app-1"].org_id) == ("dev-1", "org-1")
    assert set(apps["app-1"].apis) == {"sim-swap", "kyc-match"}
    assert apps["app-1"].created_at == MONDAY + 60
    assert apps["stray"].developer_id == ""
    developer = analytics.developers()["dev-1"]
    assert (developer.signed_up_at, developer.applications) == (MONDAY, ("app-1",))


def test_the_timeline_lists_milestones_first_success_per_api_and_bad_days() -> None:
    analytics = Analytics()
    steps = [
        Activity(MONDAY + 5, "first_token", "dev-1", "org-1", client_id="app-1"),
        Activity(MONDAY, "signed_up", "dev-1", "org-1"),
        Activity(MONDAY + 1, "application_created", "dev-1", "org-1", client_id="app-1"),
        Activity(MONDAY + 2, "key_generated", "dev-1", "org-1", client_id="app-1"),
        Activity(MONDAY + 9, "first_success", "dev-1", "org-1", client_id="app-1", api="sim-swap"),
        Activity(
            MONDAY + 90, "first_success", "dev-1", "org-1", client_id="app-1", api="kyc-match"
        ),
        Activity(MONDAY + DAY, "plan_changed", "dev-1", "org-1", "app-1", "sim-swap", "growth"),
    ]
    for activity in steps:
        analytics.record_activity(activity)
    analytics.record_usage(bucket("app-1", MONDAY + 2 * DAY, 50, errors=4, throttled=6))
    analytics.advance(MONDAY + 3 * DAY)
    timeline = analytics.timeline("dev-1")
    assert [(e.kind, e.api, e.count) for e in timeline] == [
        ("signed_up", "", 0),
        ("application_created", "", 0),
        ("key_generated", "", 0),
        ("first_token", "", 0),
        ("first_success", "sim-swap", 0),
        ("first_success", "kyc-match", 0),
        ("plan_changed", "sim-swap", 0),
        ("errors", "", 4),
        ("throttled", "", 6),
    ]
    assert timeline[6].detail == "growth" and timeline[7].at == MONDAY + 2 * DAY
    firsts = analytics.developers()["dev-1"].firsts
    assert (
        firsts["first_success"] == MONDAY + 9 and firsts["first_success:kyc-match"] == MONDAY + 90
    )
    with pytest.raises(KeyError, match="nobody"):
        analytics.timeline("nobody")


def test_a_threshold_below_the_record_floor_still_alerts() -> None:
    settings = AnalyticsSettings()
    settings = replace(
        settings, detectors=replace(settings.detectors, threshold=1.5, record_floor=100.0)
    )
    analytics = Analytics(settings)
    for k in range(4):
        created(analytics, f"app-{k}")
    alerts = feed(analytics, _spiky(random.Random(4)), hours=35 * 24)
    assert ("volume_spike", "app-0") in {(a.kind, a.client_id) for a in alerts}
    assert all(s.score >= 100 for s in analytics.scores)
