"""``benchmarks/federation_capacity.py``'s ladder: where it stops and how it refines.

The ladder runs Locust in the benchmark; here each level is read off a made-up p95 curve, so
the stopping rule, the confirmation and the halving of the last gap are checked without a
federation."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from federation import default_federation

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import federation_capacity  # noqa: E402
from federation_capacity import (  # noqa: E402
    Backends,
    Demand,
    Ladder,
    Level,
    Meter,
    busiest,
    climb,
    federation_backends,
    federation_level,
    scaled_core,
    served_between,
)


def curve(knee: int) -> tuple[list[int], Callable[[int, Path], None], Callable[..., Level]]:
    """A p95 of 100 ms up to ``knee`` users and 300 ms above; the runs it was asked for."""
    ran: list[int] = []

    def run(users: int, folder: Path) -> None:
        ran.append(users)

    def read(users: int, folder: Path) -> Level:
        p95 = 100.0 if users <= knee else 300.0
        return Level(users, rps=users * 4.0, p50=20.0, p95=p95, failures=0.0, requests=1000)

    return ran, run, read


def ladder_for(
    knee: int, levels: list[int], tmp_path: Path, **options: int
) -> tuple[Ladder, list[int]]:
    ran, run, read = curve(knee)
    ladder = climb("federation", levels, run, read, tmp_path, Meter({}), confirm=False, **options)
    return ladder, ran


def test_without_refinement_the_capacity_is_the_last_level_within_the_bounds(
    tmp_path: Path,
) -> None:
    ladder, ran = ladder_for(150, [10, 90, 130, 180, 240], tmp_path)
    assert ran == [10, 90, 130, 180]  # stops at the first level beyond the bounds
    assert ladder.best is not None and ladder.best.users == 130
    assert ladder.saturated


@pytest.mark.parametrize(
    ("knee", "expected_runs", "best"),
    [
        (150, [155, 142], 142),  # 155 beyond, 142 within
        (170, [155, 167], 167),  # both within: the gap closes on the bad side
        (131, [155, 142], 130),  # both beyond: the capacity stays where the ladder had it
    ],
)
def test_refinement_halves_the_last_gap(
    tmp_path: Path, knee: int, expected_runs: list[int], best: int
) -> None:
    ladder, ran = ladder_for(knee, [10, 90, 130, 180], tmp_path, refine=2)
    assert ran == [10, 90, 130, 180, *expected_runs]
    assert ladder.best is not None and ladder.best.users == best


def test_no_refinement_when_no_level_broke_a_bound(tmp_path: Path) -> None:
    ladder, ran = ladder_for(10_000, [10, 90, 130], tmp_path, refine=2)
    assert ran == [10, 90, 130]
    assert not ladder.saturated


def test_a_level_beyond_the_bounds_is_confirmed_and_only_its_second_run_counts(
    tmp_path: Path,
) -> None:
    """Noise: each level's first run at 155 users and above is slow, its second is not, up to
    200 users; the ladder goes on past a first run that a second contradicts, and a refined
    level is confirmed the same way."""
    ran: list[str] = []

    def run(users: int, folder: Path) -> None:
        ran.append(folder.name)

    def read(users: int, folder: Path) -> Level:
        first = folder.name.endswith("-1")
        p95 = 300.0 if users > 200 or (first and users >= 155) else 100.0
        return Level(users, rps=users * 4.0, p50=20.0, p95=p95, failures=0.0, requests=1000)

    ladder = climb("f", [10, 180, 240], run, read, tmp_path, Meter({}), refine=1)
    assert ran == ["f-10-1", "f-180-1", "f-180-2", "f-240-1", "f-240-2", "f-210-1", "f-210-2"]
    assert [level.users for level in ladder.levels] == [10, 180, 240, 210]
    assert ladder.best is not None and ladder.best.users == 180


def test_refinement_stops_when_the_gap_is_closed(tmp_path: Path) -> None:
    ladder, ran = ladder_for(10, [10, 11, 12], tmp_path, refine=3)
    assert ran == [10, 11]  # 11 broke the bound; nothing lies between 10 and 11
    assert ladder.best is not None and ladder.best.users == 10


def test_core_scale_multiplies_servers_and_waiting_room_only() -> None:
    base = default_federation()
    scaled = scaled_core(base, 8)
    for before, after in zip(base.operators, scaled.operators, strict=True):
        for slot, function in before.core.functions().items():
            grown = after.core.functions()[slot]
            assert grown.servers == 8 * function.servers
            assert grown.queue_limit == (
                None if function.queue_limit is None else 8 * function.queue_limit
            )
            assert grown.service_time == function.service_time
        assert after.model_copy(update={"core": before.core}) == before
    assert scaled_core(base, 1) == base


def test_a_level_counts_every_failed_served_call(tmp_path: Path) -> None:
    """The load test's own share of failed served calls, QoD's included (throttling and
    protective refusals are not served calls, so not in it)."""
    summary = {
        "served": {"requests": 2000, "failures": 30, "failureRatio": 0.015, "rps": 80.0,
                   "p50": 20.0, "p95": 150.0, "p99": 300.0},
        "throttled": 12,
        "protective": 3,
        "failuresByRequest": {"POST qod create": 20, "POST sim swap check": 10},
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    level = federation_level(40, tmp_path)
    assert level.failures == 0.015  # over the 1 % bound: QoD's failures are not left out
    assert (level.users, level.rps, level.p95, level.requests) == (40, 80.0, 150.0, 2000)
    assert not Ladder("federation", [level]).within(level)


def test_the_busiest_replica_is_the_one_whose_servers_fill_first() -> None:
    """Per served call, Madrid's location server holds 9 server-ms over 4 servers (bound 444
    calls/s) and its HLR 2 over 8 (4,000): the location server bounds the mix."""
    busy = {
        ("es", "madrid", "location_server"): 9.0,
        ("es", "madrid", "sim_data_register"): 2.0,
        ("fr", "paris", "kyc_register"): 0.0,
    }
    servers = {("es", "location_server"): 4, ("es", "sim_data_register"): 8,
               ("fr", "kyc_register"): 2}  # fmt: skip
    found = busiest(busy, servers, requests=1000)
    assert found == Demand("es", "madrid", "location_server", 9.0, 4)
    assert found.bound == pytest.approx(4000 / 9)
    assert busiest({("fr", "paris", "kyc_register"): 0.0}, servers, requests=1000) is None
    assert busiest(busy, servers, requests=0) is None


def test_a_site_taking_more_than_its_share_bounds_its_operator() -> None:
    """telco-gb's balancer sends London two calls for Manchester's one: pooled, its eight
    servers would read 8000/9 = 889 calls/s; London's four, at 6 of the 9 ms, fill at 667."""
    busy = {("gb", "london", "location_server"): 6.0, ("gb", "manchester", "location_server"): 3.0}
    found = busiest(busy, {("gb", "location_server"): 4}, requests=1000)
    assert found is not None and found.site == "london"
    assert found.bound == pytest.approx(4000 / 6)


