"""The records both modes fill: distinct counting up to its cap, buckets folding calls."""

from __future__ import annotations

import pytest

from operators.analytics.records import MAX_DISTINCT, MAX_SOURCES, DistinctCounter, UsageBucket


def test_distinct_counter_is_exact_below_the_cap_one_by_one_or_in_bulk() -> None:
    one_by_one = DistinctCounter()
    for key in ["a", "b", "a", "c"]:
        one_by_one.add(key)
    in_bulk = DistinctCounter(["a", "b"])
    in_bulk.update(["a", "c", "c"])
    assert one_by_one.count == in_bulk.count == 3
    assert one_by_one.keys == in_bulk.keys == frozenset("abc")


@pytest.mark.parametrize("bulk", [True, False])
def test_distinct_counter_saturates_at_the_cap_and_keeps_no_more_keys(bulk: bool) -> None:
    counter = DistinctCounter()
    keys = [f"+3460{n:07d}" for n in range(MAX_DISTINCT + 500)]
    if bulk:
        counter.update(keys)
    else:
        for key in keys:
            counter.add(key)
    assert counter.count == MAX_DISTINCT
    assert len(counter.keys) == MAX_DISTINCT
    counter.update(["new"])
    assert counter.count == MAX_DISTINCT


def test_exactly_the_cap_is_not_saturated_and_merging_past_it_is() -> None:
    full = DistinctCounter(str(n) for n in range(MAX_DISTINCT))
    assert full.count == MAX_DISTINCT
    other = DistinctCounter(["x"])
    other.merge(full)
    assert other.count == MAX_DISTINCT
    assert len(other.keys) == MAX_DISTINCT


def test_a_bucket_classifies_answers_and_caps_its_sources() -> None:
    bucket = UsageBucket("app", "sim-swap", 3600.0)
    for status in (200, 201, 404, 500, 429, 429):
        bucket.add_call(status, subscriber="+34600000001", source="10.0.0.0/24")
    assert (bucket.calls, bucket.successes, bucket.errors, bucket.throttled) == (6, 2, 2, 2)
    assert bucket.subscribers.count == 1
    for n in range(MAX_SOURCES + 3):
        bucket.add_source(f"net-{n}", 1)
    assert len(bucket.sources) == MAX_SOURCES + 1  # the kept ones and "(other)"
    assert bucket.sources["(other)"] == 4


def test_only_parts_of_the_same_bucket_merge() -> None:
    first = UsageBucket("app", "sim-swap", 0.0, calls=2, successes=2)
    first.merge(UsageBucket("app", "sim-swap", 0.0, calls=3, errors=3))
    assert (first.calls, first.successes, first.errors) == (5, 2, 3)
    with pytest.raises(ValueError, match="same application"):
        first.merge(UsageBucket("app", "sim-swap", 3600.0))
