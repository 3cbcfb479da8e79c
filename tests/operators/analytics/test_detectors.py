"""Each detector on synthetic weeks: the anomaly it is for raises exactly one alert for that
key, the twenty steady keys beside it raise none; gates (history, cooldown) hold."""

from __future__ import annotations

import math
import pickle
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest

from operators.analytics.alerts import Alert
from operators.analytics.engine import Analytics
from operators.analytics.records import HOUR, UsageBucket
from operators.analytics.settings import AnalyticsSettings, DetectorSettings

from .feeds import DAY, MONDAY, Maker, bucket, created, diurnal, feed, normal_key

WEEKS = 5 * 7 * 24
SPIKE_HOUR = WEEKS - 10  # a Friday 14:00, in the fifth week


def _population(rng: random.Random, analytics: Analytics) -> dict[str, Maker]:
    keys: dict[str, Maker] = {}
    for k in range(20):
        client = f"steady-{k}"
        created(analytics, client)
        keys[client] = normal_key(client, rng, peak=rng.uniform(20, 300))
    return keys


def _with(base: Maker, at_hour: int, replacement: Maker) -> Maker:
    def make(hour: int, start: float) -> UsageBucket | None:
        return replacement(hour, start) if hour == at_hour else base(hour, start)

    return make


def _kinds(alerts: list[Alert], client: str) -> Counter[str]:
    return Counter(a.kind for a in alerts if a.client_id == client)


def test_a_tenfold_hour_is_one_volume_spike_and_steady_keys_raise_nothing() -> None:
    rng = random.Random(17)
    analytics = Analytics()
    keys = _population(rng, analytics)
    created(analytics, "victim")
    normal = normal_key("victim", rng, peak=80)

    def tenfold(hour: int, start: float) -> UsageBucket | None:
        made = normal(hour, start)
        made.calls *= 10
        made.successes = made.calls - made.errors
        made.sources = {"net-a": made.calls}
        return made

    keys["victim"] = _with(normal, SPIKE_HOUR, tenfold)
    alerts = feed(analytics, keys, hours=WEEKS + 24)
    assert [(a.kind, a.client_id, a.bucket_start) for a in alerts] == [
        ("volume_spike", "victim", MONDAY + SPIKE_HOUR * HOUR)
    ]
    (alert,) = alerts
    assert alert.developer_id == "dev-victim" and alert.org_id == "org-dev-victim"
    assert alert.observed > 5 * alert.baseline and alert.score >= 5
    assert alert.raised_at == MONDAY + (SPIKE_HOUR + 1) * HOUR
    assert alert.detail == (
        f"{alert.observed:.0f} calls in this hour against {alert.baseline:.1f},"
        " usual for this hour of the week"
    )


def test_two_thousand_distinct_subscribers_in_an_hour_is_enumeration() -> None:
    rng = random.Random(3)
    analytics = Analytics()
    keys = _population(rng, analytics)
    created(analytics, "scraper")
    normal = normal_key("scraper", rng, peak=60)
    keys["scraper"] = _with(
        normal,
        SPIKE_HOUR,
        lambda hour, start: bucket(
            "scraper", start, 2_000, subscribers=2_000, sources={"net-a": 2_000}
        ),
    )
    alerts = feed(analytics, keys, hours=WEEKS + 2)
    assert {a.client_id for a in alerts} == {"scraper"}
    assert _kinds(alerts, "scraper")["enumeration"] == 1
    (enumeration,) = [a for a in alerts if a.kind == "enumeration"]
    assert enumeration.observed == 2_000 and enumeration.baseline < 40


def test_the_same_calls_over_few_subscribers_are_not_enumeration() -> None:
    rng = random.Random(3)
    analytics = Analytics()
    created(analytics, "busy")
    normal = normal_key("busy", rng, peak=60)
    keys = {
        "busy": _with(
            normal,
            SPIKE_HOUR,
            lambda hour, start: bucket(
                "busy", start, 2_000, subscribers=20, sources={"net-a": 2_000}
            ),
        )
    }
    alerts = feed(analytics, keys, hours=WEEKS + 2)
    assert _kinds(alerts, "busy") == Counter({"volume_spike": 1})


