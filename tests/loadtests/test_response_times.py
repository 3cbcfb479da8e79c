"""Locust's percentiles to the millisecond: the capacity benchmark's p95 bound depends on them.

Locust is imported here without its gevent monkey-patching (``LOCUST_SKIP_MONKEY_PATCH``,
set only while it is imported): patching the test process would break pytest's own workers.
Its statistics classes need no patching.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

# A light load's served calls: 96 between 150 and 184.2 ms, then four at 400 ms. Locust's
# percentile is the value at index int(0.95 * 100) of the sorted times: the 96th, 184.2 ms.
LIGHT_LOAD = [150.0 + i * 0.36 for i in range(96)] + [400.0] * 4


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``locust.stats``; whatever a test installs, the next finds Locust's rounding as it was."""
    monkeypatch.setenv("LOCUST_SKIP_MONKEY_PATCH", "1")
    module = importlib.import_module("locust.stats")
    monkeypatch.delenv("LOCUST_SKIP_MONKEY_PATCH")  # the Locust processes tests start do patch
    saved = module.bucket_response_time
    yield module
    module.bucket_response_time = saved


@pytest.fixture
def times(stats: ModuleType) -> ModuleType:
    return importlib.import_module("loadtests.response_times")


def _p95(stats: Any, response_times: list[float]) -> int:
    entry = stats.StatsEntry(stats.RequestStats(), "served", "", use_response_times_cache=False)
    for response_time in response_times:
        entry.log(response_time, 0)
    return int(entry.get_response_time_percentile(0.95))


def test_whole_milliseconds_below_ten_seconds_and_whole_seconds_above(times: Any) -> None:
    whole = times.whole_milliseconds
    assert whole(147.4) == 147
    assert whole(147.6) == 148
    assert whole(3.2) == 3
    assert whole(times.FINE_UP_TO - 0.6) == times.FINE_UP_TO - 1
    assert whole(12_345.6) == 12_000  # to the second, as Locust rounds there
    assert whole(58_760) == 59_000


def test_the_p95_is_read_to_the_millisecond_once_installed(stats: Any, times: Any) -> None:
    assert _p95(stats, LIGHT_LOAD) == 180  # Locust's own steps of 10 ms
    times.use_whole_milliseconds()
    assert _p95(stats, LIGHT_LOAD) == 184


def test_a_master_keeps_the_milliseconds_its_workers_report(stats: Any, times: Any) -> None:
    """Two workers' reports go through Locust's own distributed path (its listeners and its
    wire encoding) to a master that does not round them again: its p95 is the workers'."""
    event = importlib.import_module("locust.event")
    protocol = importlib.import_module("locust.rpc.protocol")
    locust_rounding = stats.bucket_response_time
    times.use_whole_milliseconds()
    workers = []
    for _ in range(2):
        events, worker = event.Events(), stats.RequestStats()
        stats.setup_distributed_stats_event_listeners(events, worker)
        workers.append((events, worker))
    for index, response_time in enumerate(LIGHT_LOAD):
        workers[index % 2][1].log_request("POST", "check", response_time, 0)
    stats.bucket_response_time = locust_rounding  # the master's own would not matter
    master_events, master = event.Events(), stats.RequestStats()
    stats.setup_distributed_stats_event_listeners(master_events, master)
    for index, (events, _) in enumerate(workers):
        data: dict[str, Any] = {}
        events.report_to_master.fire(client_id=f"worker-{index}", data=data)
        wire = protocol.Message("stats", data, f"worker-{index}").serialize()
        received = protocol.Message.unserialize(wire)
        master_events.worker_report.fire(client_id=received.node_id, data=received.data)
    total = master.get("check", "POST")
    assert total.num_requests == len(LIGHT_LOAD)
    assert total.get_response_time_percentile(0.95) == 184
    assert total.get_response_time_percentile(0.5) == 168  # index 50: 150 + 50 * 0.36