def test_each_replica_has_the_servers_of_the_operators_core() -> None:
    config = default_federation()
    described = {
        "operators": [
            {"id": op.id, "apiRoot": f"http://127.0.0.1:{9000 + i}",
             "dataCentres": [dc.name for dc in op.data_centres]}
            for i, op in enumerate(config.operators)
        ]
    }  # fmt: skip
    backends = federation_backends(described, config)
    es = config.operators[0]
    location = backends.servers[es.id, "location_server"]
    assert location == es.core.location_server.servers
    assert backends.sites[es.id] == ("http://127.0.0.1:9000", ("madrid", "barcelona"))
    scaled = federation_backends(described, scaled_core(config, 8))
    assert scaled.servers[es.id, "location_server"] == 8 * location


class _Readings(Backends):
    """Busy seconds read off a list instead of the operators' metrics."""

    def __init__(self, readings: list[dict[tuple[str, str, str], float]]) -> None:
        super().__init__({}, {("es", "location_server"): 4, ("es", "sim_data_register"): 8})
        object.__setattr__(self, "readings", readings)

    def busy_seconds(self) -> dict[tuple[str, str, str], float]:
        readings: list[dict[tuple[str, str, str], float]] = self.readings  # type: ignore[attr-defined]
        return readings.pop(0)


def test_a_level_is_bounded_by_what_its_calls_kept_busy() -> None:
    """Only the level's own busy time counts (the readings before it are taken off)."""
    meter = Meter({}, None, _Readings([
        {("es", "madrid", "location_server"): 100.0, ("es", "madrid", "sim_data_register"): 50.0},
        {("es", "madrid", "location_server"): 109.0, ("es", "madrid", "sim_data_register"): 52.0},
    ]))  # fmt: skip
    meter.start()
    level = meter.stop(Level(60, rps=300.0, p50=20.0, p95=170.0, failures=0.0, requests=1000))
    assert level.busiest == Demand("es", "madrid", "location_server", pytest.approx(9.0), 4)
    assert level.model_bound == pytest.approx(4000 / 9)