def _over_quota_daily(client: str, rng: random.Random) -> Maker:
    """A heavy free-plan application: ~300 calls an hour over ~100 subscribers, around the
    clock, whose daily quota runs out between 03:00 and 10:00 (a different hour each day, in
    which a few of its calls are still admitted): from then until the reset at midnight its
    calls are throttled and carry no subscriber."""
    exhausted = [rng.randint(3, 10) for _ in range(60)]

    def make(hour: int, start: float) -> UsageBucket:
        calls = max(1, round(rng.gauss(300, 17)))
        admitted = calls
        if hour % 24 == exhausted[hour // 24]:
            admitted = round(calls * rng.uniform(0.01, 0.3))
        elif hour % 24 > exhausted[hour // 24]:
            admitted = 0
        return bucket(
            client,
            start,
            calls,
            throttled=calls - admitted,
            subscribers=round(rng.gauss(100, 10) * admitted / calls),
            subscriber_prefix=f"h{hour}-",
            sources={"net-a": calls},
        )

    return make


def test_a_key_throttled_for_hours_then_reset_at_midnight_is_not_enumeration() -> None:
    """Its distinct subscribers drop to a few in the hour its quota runs out, to 0 for the
    rest of the day, and jump back at the reset: the throttled calls say nothing about how
    many subscribers it looks up."""
    rng = random.Random(41)
    analytics = Analytics()
    created(analytics, "heavy")
    alerts = feed(analytics, {"heavy": _over_quota_daily("heavy", rng)}, hours=WEEKS + 24)
    assert [a for a in alerts if a.kind == "enumeration"] == []


def test_a_throttled_key_that_starts_enumerating_is_enumeration() -> None:
    rng = random.Random(41)
    analytics = Analytics()
    created(analytics, "heavy")
    usual = _over_quota_daily("heavy", rng)
    sweep = SPIKE_HOUR - SPIKE_HOUR % 24 + 1  # 01:00, before the quota runs out

    def enumerating(hour: int, start: float) -> UsageBucket:
        return bucket(
            "heavy",
            start,
            2_000,
            subscribers=2_000,
            subscriber_prefix="x-",
            sources={"net-a": 2_000},
        )

    alerts = feed(analytics, {"heavy": _with(usual, sweep, enumerating)}, hours=WEEKS + 24)
    (found,) = [a for a in alerts if a.kind == "enumeration"]
    assert found.bucket_start == MONDAY + sweep * HOUR
    assert found.observed == 2_000 and 80 <= found.baseline <= 120


def test_a_stolen_key_used_from_a_new_network_at_high_volume_is_a_new_source() -> None:
    rng = random.Random(5)
    analytics = Analytics()
    keys = _population(rng, analytics)
    created(analytics, "stolen")
    normal = normal_key("stolen", rng, peak=40, source="office")

    def thief(hour: int, start: float) -> UsageBucket | None:
        made = normal(hour, start)
        made.calls += 400
        made.successes += 400
        made.sources = {"office": made.calls - 400, "far-away": 400}
        return made

    keys["stolen"] = _with(normal, SPIKE_HOUR, thief)
    alerts = feed(analytics, keys, hours=WEEKS + 2)
    assert {a.client_id for a in alerts} == {"stolen"}
    assert _kinds(alerts, "stolen") == Counter({"new_source": 1, "volume_spike": 1})
    (new,) = [a for a in alerts if a.kind == "new_source"]
    assert new.observed == 400 and "far-away" in new.detail


def test_moving_to_a_new_network_at_the_usual_volume_is_not_an_alert() -> None:
    rng = random.Random(5)
    analytics = Analytics()
    created(analytics, "mover")
    before = normal_key("mover", rng, peak=40, source="old-dc")
    after = normal_key("mover", rng, peak=40, source="new-dc")
    keys = {"mover": lambda hour, start: (before if hour < SPIKE_HOUR else after)(hour, start)}
    assert feed(analytics, keys, hours=WEEKS + 24) == []


def _office_hours(client: str, rng: random.Random) -> Maker:
    """Calls on weekdays from 08:00 to 18:00 only."""

    def make(hour: int, start: float) -> UsageBucket | None:
        if (hour // 24) % 7 >= 5 or not 8 <= hour % 24 < 18:
            return None
        level = diurnal(hour, 80)
        return bucket(
            client, start, max(1, round(rng.gauss(level, level**0.5))), sources={"office": 1}
        )

    return make


def test_calls_at_three_in_the_morning_from_an_office_hours_key_are_off_hours() -> None:
    rng = random.Random(11)
    analytics = Analytics()
    keys = _population(rng, analytics)
    created(analytics, "office")
    night = WEEKS - 24 * 2 + 3  # Wednesday 03:00 of the fifth week
    keys["office"] = _with(
        _office_hours("office", rng),
        night,
        lambda hour, start: bucket("office", start, 60, sources={"office": 60}),
    )
    alerts = feed(analytics, keys, hours=WEEKS)
    assert {a.client_id for a in alerts} == {"office"}
    kinds = _kinds(alerts, "office")
    assert kinds["off_hours"] == 1
    (off,) = [a for a in alerts if a.kind == "off_hours"]
    assert off.bucket_start == MONDAY + night * HOUR and off.baseline == 0
    assert off.detail == "60 calls in this hour; this key is usually quiet at this hour of the week"


def test_office_hours_are_not_off_hours_for_a_key_busy_around_the_clock() -> None:
    rng = random.Random(11)
    analytics = Analytics()
    created(analytics, "always")
    assert feed(analytics, {"always": normal_key("always", rng, peak=60)}, hours=WEEKS) == []


def test_half_the_calls_failing_is_an_error_spike() -> None:
    rng = random.Random(23)
    analytics = Analytics()
    keys = _population(rng, analytics)
    created(analytics, "broken")
    normal = normal_key("broken", rng, peak=100)

    def failing(hour: int, start: float) -> UsageBucket | None:
        made = normal(hour, start)
        made.errors = made.calls // 2
        made.successes = made.calls - made.errors
        return made

    keys["broken"] = _with(normal, SPIKE_HOUR, failing)
    alerts = feed(analytics, keys, hours=WEEKS + 2)
    assert [(a.kind, a.client_id) for a in alerts] == [("error_spike", "broken")]
    assert 0.45 < alerts[0].observed <= 0.5 and alerts[0].baseline < 0.05


def _daily(client: str, per_day: int) -> Maker:
    """``per_day`` calls a day, spread evenly over its hours."""

    def make(hour: int, start: float) -> UsageBucket:
        return bucket(client, start, per_day // 24 + (hour % 24 < per_day % 24))

    return make


def test_three_new_applications_of_one_developer_each_near_the_free_quota_are_quota_farming() -> (
    None
):
    quota = 30_000  # the free plan's 1,000 a day, as a month
    apps = {
        # a farm: three applications created within two days, each ~950 calls a day
        "farm-1": ("farmer", MONDAY, 950),
        "farm-2": ("farmer", MONDAY + DAY, 950),
        "farm-3": ("farmer", MONDAY + 2 * DAY, 950),
        # the same shape but far apart in time: a developer whose applications grew
        "grown-1": ("grower", MONDAY - 90 * DAY, 950),
        "grown-2": ("grower", MONDAY - 40 * DAY, 950),
        "grown-3": ("grower", MONDAY + DAY, 950),
        # three new applications, well within their quotas
        "small-1": ("modest", MONDAY, 300),
        "small-2": ("modest", MONDAY, 300),
        "small-3": ("modest", MONDAY, 300),
    }
    analytics = Analytics(quotas={(c, "sim-swap"): quota for c in apps})
    for client, (developer, at, _) in apps.items():
        created(analytics, client, at=at, developer=developer)
    keys = {client: _daily(client, daily) for client, (_, _, daily) in apps.items()}
    alerts = feed(analytics, keys, hours=40 * 24)
    farming = [a for a in alerts if a.kind == "quota_farming"]
    assert {a.developer_id for a in farming} == {"farmer"}
    first = farming[0]
    assert (first.client_id, first.api) == ("farm-1", "sim-swap")
    assert "farm-1" in first.detail and "farm-3" in first.detail
    # it is raised once the 30 days' calls reach 80 % of the quota: day 26 (25.3 days of calls),
    # then again once a week (alert_cooldown_days) while the farm stays one, not daily
    assert [(a.bucket_start - MONDAY) / DAY for a in farming] == [25, 32, 39]
    assert {a.kind for a in alerts} == {"quota_farming"}


def _farm(analytics: Analytics, api: str, developer: str = "farmer") -> dict[str, Maker]:
    """Three applications of ``developer`` created the same day, each at 90 % of a quota of
    100 calls a month on ``api`` within one hour."""
    keys: dict[str, Maker] = {}
    for k in range(3):
        client = f"{developer}-{api}-{k}"
        created(analytics, client, developer=developer)
        analytics.set_quota(client, api, 100)

        def make(hour: int, start: float, client: str = client) -> UsageBucket | None:
            return bucket(client, start, 90, api=api) if hour == 23 else None

        keys[client] = make
    return keys


def test_one_developer_farming_two_apis_is_two_farms_each_naming_its_api() -> None:
    analytics = Analytics()
    keys = {**_farm(analytics, "sim-swap"), **_farm(analytics, "number-verification")}
    alerts = feed(analytics, keys, hours=25)
    assert sorted((a.kind, a.developer_id, a.api) for a in alerts) == [
        ("quota_farming", "farmer", "number-verification"),
        ("quota_farming", "farmer", "sim-swap"),
    ]
    assert all(a.client_id.startswith(f"farmer-{a.api}-") for a in alerts)


def test_a_kind_s_own_threshold_overrides_the_shared_one() -> None:
    """The smallest farm scores 5: a shared threshold of 10 (suited to spikes) silences it,
    quota farming's own threshold of 5 does not, and a volume spike below 10 stays quiet."""
    shared = DetectorSettings(threshold=10.0)
    own = replace(shared, thresholds={"quota_farming": 5.0})
    assert own.threshold_of("quota_farming") == 5.0 and own.threshold_of("volume_spike") == 10.0

    def farms(settings: DetectorSettings) -> list[str]:
        analytics = Analytics(AnalyticsSettings(settings))
        return [a.kind for a in feed(analytics, _farm(analytics, "sim-swap"), hours=25)]

    assert farms(shared) == []
    assert farms(own) == ["quota_farming"]
    assert farms(replace(own, threshold=4.0, thresholds={"quota_farming": 6.0})) == []


def test_per_kind_thresholds_are_checked_and_keep_the_settings_hashable() -> None:
    settings = DetectorSettings(thresholds={"quota_farming": 4, "enumeration": 8.5})
    assert settings.thresholds == {"enumeration": 8.5, "quota_farming": 4.0}
    assert hash(settings) == hash(
        DetectorSettings(thresholds={"enumeration": 8.5, "quota_farming": 4.0})
    )
    assert settings != DetectorSettings()
    assert pickle.loads(pickle.dumps(settings)) == settings
    for bad, named in (
        ({"volume": 5.0}, "thresholds.volume: unknown alert kind"),
        ({"enumeration": math.nan}, "thresholds.enumeration must be finite and > 0"),
        ({"off_hours": math.inf}, "thresholds.off_hours must be finite and > 0"),
        ({"new_source": 0.0}, "thresholds.new_source must be finite and > 0"),
    ):
        with pytest.raises(ValueError, match=re.escape(named)):
            DetectorSettings(thresholds=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold must be finite"):
        DetectorSettings(threshold=math.nan)


def test_without_quotas_there_is_no_farming_verdict() -> None:
    analytics = Analytics()
    for k in range(3):
        created(analytics, f"farm-{k}", developer="farmer")
    keys = {
        f"farm-{k}": (lambda hour, start, c=f"farm-{k}": bucket(c, start, 40)) for k in range(3)
    }
    assert feed(analytics, keys, hours=40 * 24) == []


def test_a_long_incident_raises_one_alert_per_cooldown() -> None:
    rng = random.Random(31)
    settings = AnalyticsSettings(alert_cooldown_buckets=6)
    analytics = Analytics(settings)
    created(analytics, "flood")
    normal = normal_key("flood", rng, peak=50)

    def flood(hour: int, start: float) -> UsageBucket | None:
        made = normal(hour, start)
        if SPIKE_HOUR <= hour < SPIKE_HOUR + 10:
            made.calls += 3_000
            made.successes += 3_000
            made.sources = {"net-a": made.calls}
        return made

    alerts = feed(analytics, {"flood": flood}, hours=WEEKS + 12)
    assert [(a.kind, (a.bucket_start - MONDAY) / HOUR) for a in alerts] == [
        ("volume_spike", SPIKE_HOUR),
        ("volume_spike", SPIKE_HOUR + 6),
    ]
    scored = [s for s in analytics.scores if s.kind == "volume_spike" and s.score >= 5]
    assert len(scored) == 10  # every hour of it was scored; only the alerts were held back


def test_no_key_is_scored_before_min_history() -> None:
    analytics = Analytics(AnalyticsSettings(DetectorSettings(min_history=24)))
    created(analytics, "young")
    keys = {"young": lambda hour, start: bucket("young", start, 10 if hour < 20 else 5_000)}
    assert feed(analytics, keys, hours=23) == []
    assert not analytics.scores
    alerts = feed(analytics, keys, hours=2, first_hour=23)
    assert [a.kind for a in alerts] == ["volume_spike"]  # hour 24: 24 buckets of history


def _live(settings: AnalyticsSettings, calls_at: Callable[[int], int], buckets: int) -> list[Alert]:
    """Buckets of 2 s fed and closed one by one (None calls: no bucket at all)."""
    analytics = Analytics(settings)
    created(analytics, "live")
    alerts: list[Alert] = []
    for index in range(buckets):
        at = LIVE_START + 2 * index
        calls = calls_at(index)
        if calls:
            analytics.record_usage(bucket("live", at, calls))
        alerts.extend(analytics.advance(at + 2))
    return alerts


LIVE_START = 1_000_000.0
SEASONLESS = AnalyticsSettings(
    DetectorSettings(bucket_seconds=2.0, season_buckets=None, recent_buckets=24)
)


def test_an_empty_bucket_is_a_zero_in_the_history_of_a_key_that_has_one() -> None:
    """A key that stops for longer than the recent window and comes back at its old level
    is compared with the zeros of its pause (nothing was recorded for them), until its busy
    buckets are the window's majority again (one more alert after the cooldown of 6)."""
    pausing = _live(SEASONLESS, lambda i: 0 if 48 <= i < 80 else 100, 100)
    assert [(a.kind, a.bucket_start, a.baseline) for a in pausing] == [
        ("volume_spike", LIVE_START + 2 * 80, 0.0),
        ("volume_spike", LIVE_START + 2 * 86, 0.0),
    ]
    assert _live(SEASONLESS, lambda i: 100, 100) == []


def test_a_short_pause_is_outvoted_by_the_busy_buckets_around_it() -> None:
    assert _live(SEASONLESS, lambda i: 0 if 48 <= i < 55 else 100, 100) == []


def test_seasonless_baseline_is_the_last_recent_buckets() -> None:
    settings = AnalyticsSettings(
        DetectorSettings(bucket_seconds=2.0, season_buckets=None, recent_buckets=10, min_history=10)
    )
    rng = random.Random(2)
    levels = [50 + rng.randint(-5, 5) for _ in range(200)]
    levels[150] = 5_000
    alerts = _live(settings, lambda i: levels[i], 200)
    assert [(a.kind, a.bucket_start) for a in alerts] == [("volume_spike", LIVE_START + 300)]
    assert settings.detectors.ring_length == 10


def test_details_name_the_bucket_and_the_baseline_the_settings_give() -> None:
    """Three-second buckets with no season: the bucket is "this 3 s bucket" and the baseline
    the recent window; hourly ones with a season too short yet: the last 24 hours."""
    settings = AnalyticsSettings(
        DetectorSettings(bucket_seconds=3.0, season_buckets=None, recent_buckets=10, min_history=10)
    )
    analytics = Analytics(settings)
    created(analytics, "live")
    alerts: list[Alert] = []
    for index in range(40):
        at = LIVE_START - 1 + 3 * index  # a multiple of 3
        analytics.record_usage(bucket("live", at, 5_000 if index == 30 else 50))
        alerts.extend(analytics.advance(at + 3))
    (alert,) = alerts
    assert (
        alert.detail == "5000 calls in this 3 s bucket against 50.0, usual over the last 10 buckets"
    )

    hourly = Analytics()
    created(hourly, "young")
    spiking = {"young": lambda hour, start: bucket("young", start, 5_000 if hour == 30 else 50)}
    (alert,) = feed(hourly, spiking, hours=40)
    assert alert.detail == "5000 calls in this hour against 50.0, usual over the last 24 hours"


def test_quota_farming_is_judged_when_the_day_ends_even_if_nothing_calls_after_it() -> None:
    apps = {f"farm-{k}": "farmer" for k in range(3)}
    analytics = Analytics(quotas={(c, "sim-swap"): 100 for c in apps})
    for client, developer in apps.items():
        created(analytics, client, developer=developer)
    for client in apps:  # 90 calls each in the day's last hour, then silence
        analytics.record_usage(bucket(client, MONDAY + 23 * HOUR, 90))
    assert analytics.advance(MONDAY + DAY - 1) == [], "the day has not ended"
    (farm,) = analytics.advance(MONDAY + DAY + 5)
    assert (farm.kind, farm.developer_id, farm.bucket_start) == ("quota_farming", "farmer", MONDAY)
    assert "near its monthly sim-swap quota over the last 30 days" in farm.detail
    assert "farm-0 90%" in farm.detail
    assert analytics.advance(MONDAY + DAY + HOUR) == [], "judged once"
    analytics.record_usage(bucket("farm-0", MONDAY + DAY + HOUR, 1))
    assert analytics.advance(MONDAY + DAY + 2 * HOUR) == [], "still once, a call later"
