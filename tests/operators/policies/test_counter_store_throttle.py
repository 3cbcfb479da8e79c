"""Throttles of several gateway replicas sharing one Redis grant an application's limits once."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from operators.config import Plan, Quota, QuotaPeriod
from operators.policies import (
    InMemoryCounterStore,
    RedisCounterStore,
    Throttle,
    gateway_throttle,
)
from tests.operators.policies.conftest import FakeClock

_prefixes = itertools.count()


@pytest.fixture
def shared(redis_server: str) -> Iterator[list[RedisCounterStore]]:
    """Two stores (two replicas' connections) on one server under one fresh prefix."""
    prefix = f"replicas{next(_prefixes)}:"
    stores = [RedisCounterStore.from_url(redis_server, prefix=prefix) for _ in range(2)]
    yield stores
    for store in stores:
        store.client.close()


def test_two_replicas_grant_the_burst_once_not_twice(
    shared: list[RedisCounterStore], fake_clock: FakeClock
) -> None:
    replicas = [Throttle(fake_clock, store=store) for store in shared]
    plan = Plan(name="free", rate_per_second=1.0, burst=4)
    granted = [replicas[i % 2].check("app|sim-swap", plan).allowed for i in range(10)]
    assert granted.count(True) == 4
    refused = replicas[0].check("app|sim-swap", plan)
    assert (refused.code, refused.retry_after) == ("TOO_MANY_REQUESTS", 1.0)
    fake_clock.advance(1.0)
    assert replicas[1].check("app|sim-swap", plan).allowed  # the token that came back, once
    assert not replicas[0].check("app|sim-swap", plan).allowed


def test_two_replicas_share_one_quota(shared: list[RedisCounterStore]) -> None:
    monotonic, calendar = FakeClock(), FakeClock(start=1_800_000_000.0)
    replicas = [Throttle(monotonic, calendar_clock=calendar, store=store) for store in shared]
    plan = Plan(
        name="gold", rate_per_second=100.0, burst=100, quota=Quota(limit=5, period=QuotaPeriod.DAY)
    )
    codes = [replicas[i % 2].check("app|kyc", plan).code for i in range(8)]
    assert codes == [None] * 5 + ["QUOTA_EXCEEDED"] * 3


def test_a_restarted_replica_continues_the_monthly_quota(
    redis_server: str, fake_clock: FakeClock
) -> None:
    calendar = FakeClock(start=1_800_000_000.0)
    monthly = Quota(limit=3, period=QuotaPeriod.MONTH)
    plan = Plan(name="payg", rate_per_second=100.0, burst=100, quota=monthly)
    before = RedisCounterStore.from_url(redis_server, prefix="throttle-restart:")
    assert all(
        Throttle(fake_clock, calendar_clock=calendar, store=before).check("app", plan).allowed
        for _ in range(3)
    )
    before.client.close()
    after = RedisCounterStore.from_url(redis_server, prefix="throttle-restart:")
    restarted = Throttle(FakeClock(start=5.0), calendar_clock=calendar, store=after)
    assert restarted.check("app", plan).code == "QUOTA_EXCEEDED"
    after.client.close()


def test_forget_reaches_the_shared_counters(shared: list[RedisCounterStore]) -> None:
    clock = FakeClock()
    first, second = (Throttle(clock, store=store) for store in shared)
    plan = Plan(name="free", rate_per_second=1.0, burst=1)
    assert first.check("app", plan).allowed
    assert not second.check("app", plan).allowed
    assert second.tracked == 1
    second.forget("app")
    assert first.tracked == 0
    assert first.check("app", plan).allowed


def test_a_gateway_throttle_with_a_url_keeps_its_counters_in_redis_per_operator(
    redis_server: str,
) -> None:
    monotonic, calendar = FakeClock(start=3.0), FakeClock(start=1_800_000_000.0)
    plan = Plan(name="free", rate_per_second=1.0, burst=1)
    es, fr = (
        gateway_throttle(redis_server, monotonic=monotonic, calendar=calendar, namespace=name)
        for name in ("telco-es", "telco-fr")
    )
    assert isinstance(es.store, RedisCounterStore)
    assert es.check("app", plan).allowed
    assert fr.check("app", plan).allowed  # another operator: its own counters
    assert es.store.client.exists("ogsim:telco-es:{app#free}:b")
    assert not es.check("app", plan).allowed
    calendar.advance(1.0)  # buckets in Redis run on the calendar clock, shared across hosts
    assert es.check("app", plan).allowed
    es.store.client.close()
    fr.store.client.close()


def test_a_gateway_throttle_without_a_url_stays_in_memory(fake_clock: FakeClock) -> None:
    throttle = gateway_throttle(None, monotonic=fake_clock, calendar=fake_clock, namespace="x")
    assert isinstance(throttle.store, InMemoryCounterStore)


def test_an_unreachable_redis_fails_open_and_is_counted() -> None:
    """A counter outage must not become an API outage (nor a 500): the call passes."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisCounterStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    throttle = Throttle(FakeClock(), store=store)
    plan = Plan(name="free", rate_per_second=1.0, burst=1)
    assert throttle.check("app", plan).allowed
    assert store.failures == 1
    store.close()  # its probe would ping the empty port for the rest of the run
    strict = RedisCounterStore.from_url(f"redis://127.0.0.1:{port}/0", fail_open=False)
    with pytest.raises(redis.RedisError):
        Throttle(FakeClock(), store=strict).check("app", plan)


class _FlakyRedis:
    """A real client whose server can be made unreachable: while ``down``, each script call
    and ping raises the timeout a dead server gives (counted here instead of waited)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.down = False
        self.asked = 0
        self.pinged = 0

    def register_script(self, source: str) -> Any:
        script = self.client.register_script(source)

        def run(**kwargs: Any) -> Any:
            self.asked += 1
            if self.down:
                raise redis.TimeoutError("Timeout reading from socket")
            return script(**kwargs)

        return run

    def ping(self) -> bool:
        self.pinged += 1
        if self.down:
            raise redis.TimeoutError("Timeout reading from socket")
        return bool(self.client.ping())

    def close(self) -> None:
        self.client.close()


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60  # comes within milliseconds; generous for a busy machine
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert condition()


def test_an_outage_costs_one_timeout_and_a_probe_brings_redis_back(redis_server: str) -> None:
    """The client is synchronous, on the gateway's event loop: a dead Redis is asked once, then
    a thread pings it (before, the loop asked again every 5 s, paying the timeout each time);
    meanwhile this process's own counters enforce the plan, and once a ping is answered the
    calls go to Redis again."""
    flaky = _FlakyRedis(redis.Redis.from_url(redis_server))
    store = RedisCounterStore(cast(Any, flaky), prefix=f"flaky{next(_prefixes)}:",
                              probe_interval=0.01)
    clock = FakeClock()
    throttle = Throttle(clock, store=store)
    plan = Plan(name="free", rate_per_second=1.0, burst=2)
    try:
        flaky.down = True
        decisions = [throttle.check("app", plan).allowed for _ in range(10)]
        assert decisions == [True, True] + [False] * 8, "the burst, then the local bucket"
        assert flaky.asked == 1 and store.failures == 10 and store.in_outage
        _until(lambda: flaky.pinged >= 3)
        clock.advance(60)
        assert throttle.check("app", plan).allowed, "the local bucket refilled"
        assert flaky.asked == 1, "the loop never asked the dead server again"
        flaky.down = False
        _until(lambda: not store.in_outage)
        assert throttle.check("app", plan).allowed
        assert flaky.asked == 2 and store.failures == 11, "decided by Redis again"
    finally:
        store.close()


def test_closing_during_an_outage_stops_the_probe_and_asks_redis_no_more(
        redis_server: str) -> None:
    """Before, the probe ended on close as if Redis had answered: the store said the outage
    was over and the next call asked the closed client."""
    flaky = _FlakyRedis(redis.Redis.from_url(redis_server))
    store = RedisCounterStore(cast(Any, flaky), prefix=f"flaky{next(_prefixes)}:",
                              probe_interval=0.01)
    throttle = Throttle(FakeClock(), store=store)
    plan = Plan(name="free", rate_per_second=1.0, burst=2)
    flaky.down = True
    assert throttle.check("app", plan).allowed
    _until(lambda: flaky.pinged >= 1)
    store.close()
    pinged = flaky.pinged
    assert store.in_outage
    assert throttle.check("app", plan).allowed
    assert flaky.asked == 1 and flaky.pinged == pinged, "neither the loop nor a probe asks"
    with pytest.raises(redis.ConnectionError, match="closed"):
        store.take_token("app", 1.0, 1, 0.0)
    with pytest.raises(redis.ConnectionError, match="closed"):
        store.forget("app")
    assert flaky.asked == 1, "not reconnected behind the owner's back"


def test_an_operator_closes_the_redis_store_it_built(redis_server: str) -> None:
    from operators.config import example_operator
    from operators.operator import Operator

    operator = Operator.from_config(example_operator().model_copy(
        update={"redis_url": redis_server}))
    assert operator.owned_throttle is not None
    store = operator.owned_throttle.store
    assert isinstance(store, RedisCounterStore) and not store.in_outage
    operator.close()
    assert store.in_outage, "closed: decided by the process's own counters from now on"
