"""Usage buckets as the gateway records them: one per application, API and bucket of time,
answers classified, subscribers counted by keyed hash only, sources by network; parts merged
across batches, replicas and restarts; nothing lost when a write fails or at stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from operators.analytics.records import UsageBucket
from operators.analytics.usage_recorder import UsageRecorder, source_of
from operators.storage import Database

START = 1_790_000_000.0 // 60 * 60  # a whole minute, so 60 s buckets start here
NUMBER = "+34600000001"


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FailingDatabase(Database):
    """A file database whose transactions fail while ``failing`` is set."""

    failing = False

    def transaction(self):  # type: ignore[no-untyped-def]
        if self.failing:
            raise OSError("disk full")
        return super().transaction()


def only(buckets: list[UsageBucket]) -> UsageBucket:
    assert len(buckets) == 1, buckets
    return buckets[0]


def test_source_is_the_callers_network() -> None:
    assert source_of("203.0.113.7") == "203.0.113.0/24"
    assert source_of("127.0.2.1") == "127.0.2.0/24"
    assert source_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert source_of("testclient") == "testclient"


def test_an_ipv4_mapped_address_counts_as_its_ipv4_network() -> None:
    """A dual-stack listener reports an IPv4 caller as ``::ffff:a.b.c.d``: the same /24."""
    assert source_of("::ffff:203.0.113.7") == "203.0.113.0/24"
    assert source_of("::ffff:127.0.2.1") == source_of("127.0.2.1") == "127.0.2.0/24"
    assert source_of("::FFFF:cb00:7109") == "203.0.113.0/24"  # the same, in hexadecimal
    assert source_of("::ffff:203.0.114.7") != source_of("::ffff:203.0.113.7")
    assert source_of("::1") == "::/64"


def test_calls_fold_into_buckets_per_application_api_and_time(tmp_path: Path) -> None:
    clock = FakeClock()
    recorder = UsageRecorder(Database(str(tmp_path / "op.db")), clock, bucket_seconds=60)
    for status in (200, 201, 404, 429, 503, 302):
        recorder.record("app", "sim-swap", status, subscriber=NUMBER, host="203.0.113.7")
    recorder.record("app", "sim-swap", 200, subscriber="+34600000002", host="2001:db8::1")
    recorder.record("other", "sim-swap", 200)
    clock.advance(60)
    recorder.record("app", "sim-swap", 200, subscriber=NUMBER, host="203.0.113.9")
    assert recorder.pending_calls == 9
    assert recorder.flush() == 9
    first = recorder.read_buckets(START, START + 60, client_ids=["app"])
    bucket = only(first)
    assert (bucket.start, bucket.calls, bucket.successes, bucket.errors, bucket.throttled) == (
        START,
        7,
        3,
        2,
        1,
    )  # 302 is neither a success nor an error
    assert bucket.subscribers.count == 2
    assert bucket.sources == {"203.0.113.0/24": 6, "2001:db8::/64": 1}
    assert only(recorder.read_buckets(START, START + 60, client_ids=["other"])).sources == {}
    later = only(recorder.read_buckets(START + 60, None))
    assert later.calls == 1 and later.subscribers.keys == {recorder.subscriber_key(NUMBER)}
    assert [b.start for b in recorder.read_buckets()] == [START, START, START + 60]
    assert recorder.read_buckets(client_ids=[]) == []


def test_no_number_is_stored_only_its_keyed_hash(tmp_path: Path) -> None:
    path = tmp_path / "op.db"
    recorder = UsageRecorder(Database(str(path)), FakeClock(), bucket_seconds=60)
    recorder.record("app", "sim-swap", 200, subscriber=NUMBER)
    recorder.flush()
    recorder.db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert NUMBER.encode() not in raw and NUMBER[1:].encode() not in raw
    key = recorder.subscriber_key(NUMBER)
    assert len(key) == 16 and key != recorder.subscriber_key("+34600000002")


def test_a_configured_key_hashes_alike_everywhere_and_stays_out_of_the_database(
    tmp_path: Path,
) -> None:
    """``analytics.subscriber_key`` reaches the gateway's recorder; the database keeps no key
    then (a copy of the file alone cannot confirm a guessed number)."""
    from operators.config import example_operator
    from operators.operator import Operator

    key = "a-configured-subscriber-key"
    base = example_operator(storage=str(tmp_path / "op.db"))
    config = base.model_copy(
        update={"analytics": base.analytics.model_copy(update={"subscriber_key": key})}
    )
    operator = Operator.from_config(config)
    try:
        recorder = operator.gateway.usage
        elsewhere = UsageRecorder(Database(str(tmp_path / "other.db")), subscriber_key=key)
        drawn = UsageRecorder(Database(str(tmp_path / "drawn.db")))
        assert recorder.subscriber_key(NUMBER) == elsewhere.subscriber_key(NUMBER)
        assert drawn.subscriber_key(NUMBER) != recorder.subscriber_key(NUMBER)
        assert operator.db.all("SELECT name FROM analytics_keys") == []
        assert [r["name"] for r in drawn.db.all("SELECT name FROM analytics_keys")] == [
            "subscriber"
        ]
    finally:
        operator.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("op.db*"))
    assert key.encode() not in raw


def test_parts_merge_across_batches_replicas_and_restarts(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "shared.db")
    one = UsageRecorder(Database(path), clock, bucket_seconds=60)
    two = UsageRecorder(Database(path), clock, bucket_seconds=60)  # another replica
    assert one.subscriber_key(NUMBER) == two.subscriber_key(NUMBER), "one key per database"
    one.record("app", "kyc-match", 200, subscriber=NUMBER, host="10.0.0.1")
    one.flush()
    one.record("app", "kyc-match", 500, subscriber="+34600000002", host="10.0.0.1")
    two.record("app", "kyc-match", 200, subscriber=NUMBER, host="10.9.0.1")
    one.flush()
    two.flush()
    restarted = UsageRecorder(Database(path), clock, bucket_seconds=60)
    restarted.record("app", "kyc-match", 429, subscriber="+34600000003")
    restarted.flush()
    bucket = only(restarted.read_buckets())
    assert (bucket.calls, bucket.successes, bucket.errors, bucket.throttled) == (4, 2, 1, 1)
    assert bucket.subscribers.count == 3, "one subscriber counted once, whoever served them"
    assert bucket.sources == {"10.0.0.0/24": 2, "10.9.0.0/24": 1}


def test_a_saturated_count_stays_saturated_when_read_back(tmp_path: Path) -> None:
    from operators.analytics.records import MAX_DISTINCT

    recorder = UsageRecorder(Database(str(tmp_path / "op.db")), FakeClock(), bucket_seconds=60)
    for n in range(MAX_DISTINCT + 10):
        recorder.record("enumerator", "sim-swap", 200, subscriber=f"+346{n:08d}")
    recorder.flush()
    recorder.record("enumerator", "sim-swap", 200, subscriber="+34699999999")
    recorder.flush()
    assert only(recorder.read_buckets()).subscribers.count == MAX_DISTINCT


def test_another_bucket_length_is_kept_apart(tmp_path: Path) -> None:
    clock = FakeClock()
    path = str(tmp_path / "op.db")
    hourly = UsageRecorder(Database(path), clock)
    hourly.record("app", "sim-swap", 200)
    hourly.flush()
    minutely = UsageRecorder(Database(path), clock, bucket_seconds=60)
    minutely.record("app", "sim-swap", 200)
    minutely.record("app", "sim-swap", 200)
    minutely.flush()
    assert only(minutely.read_buckets()).calls == 2
    assert only(hourly.read_buckets()).calls == 1
    assert only(minutely.read_buckets(seconds=3600)).calls == 1


def test_a_failed_write_keeps_the_calls_for_the_next(tmp_path: Path) -> None:
    db = FailingDatabase(str(tmp_path / "op.db"))
    recorder = UsageRecorder(db, FakeClock(), bucket_seconds=60)
    recorder.record("app", "sim-swap", 200, subscriber=NUMBER)
    db.failing = True
    with pytest.raises(OSError):
        recorder.flush()
    assert asyncio.run(recorder.flush_soon()) == 0
    recorder.record("app", "sim-swap", 200, subscriber="+34600000002")
    assert recorder.pending_calls == 2
    assert recorder.read_buckets() == []
    db.failing = False
    assert recorder.flush() == 2
    bucket = only(recorder.read_buckets())
    assert bucket.calls == 2 and bucket.subscribers.count == 2


def test_the_first_success_of_a_bucket_is_told_once(tmp_path: Path) -> None:
    told: list[tuple[str, str]] = []
    recorder = UsageRecorder(
        Database(str(tmp_path / "op.db")),
        FakeClock(),
        bucket_seconds=60,
        on_first_success=lambda c, a: told.append((c, a)),
    )
    recorder.record("app", "sim-swap", 403)
    assert told == []
    for _ in range(3):
        recorder.record("app", "sim-swap", 200)
    recorder.record("app", "kyc-match", 200)
    assert told == [("app", "sim-swap"), ("app", "kyc-match")]


async def test_the_writer_flushes_in_the_background_and_at_stop(tmp_path: Path) -> None:
    recorder = UsageRecorder(
        Database(str(tmp_path / "op.db")), FakeClock(), bucket_seconds=60, interval=0.05
    )
    await recorder.start()
    recorder.record("app", "sim-swap", 200)
    for _ in range(400):  # a generous bound: a loaded machine may take a while
        if recorder.read_buckets():
            break
        await asyncio.sleep(0.025)
    assert only(recorder.read_buckets()).calls == 1
    recorder.interval = 3600.0
    recorder.record("app", "sim-swap", 200)
    await recorder.stop()
    assert only(recorder.read_buckets()).calls == 2
    assert recorder.pending_calls == 0
