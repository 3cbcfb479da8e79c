"""The live monitor on a fake clock over a real SQLite file: history replayed at start, each
closed bucket scored once after its grace, alerts kept once (also across replicas and
restarts) and posted signed to a real (in-process) receiver; the loop ticks on boundaries and
stops cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from operators.analytics.activity_log import ActivityLog
from operators.analytics.alerts import WebhookSender, verify_signature
from operators.analytics.engine import Analytics
from operators.analytics.monitor import AlertLog, AnalyticsMonitor, analytics_settings, replay
from operators.analytics.quotas import HeldPlans
from operators.analytics.usage_recorder import UsageRecorder
from operators.config import AnalyticsConfig, DetectorConfig, example_operator
from operators.gateway.subscriptions import PlanSubscriptions
from operators.storage import Database

BUCKET = 60.0
GRACE = 5.0
START = 1_790_000_000.0 // BUCKET * BUCKET
SECRET = "a-webhook-secret-of-some-length"
CONFIG = AnalyticsConfig(
    bucket_seconds=BUCKET,
    flush_seconds=1.0,
    grace_seconds=GRACE,
    webhook_url="http://receiver.test/alerts",
    webhook_secret=SECRET,
    detectors=DetectorConfig(season_buckets=None, recent_buckets=10, min_history=5),
)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Receiver:
    """A webhook endpoint: keeps what it was sent."""

    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def alerts(self, request: Request) -> Response:
        self.received.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    def client(self) -> httpx.AsyncClient:
        app = Starlette(routes=[Route("/alerts", self.alerts, methods=["POST"])])
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))


@dataclass
class World:
    path: str
    clock: FakeClock
    activities: ActivityLog
    usage: UsageRecorder
    receiver: Receiver
    http: httpx.AsyncClient

    def monitor(self, plans: HeldPlans | None = None) -> AnalyticsMonitor:
        """A monitor on a database handle of its own (as a replica or a restart has)."""
        db = Database(self.path)
        activities = ActivityLog(db, self.clock)
        usage = UsageRecorder(db, self.clock, bucket_seconds=BUCKET)
        webhook = WebhookSender(
            str(CONFIG.webhook_url),
            SECRET.encode(),
            clock=self.clock,
            client=self.http,
            backoff=0.0,
        )
        return AnalyticsMonitor(
            db,
            activities,
            usage,
            settings=analytics_settings(CONFIG),
            clock=self.clock,
            grace=GRACE,
            webhook=webhook,
            plans=plans,
        )

    def traffic(self, client_id: str, calls: int, host: str, subscribers: int = 5) -> None:
        for n in range(calls):
            self.usage.record(
                client_id, "sim-swap", 200, subscriber=f"+3460000{n % subscribers:04d}", host=host
            )

    def normal_bucket(self) -> None:
        self.traffic("victim", 30, "10.0.0.1")
        self.traffic("steady", 30, "10.1.0.1")
        self.usage.flush()

    def to_next_tick(self) -> None:
        """To the grace after the end of the bucket in progress."""
        self.clock.now = (self.clock.now // BUCKET + 1) * BUCKET + GRACE

    async def history_then_spike(self, monitor: AnalyticsMonitor) -> float:
        """Eight normal buckets scored, then a spike from a new network in the bucket in
        progress; the clock left at that bucket's tick (not taken). The spike's start."""
        await monitor.tick()
        for _ in range(8):
            self.normal_bucket()
            self.to_next_tick()
            assert await monitor.tick() == []
        self.traffic("victim", 600, "10.9.0.1")
        self.normal_bucket()
        spiked = self.clock.now // BUCKET * BUCKET
        self.to_next_tick()
        return spiked

    def replayed_scores(self, upto: float) -> list[object]:
        """The scores of every bucket before ``upto``, replayed from the database at once."""
        analytics = Analytics(analytics_settings(CONFIG))
        replay(analytics, self.activities, self.usage, until=upto)
        analytics.advance(upto)
        return list(analytics.scores)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    path = str(tmp_path / "operator.db")
    clock = FakeClock()
    db = Database(path)
    receiver = Receiver()
    async with receiver.client() as http:
        activities = ActivityLog(db, clock)
        activities.note("signed_up", developer_id="dev-1", org_id="org-1")
        activities.note(
            "application_created",
            developer_id="dev-1",
            org_id="org-1",
            client_id="victim",
            detail="Fraud checks",
        )
        activities.flush()
        yield World(
            path, clock, activities, UsageRecorder(db, clock, bucket_seconds=BUCKET), receiver, http
        )


async def delivered(receiver: Receiver, count: int) -> None:
    for _ in range(400):
        if len(receiver.received) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(receiver.received)} of {count} alerts delivered")


async def test_a_spike_from_a_new_network_raises_one_alert_kept_and_signed(
    world: World,
) -> None:
    monitor = world.monitor()
    await monitor.webhook.start()  # type: ignore[union-attr]
    assert await monitor.tick() == [], "the catch-up finds no history"
    for _ in range(8):
        world.normal_bucket()
        world.to_next_tick()
        assert await monitor.tick() == []
    world.traffic("victim", 600, "10.9.0.1", subscribers=5)  # a stolen key, elsewhere
    world.normal_bucket()
    spiked = world.clock.now // BUCKET * BUCKET
    world.to_next_tick()
    alerts = await monitor.tick()
    assert alerts and {a.client_id for a in alerts} == {"victim"}
    assert {a.kind for a in alerts} <= {"volume_spike", "new_source"}
    assert all(a.bucket_start == spiked and a.developer_id == "dev-1" for a in alerts)
    kept = AlertLog(monitor.db).read()
    assert {(a.kind, a.client_id, a.bucket_start) for a in kept} == {
        (a.kind, a.client_id, a.bucket_start) for a in alerts
    }
    assert AlertLog(monitor.db).read(client_id="steady") == []
    await delivered(world.receiver, len(alerts))
    await monitor.stop()
    for body, headers in world.receiver.received:
        assert verify_signature(body, headers, SECRET.encode(), now=world.clock())
        assert b'"client_id":"victim"' in body
        assert not verify_signature(body, headers, b"another secret", now=world.clock())
    world.to_next_tick()
    assert await monitor.tick() == [], "nothing new"


async def test_a_replica_and_a_restart_neither_keep_nor_send_an_alert_twice(
    world: World,
) -> None:
    first, replica = world.monitor(), world.monitor()
    for monitor in (first, replica):
        await monitor.webhook.start()  # type: ignore[union-attr]
        await monitor.tick()
    for _ in range(8):
        world.normal_bucket()
        world.to_next_tick()
        await first.tick()
        await replica.tick()
    world.traffic("victim", 600, "10.9.0.1")
    world.normal_bucket()
    world.to_next_tick()
    raised = await first.tick()
    assert raised
    assert await replica.tick() == [], "the replica scored it too, but it was already kept"
    restarted = world.monitor()
    await restarted.webhook.start()  # type: ignore[union-attr]
    assert await restarted.catch_up() == [], "the replay finds the spike, already kept"
    assert restarted.analytics.alerts, "the replayed history raised it again in the engine"
    await delivered(world.receiver, len(raised))
    for monitor in (first, replica, restarted):
        await monitor.stop()
    assert len(world.receiver.received) == len(raised)
    assert len(AlertLog(first.db).read()) == len(raised)


async def test_a_late_tick_never_closes_a_bucket_it_has_not_fed(world: World) -> None:
    monitor = world.monitor()
    await monitor.tick()
    world.normal_bucket()
    world.clock.now += 1.5 * BUCKET  # the process stalled past the next bucket's end
    world.normal_bucket()  # calls in the bucket after the one the tick will feed
    await monitor.tick()
    assert monitor.analytics.late_parts == 0
    world.to_next_tick()
    await monitor.tick()
    assert monitor.analytics.late_parts == 0


async def test_the_loop_ticks_at_bucket_boundaries_plus_grace_and_stops(world: World) -> None:
    slept: list[float] = []
    enough = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(world.clock.now + seconds)
        world.clock.now += seconds
        if len(slept) >= 5:
            enough.set()
        await asyncio.sleep(0)

    world.clock.now = START + 17.0
    monitor = AnalyticsMonitor(
        Database(world.path),
        world.activities,
        world.usage,
        settings=analytics_settings(CONFIG),
        clock=world.clock,
        sleep=sleep,
        grace=GRACE,
    )
    await monitor.start()
    await asyncio.wait_for(enough.wait(), 30)
    await monitor.stop()
    assert slept[:3] == [
        START + BUCKET + GRACE,
        START + 2 * BUCKET + GRACE,
        START + 3 * BUCKET + GRACE,
    ]
    assert monitor.cursor is not None and monitor.cursor >= START + 3 * BUCKET


async def test_replay_feeds_any_analytics_from_the_database(world: World) -> None:
    for _ in range(3):
        world.normal_bucket()
        world.clock.now += BUCKET
    analytics = Analytics(analytics_settings(CONFIG))
    done = replay(analytics, world.activities, world.usage, since=START, until=world.clock())
    assert (done.activities, done.buckets) == (2, 6)
    analytics.advance(world.clock())
    assert "dev-1" in analytics.developers()
    assert analytics.applications()["victim"].developer_id == "dev-1"


def test_settings_follow_the_config() -> None:
    settings = analytics_settings(CONFIG)
    assert settings.detectors.bucket_seconds == BUCKET
    assert settings.detectors.season_buckets is None
    assert settings.detectors.min_history == 5
    assert settings.alert_cooldown_buckets == CONFIG.detectors.alert_cooldown_buckets
    own = AnalyticsConfig(
        detectors=DetectorConfig(thresholds={"quota_farming": 5.0}, alert_cooldown_days=3)
    ).settings()
    assert own.detectors.threshold_of("quota_farming") == 5.0
    assert own.detectors.threshold_of("volume_spike") == own.detectors.threshold
    assert own.alert_cooldown_days == 3


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"bucket_seconds": 0}, "bucket_seconds"),
        ({"bucket_seconds": 2, "grace_seconds": 5}, "grace_seconds"),
        ({"webhook_url": "http://x.test/a"}, "webhook_secret"),
        ({"webhook_url": "ftp://x.test/a", "webhook_secret": SECRET}, "webhook_url"),
        ({"webhook_secret": "short"}, "webhook_secret"),
        ({"detectors": {"min_history": 0}}, "min_history"),
        ({"flush_seconds": 9}, "flush_seconds"),
        ({"detectors": {"season_buckets": 2}}, "detectors.season_buckets"),
        ({"detectors": {"thresholds": {"spike": 3}}}, "detectors.thresholds.spike"),
        ({"retention_days": 7}, "retention_days"),
    ],
)
def test_bad_analytics_settings_name_the_field(fields: dict[str, object], named: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        AnalyticsConfig.model_validate(fields)
    assert named in str(refused.value)


def test_a_config_file_s_bad_analytics_value_names_its_field_and_line(tmp_path: Path) -> None:
    from operators.config import OperatorConfig
    from operators.config_file import ConfigFileError, load_yaml_model

    path = tmp_path / "operator.yaml"
    path.write_text(
        "id: telco-es\ndisplay_name: Telco\ncountry: ES\nmcc: '214'\nmnc: '07'\n"
        "number_ranges: ['+3460']\nanalytics:\n  bucket_seconds: 60\n"
        "  detectors:\n    threshold: -1\n"
    )
    with pytest.raises(ConfigFileError) as refused:
        load_yaml_model(path, OperatorConfig)
    assert f"{path}:10: analytics.detectors.threshold:" in str(refused.value)
    good = load_yaml_model(path, OperatorConfig, {"analytics.detectors.threshold": 4})
    assert good.analytics.bucket_seconds == 60 and good.analytics.detectors.threshold == 4


async def test_a_locked_database_and_a_slow_receiver_never_hold_up_the_event_loop(
    world: World,
) -> None:
    """While another process holds the database's write lock, the tick waits to keep its
    alert off the event loop (the loop keeps running meanwhile); once kept, the alert is
    handed to the webhook and the tick returns without waiting for the receiver."""
    answering = asyncio.Event()

    async def slow(request: Request) -> Response:
        world.receiver.received.append((await request.body(), dict(request.headers)))
        await answering.wait()
        return Response(status_code=204)

    app = Starlette(routes=[Route("/alerts", slow, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        world.http = http
        monitor = world.monitor()
        assert monitor.webhook is not None
        await monitor.webhook.start()
        await monitor.tick()
        for _ in range(8):
            world.normal_bucket()
            world.to_next_tick()
            await monitor.tick()
        world.traffic("victim", 600, "10.9.0.1")
        world.normal_bucket()
        world.to_next_tick()

        other = sqlite3.connect(world.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing, for as long as it likes
        ticking = asyncio.create_task(monitor.tick())
        beats = 0
        while beats < 20 and not ticking.done():
            await asyncio.sleep(0.005)
            beats += 1
        assert beats == 20 and not ticking.done(), "the loop ran while the insert waited"
        other.execute("ROLLBACK")
        other.close()
        raised = await asyncio.wait_for(ticking, 30)
        assert raised and AlertLog(monitor.db).read()

        for _ in range(400):
            if world.receiver.received:
                break
            await asyncio.sleep(0.01)
        assert world.receiver.received, "the first POST is under way"
        assert monitor.webhook.pending == len(raised) and monitor.webhook.sent == 0
        answering.set()
        for _ in range(400):
            if monitor.webhook.sent == len(raised):
                break
            await asyncio.sleep(0.01)
        assert monitor.webhook.sent == len(raised)
        await monitor.stop()


async def test_a_failed_plan_read_leaves_its_buckets_to_the_next_tick(world: World) -> None:
    """The plan store's table is gone for one tick (renamed by another process): the tick
    fails before feeding, the cursor stays, and the next tick feeds the spike's bucket with
    the one after it: the alert is raised, kept and sent once, and the scores are those of a
    replay of the whole database (no bucket skipped, none fed twice)."""
    plans = PlanSubscriptions(example_operator(), Database(world.path), world.clock)
    monitor = world.monitor(plans=plans)
    assert monitor.webhook is not None
    await monitor.webhook.start()
    spiked = await world.history_then_spike(monitor)
    cursor = monitor.cursor

    other = sqlite3.connect(world.path, isolation_level=None)
    other.execute("ALTER TABLE plan_subscriptions RENAME TO plan_subscriptions_away")
    with pytest.raises(sqlite3.OperationalError, match="plan_subscriptions"):
        await monitor.tick()
    assert monitor.cursor == cursor, "nothing fed"
    assert AlertLog(monitor.db).read() == [] and world.receiver.received == []
    other.execute("ALTER TABLE plan_subscriptions_away RENAME TO plan_subscriptions")
    other.close()

    world.normal_bucket()  # the bucket after the spike fills meanwhile
    world.to_next_tick()
    raised = await monitor.tick()
    assert raised and {(a.client_id, a.bucket_start) for a in raised} == {("victim", spiked)}
    assert monitor.cursor == spiked + 2 * BUCKET
    await delivered(world.receiver, len(raised))
    world.to_next_tick()
    assert await monitor.tick() == []
    await monitor.stop()
    assert len(world.receiver.received) == len(raised) == len(AlertLog(monitor.db).read())
    assert list(monitor.analytics.scores) == world.replayed_scores(spiked + 2 * BUCKET)


async def test_an_alert_its_insert_failed_is_kept_and_sent_at_the_next_tick(
    world: World,
) -> None:
    """Another process holds the write lock past the monitor's busy timeout when the spike
    is scored: the buckets are fed (the cursor moves on) but the alert waits in memory; the
    next tick keeps it and sends it, once."""
    monitor = world.monitor()
    assert monitor.webhook is not None
    await monitor.webhook.start()
    monitor.db.execute("PRAGMA busy_timeout = 0")  # fail at once rather than wait 5 s
    spiked = await world.history_then_spike(monitor)

    other = sqlite3.connect(world.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert await monitor.tick() == []
    assert monitor.cursor == spiked + BUCKET, "the buckets were fed"
    waiting = list(monitor.unkept)
    assert waiting and {(a.client_id, a.bucket_start) for a in waiting} == {("victim", spiked)}
    other.execute("ROLLBACK")
    other.close()
    assert AlertLog(monitor.db).read() == [] and world.receiver.received == []

    world.normal_bucket()
    world.to_next_tick()
    assert await monitor.tick() == waiting
    assert monitor.unkept == [] and monitor.raised == waiting
    assert len(AlertLog(monitor.db).read()) == len(waiting)
    await delivered(world.receiver, len(waiting))
    world.to_next_tick()
    assert await monitor.tick() == []
    await monitor.stop()
    assert len(world.receiver.received) == len(waiting)
    assert list(monitor.analytics.scores) == world.replayed_scores(spiked + 3 * BUCKET)


async def test_the_catch_up_leaves_a_bucket_within_its_grace_to_the_first_tick(
    world: World,
) -> None:
    """Started a second after a boundary (inside the grace), the monitor does not score the
    bucket that just ended: a second replica's part of it, written within the grace, is fed
    with the first part at the first tick."""
    just_ended = world.clock.now // BUCKET * BUCKET
    world.traffic("victim", 10, "10.0.0.1")
    world.usage.flush()  # one replica's part, written in time
    second = UsageRecorder(Database(world.path), world.clock, bucket_seconds=BUCKET)
    second.record("steady", "sim-swap", 200, host="10.1.0.1")  # another replica's, pending
    world.clock.now = just_ended + BUCKET + 1.0
    monitor = world.monitor()
    await monitor.catch_up()
    assert monitor.cursor == just_ended
    second.flush()  # within the grace
    world.clock.now = just_ended + BUCKET + GRACE
    await monitor.tick()
    assert monitor.cursor == just_ended + BUCKET
    assert monitor.analytics.keys == 2, "both parts fed"
    assert monitor.analytics.late_parts == 0


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ("  detectors:\n    season_buckets: 2\n", "9: analytics.detectors.season_buckets: recent"),
        (
            "  detectors:\n    season_buckets: 24\n    recent_buckets: 700\n",
            "10: analytics.detectors.recent_buckets: recent_buckets must fit",
        ),
        (
            "  detectors:\n    thresholds:\n      volume_spik: 3\n",
            "10: analytics.detectors.thresholds.volume_spik: thresholds.volume_spik: unknown",
        ),
        (
            "  detectors:\n    thresholds:\n      quota_farming: .nan\n",
            "10: analytics.detectors.thresholds.quota_farming: thresholds.quota_farming must",
        ),
        ("  detectors:\n    threshold: .inf\n", "9: analytics.detectors.threshold: threshold"),
        ("  retention_days: 10\n", "8: analytics.retention_days: must cover the 28 days"),
    ],
)
def test_a_value_the_engine_refuses_is_named_at_its_line(
    tmp_path: Path, section: str, where: str
) -> None:
    """What pydantic alone accepts but the analytics engine refuses (a season shorter than
    the recent window, an unknown or infinite threshold) and a retention shorter than the
    monitor's replay: the field and its line, not a traceback when the operator is built."""
    from operators.config import OperatorConfig
    from operators.config_file import ConfigFileError, load_yaml_model

    path = tmp_path / "operator.yaml"
    path.write_text(
        "id: telco-es\ndisplay_name: Telco\ncountry: ES\nmcc: '214'\nmnc: '07'\n"
        f"number_ranges: ['+3460']\nanalytics:\n{section}"
    )
    with pytest.raises(ConfigFileError) as refused:
        load_yaml_model(path, OperatorConfig)
    assert f"{path}:{where}" in str(refused.value)
