"""Global load balancer: failover after the threshold, return after recovery, weights, and
(property) never a request to a data centre marked down."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.config import DataCentre
from federation.global_load_balancer import (
    GlobalLoadBalancer,
    HealthPolicy,
    HealthTracker,
    NoHealthyDataCentreError,
)

from .conftest import FakeClock

POLICY = HealthPolicy(interval=5.0, failures_to_down=3, successes_to_up=2)


def balancer(clock: FakeClock, *weights: int) -> GlobalLoadBalancer:
    sites = [DataCentre(name=f"dc{i}", weight=w) for i, w in enumerate(weights, 1)]
    return GlobalLoadBalancer("telco-es", HealthTracker(sites, clock=clock, policy=POLICY))


def test_failover_after_the_threshold_and_back_after_recovery(clock: FakeClock) -> None:
    glb = balancer(clock, 1, 1)
    assert {glb.pick() for _ in range(4)} == {"dc1", "dc2"}
    for failures in range(1, 4):
        clock.advance(5)
        glb.record_check("dc2", healthy=False)
        assert glb.health.is_up("dc2") is (failures < 3), failures
    assert {glb.pick() for _ in range(10)} == {"dc1"}
    clock.advance(5)
    glb.record_check("dc2", healthy=True)
    assert not glb.health.is_up("dc2"), "one success is not enough"
    clock.advance(5)
    glb.record_check("dc2", healthy=True)
    assert {glb.pick() for _ in range(4)} == {"dc1", "dc2"}
    assert [(t.data_centre, t.up, t.at) for t in glb.health.transitions] == [
        ("dc2", False, 1015.0), ("dc2", True, 1025.0)]


def test_a_lost_probe_between_successes_does_not_flap(clock: FakeClock) -> None:
    glb = balancer(clock, 1, 1)
    for healthy in (False, False, True, False, False, True):
        glb.record_check("dc1", healthy)
    assert glb.health.is_up("dc1")


def test_weights_and_all_down(clock: FakeClock) -> None:
    glb = balancer(clock, 2, 1)
    counts = Counter(glb.pick() for _ in range(300))
    assert counts == {"dc1": 200, "dc2": 100}
    for name in ("dc1", "dc2"):
        for _ in range(3):
            glb.record_check(name, healthy=False)
    with pytest.raises(NoHealthyDataCentreError):
        glb.pick()


def test_checks_fall_due_on_the_interval(clock: FakeClock) -> None:
    glb = balancer(clock, 1, 1)
    assert glb.health.due() == ["dc1", "dc2"]
    glb.record_check("dc1", True)
    assert glb.health.due() == ["dc2"]
    assert glb.health.next_due_at() == clock.now
    glb.record_check("dc2", True)
    assert glb.health.due() == [] and glb.health.next_due_at() == clock.now + 5
    clock.advance(5)
    assert glb.health.due() == ["dc1", "dc2"]
    assert POLICY.detection_window == 15


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    steps=st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 3)),
                   max_size=60),
)
def test_never_routes_to_a_data_centre_marked_down(
    weights: list[int], steps: list[tuple[int, bool, int]]
) -> None:
    clock = FakeClock()
    glb = balancer(clock, *weights)
    names = glb.health.names()
    for site, healthy, picks in steps:
        clock.advance(1)
        glb.record_check(names[site % len(names)], healthy)
        for _ in range(picks):
            if not glb.health.up():
                with pytest.raises(NoHealthyDataCentreError):
                    glb.pick()
                continue
            assert glb.health.is_up(glb.pick())