def _history(
    path: Path,
    totals: dict[int, tuple[int, int]],
    refused: dict[str, dict[int, int]] | None = None,
    *,
    entries: bool = True,
) -> Path:
    """A Locust stats history: (users, running total) per second, each with a named row too
    (unless not ``entries``), and rows of the request types in ``refused`` from the seconds
    that give their running totals."""
    lines = ["Timestamp,User Count,Type,Name,Requests/s,Total Request Count"]
    for stamp, (users, total) in totals.items():
        if entries:
            lines.append(f"{stamp},{users},POST,sim swap check,1.0,{total // 2}")
        for kind, running in (refused or {}).items():
            if stamp in running:
                lines.append(f"{stamp},{users},{kind},sim swap check,1.0,{running[stamp]}")
        lines.append(f"{stamp},{users},,Aggregated,1.0,{total}")
    history = path / "locust_stats_history.csv"
    history.write_text("\n".join(lines) + "\n")
    return history


RUN = {100: (0, 0), 101: (60, 40), 102: (60, 400), 103: (60, 900), 104: (60, 1400),
       105: (60, 1500)}  # fmt: skip


def test_calls_between_two_marks_come_from_the_running_total(tmp_path: Path) -> None:
    history = _history(tmp_path, RUN)
    assert served_between(history, 102.5, 104.2) == 1400 - 400
    assert math.isnan(served_between(history, 99.0, 104.0))  # before the history began
    assert math.isnan(served_between(tmp_path / "missing.csv", 102.0, 104.0))
    spawning = _history(tmp_path, {100: (0, 0), 101: (30, 40), 102: (60, 400), 103: (60, 900)})
    assert math.isnan(served_between(spawning, 101.5, 103.0))  # not every user ran yet


def test_throttled_and_protective_requests_are_not_served_calls(tmp_path: Path) -> None:
    """The first 429 comes after the first mark (none then), 70 more by the second; the
    protective 503s went from 5 to 9 between the marks."""
    refused = {"429": {103: 30, 104: 70, 105: 90}, "503 protective": {101: 2, 102: 5, 104: 9}}
    history = _history(tmp_path, RUN, refused)
    assert served_between(history, 102.5, 104.2) == (1400 - 400) - 70 - (9 - 5)
    assert served_between(history, 103.5, 105.0) == (1500 - 900) - (90 - 30) - (9 - 5)


def test_a_history_without_its_entries_counts_no_calls(tmp_path: Path) -> None:
    """Without ``--csv-full-history`` the throttled requests cannot be told apart."""
    history = _history(tmp_path, RUN, {"429": {103: 30}}, entries=False)
    history.write_text(
        "\n".join(line for line in history.read_text().splitlines() if ",429," not in line)
    )
    assert math.isnan(served_between(history, 102.5, 104.2))


def test_locusts_steady_cost_is_read_between_its_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 CPU seconds over the level, 3 of them between the marks, over the 1,000 calls the
    history counts between them: 3 ms a call; start-up and shutdown left out."""
    reaped = iter([10.0, 16.0])
    monkeypatch.setattr(federation_capacity, "reaped_children_cpu", lambda: next(reaped))
    _history(tmp_path, RUN)
    meter = Meter({}, level_seconds=1.0)  # too short for marks of its own: taken by hand
    meter.start()
    meter._watch.marks = [(102.5, 2.0), (104.2, 5.0)]
    level = meter.stop(
        Level(60, rps=52.0, p50=20.0, p95=170.0, failures=0.0, requests=1500), tmp_path
    )
    assert level.locust_cpu_ms == pytest.approx(1000 * 6 / 1500)  # start-up included
    assert level.locust_steady_ms == pytest.approx(1000 * 3 / 1000)
    # the cores over the servers' CPU (none here) and Locust's steady cost, not its start-up
    assert level.shared_cpu_bound == pytest.approx(federation_capacity.CORES * 1000 / 3.0)


def test_a_mark_reads_the_tracked_processes_and_only_them() -> None:
    watch = federation_capacity.LocustWatch([os.getpid()])
    watch.mark()
    watch.mark()
    window = watch.window
    assert window is not None and window[2] >= 0 and window[1] >= window[0]
    nobody = federation_capacity.LocustWatch()
    nobody.mark()
    assert nobody.window is None  # no process handed over: no figure, rather than zero
