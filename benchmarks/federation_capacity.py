"""Capacity of the live federation on this machine, and of a bare endpoint beside it.

The capacity is the highest served rate whose p95 stays within 20 % of the p95 at light load
(the first level; or within 10 ms of it, whichever is more) and whose real failures stay under
1 % (the load test's own count: every failed served call, QoD's included; throttling and
protective refusals are reported apart, as ``ogsim loadtest`` does). A fixed limit such as 200
ms would measure the modelled backends' own service-time tail (already ~180 ms at 10 users),
not load. The bare ladder is allowed the same rise in milliseconds as the federation's ladder
(20 % of the federation's light-load p95, ~38 ms): 20 % of the bare endpoint's few milliseconds
is less than Locust's own timing jitter on 2 shared cores, which ended that ladder at 0.2 busy
cores of the server, on Locust's tail rather than the endpoint's limit.

Two ladders run in the same invocation, one after the other, at the same user counts, with the
same think time (uniform 0.5 to 1.5 s times ``--think-scale``) and the same Locust set-up (a
master and ``--workers`` workers on this machine, sharing its cores with the servers):

* **federation**: the default federation (four uvicorn processes on loopback) and the load
  test's applications (every one but the misbehaving ones, or those ``--user-class`` names):
  tokens, policies, backends, the aggregator's second hop;
* **bare**: one uvicorn process serving a FastAPI endpoint of SIM Swap's check shape
  (``benchmarks/gateway_throughput.py``'s ``bare_app``), posted to by
  ``benchmarks/bare_locustfile.py``.

Each ladder stops at its first level beyond the p95 bound or the failure bound, confirmed by
running that level once more (``--no-confirm`` stops at the first run beyond them); then
``--refine`` more levels (2 by default) halve the gap between the last level within the bounds
and the first beyond them, so a capacity is not read off a coarse step of the ladder (a
refined level beyond the bounds is confirmed too: up to four more Locust runs a ladder). Both
ladders read their percentiles to the millisecond (``loadtests/response_times.py``): Locust's
own 10 ms steps between 100 ms and 1 s would put the federation's bound (20 % over a light
load of about 185 ms) on a grid of 12 ms steps (the bare ladder's, below 100 ms, are whole
milliseconds either way).

The operators' modelled network functions queue like the real ones: at the default size the
location server (four servers a replica, ~120 ms a call) is the first to queue, near 600 served
calls/s of this user mix, and its queue, not the federation's software, then sets the p95.
``--core-scale K`` gives every function K times the servers and waiting room (service times
unchanged; the federation YAML's ``operators[].core``), so the ladder finds the software's own
limit. The integrator's request buffer in front of each function still admits 16 calls at a time
(the default of the YAML's ``operators[].protection``, which ``--core-scale`` leaves alone): at
the ~30 location calls/s a replica sees near 900 served calls/s, about four are in service on
average, so the buffer does not bind at these rates. The bare
ladder does not stop at the last of ``--levels``: it grows its users by ``--bare-growth`` a
level until one breaks a bound (at most ``--bare-max-users``), so the ratio compares two
measured capacities; a ladder that never broke a bound is printed as a lower bound and the
ratio as a bound, not a measurement.

Beside each level's rate and latencies the script prints the CPU the servers spent per served
call (every party's process for the federation, the one uvicorn process for the bare endpoint:
``/proc``'s user + system time over the level), and for the federation the hub's CPU per hub
call (the hub's own ``ogsim_aggregator_request_seconds`` count), and the load generator's CPU
per served call (Locust's master and workers, which share the cores with the servers: once a
third of a worker's CPU went to checking answers). That last figure counts each level's Locust
start-up too (imports, the CAMARA definitions, the applications' first tokens and consents:
several CPU seconds a level, about ten for the federation's in a trial), which dominates the
light levels; read it at the busy ones. A second figure leaves the start-up and the shutdown
out: Locust's CPU between two marks inside the run, ten seconds after the level starts Locust
and three before its run time ends (its processes' ``/proc`` times), over the served calls its
per-second history counts between them (every request less the throttled and protective ones;
NaN when not every user ran yet at the first mark), printed under the level. Workers report
every three seconds, so one level's figure carries some noise; compare levels, not decimals.
On a machine shared with other work these figures move less than the rates do.

Each federation level also prints two bounds on what more of the same mix could reach, from the
utilisation law. **The model's**: every data centre's replica of each modelled network
function reports the server-seconds its calls held (``ogsim_backend_service_seconds``), so its
busy milliseconds per served call are measured, and the replica whose servers would all be
busy first bounds the served rate, whatever the software costs (each site on its own: a
balancer may send a site more than its share). **The CPU's**: the cores over the servers' CPU
per served call, and over the servers' and Locust's together (Locust's after its start-up
when measured). A capacity read off the p95 stays below the model's bound and the servers'
alone (queues grow well before servers are all busy). Locust's CPU per served call includes
what its throttled and protective requests cost it, as the servers' does.
The mix itself moves with load (telco-gb London's location server, the busiest, held about
6.4 server-ms per served call at 20 users and 4.9 at 180): a bound holds for the mix of its
level.

The script ends with both capacities, their ratio, the bounds at the federation's best level,
and the ``ogsim loadtest`` command that reproduces that level.

    .venv/bin/python benchmarks/federation_capacity.py [--levels 10,20,40,...]
        [--level-seconds 25] [--workers 1] [--refine 2] [--core-scale 1]
        [--user-class AntiFraudApp ...] [--skip-bare | --skip-federation]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from federation import FederationConfig, default_federation
from federation.ports import free_port
from loadtests.locust_run import LOCUSTFILE, federation_for_run, read_summary, run_locust
from loadtests.outcomes import REJECTION_TYPES
from sim.calibration_live import parse_backends, site_expositions

HERE = Path(__file__).resolve().parent
BARE_LOCUSTFILE = HERE / "bare_locustfile.py"
CLASSES = ["AntiFraudApp", "LocationApp", "QodApp", "AggregatorApp"]
P95_GROWTH = 1.2
"""A level keeps its p95 within this multiple of the light-load p95 ..."""
P95_SLACK_MS = 10.0
"""... or within this many milliseconds of it, whichever is more: Locust's timings on a shared
machine jitter by a few milliseconds, which would end a bare endpoint's ladder (light-load p95
~8 ms) on noise, not load."""
MAX_FAILURES = 0.01
HUB_CALLS = "ogsim_aggregator_request_seconds"
"""The hub's histogram of its CAMARA calls (:mod:`federation.aggregator_metrics`)."""
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
STEADY_AFTER = 10.0
"""Seconds into a level after which Locust's CPU counts as its steady cost per call: its
start-up (imports, the CAMARA definitions, the applications' first tokens and consents) comes
before."""
STEADY_BEFORE_END = 3.0
"""Seconds before the level's run time ends where that window closes (Locust's shutdown, its
reports and last counts, come after)."""


@dataclass(frozen=True)
class Level:
    """One step of a ladder: users, served calls/s, p50 and p95 in ms, failure share; the
    servers' CPU ms per served call and the hub's per hub call (NaN where not measured)."""

    users: int
    rps: float
    p50: float
    p95: float
    failures: float
    requests: int
    cpu_ms: float = float("nan")
    hub_cpu_ms: float = float("nan")
    by_party: tuple[tuple[str, float], ...] = ()
    """Each server process's CPU ms per served call (all calls, not only its own)."""
    locust_cpu_ms: float = float("nan")
    """The load generator's (Locust's master and workers) CPU ms per served call, its start-up
    included: it shares the cores with the servers, so what it spends the servers cannot."""
    locust_steady_ms: float = float("nan")
    """Locust's CPU ms per served call between :data:`STEADY_AFTER` seconds into the level
    and :data:`STEADY_BEFORE_END` before its end, its start-up and shutdown left out. The CPU
    its throttled and protective requests took is in it; those requests are not served calls."""
    busiest: Demand | None = None
    """The data centre's network function with the least room for more of this mix of calls."""

    @property
    def model_bound(self) -> float:
        """Served calls/s at which the busiest replica's servers would all be busy."""
        return self.busiest.bound if self.busiest is not None else float("nan")

    @property
    def cpu_bound(self) -> float:
        """Served calls/s at which the servers alone would fill every core."""
        return CORES * 1000 / self.cpu_ms if self.cpu_ms > 0 else float("nan")

    @property
    def shared_cpu_bound(self) -> float:
        """Served calls/s at which the servers and Locust together would fill every core, at
        Locust's steady cost when measured (else with its start-up: a low estimate)."""
        locust = self.locust_steady_ms
        if not math.isfinite(locust):
            locust = self.locust_cpu_ms
        per_call = self.cpu_ms + locust
        return CORES * 1000 / per_call if per_call > 0 else float("nan")


Replica = tuple[str, str, str]
"""One data centre's copy of an operator's network function: (operator, site, function)."""


@dataclass(frozen=True)
class Demand:
    """One data centre's network function over a level: the server-seconds it was busy per
    served call (its service demand there) and the servers it has."""

    operator: str
    site: str
    function: str
    busy_ms: float
    """Milliseconds a server of it was held per served call."""
    servers: int

    @property
    def bound(self) -> float:
        """The utilisation law's limit: ``servers`` busy all the time, at ``busy_ms`` a call."""
        return 1000 * self.servers / self.busy_ms


def busiest(
    busy: dict[Replica, float], servers: dict[tuple[str, str], int], requests: int
) -> Demand | None:
    """The replica whose servers this mix fills first: the least ``servers / demand``.

    Each data centre's replica has a core of its own, and a balancer may weight the sites
    unequally (two thirds of telco-gb's calls go to London), so each is bounded on its own:
    pooling them would overstate the bound of an operator whose sites take unequal shares.
    ``servers`` is one replica's servers of each (operator, function).
    """
    demands = [
        Demand(operator, site, function, 1000 * seconds / requests, servers[operator, function])
        for (operator, site, function), seconds in busy.items()
        if seconds > 0 and (operator, function) in servers and requests
    ]
    return min(demands, key=lambda demand: demand.bound, default=None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass(frozen=True)
class Backends:
    """Where the operators' modelled network functions are read, and the servers of each."""

    sites: dict[str, tuple[str, tuple[str, ...]]]
    """Each operator's API root and data centres (each has its own metrics)."""
    servers: dict[tuple[str, str], int]
    """Servers of one replica of each (operator, function): each data centre has its own."""

    def busy_seconds(self) -> dict[Replica, float]:
        """Server-seconds each replica of each function has been busy so far (its service
        time sum, from the data centre's own ``ogsim_backend_service_seconds``)."""
        busy: dict[Replica, float] = {}
        with httpx.Client(timeout=10) as http:
            for operator, (root, sites) in self.sites.items():
                for site, text in site_expositions(http, root, sites).items():
                    for function, histogram in parse_backends(text).items():
                        busy[operator, site, function] = histogram.total
        return busy


@dataclass
class LocustWatch:
    """One level's Locust processes, and their CPU seconds at two marks inside the run: once
    past start-up, and shortly before the run time ends."""

    pids: list[int] = field(default_factory=list)
    marks: list[tuple[float, float]] = field(default_factory=list)
    """(epoch seconds, CPU seconds of the processes) at each mark."""

    def mark(self) -> None:
        if self.pids:  # none handed over: nothing to read, not zero
            self.marks.append((time.time(), sum(cpu_seconds(pid) for pid in self.pids)))

    @property
    def window(self) -> tuple[float, float, float] | None:
        """(start, end, CPU seconds between them), once both marks are taken."""
        if len(self.marks) < 2:
            return None
        (start, before), (end, after) = self.marks[:2]
        return start, end, after - before


def served_between(history: Path, start: float, end: float) -> float:
    """Served calls Locust made between epoch seconds ``start`` and ``end``: the requests its
    per-second history counts (``locust_stats_history.csv``, the Aggregated rows' running total,
    which moves as workers report) less the throttled and protective ones (their own rows, by
    request type; ``--csv-full-history`` writes them). NaN if unknown (no history, or one
    without its entries' rows), or if not every user was running yet at ``start``."""
    totals: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    entries = False
    try:
        with history.open(newline="") as handle:
            for row in csv.DictReader(handle):
                kind = "Aggregated" if row["Name"] == "Aggregated" else row["Type"]
                entries = entries or kind != "Aggregated"
                if kind == "Aggregated" or kind in REJECTION_TYPES:
                    totals.setdefault((kind, row["Name"]), []).append(
                        (
                            int(row["Timestamp"]),
                            int(row["User Count"]),
                            int(row["Total Request Count"]),
                        )
                    )
    except (OSError, KeyError, ValueError):
        return float("nan")
    if not entries:
        return float("nan")  # no full history: the refused requests cannot be told apart
    rows = totals.get(("Aggregated", "Aggregated"), [])
    first = [row for row in rows if row[0] <= start]
    last = [row for row in rows if row[0] <= end]
    if not first or not last:
        return float("nan")
    users = max(row[1] for row in rows)
    if first[-1][1] < users or first[-1][2] == 0:
        return float("nan")  # still spawning at the first mark: start-up would count
    made = last[-1][2] - first[-1][2]
    for (kind, _), entry in totals.items():
        if kind != "Aggregated":
            made -= _total_at(entry, end) - _total_at(entry, start)
    return float(made)


def _total_at(rows: list[tuple[int, int, int]], moment: float) -> int:
    """An entry's running total at ``moment`` (0 before its first row: no such request yet)."""
    before = [total for stamp, _, total in rows if stamp <= moment]
    return before[-1] if before else 0


@dataclass
class Meter:
    """The servers' CPU, the hub's call count and the network functions' busy time, read
    before and after each level."""

    pids: dict[str, int]
    hub_metrics: str | None = None
    backends: Backends | None = None
    _cpu: dict[str, float] = field(default_factory=dict)
    _hub_calls: float = 0.0
    _children: float = 0.0
    _busy: dict[Replica, float] = field(default_factory=dict)
    level_seconds: float = 25.0
    """Each level's run time (where the second mark of Locust's CPU goes)."""
    _watch: LocustWatch = field(default_factory=LocustWatch)
    _timers: list[threading.Timer] = field(default_factory=list)

    def start(self) -> None:
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._hub_calls = self.hub_calls()
        self._children = reaped_children_cpu()
        self._busy = self.backends.busy_seconds() if self.backends is not None else {}
        self._watch = LocustWatch()
        self._timers = []
        end = self.level_seconds - STEADY_BEFORE_END
        if end > STEADY_AFTER:
            for at in (STEADY_AFTER, end):
                timer = threading.Timer(at, self._watch.mark)
                timer.daemon = True
                timer.start()
                self._timers.append(timer)

    def track(self, process: subprocess.Popen[bytes]) -> None:
        """A Locust process of the level under way (``run_locust``'s ``started``)."""
        self._watch.pids.append(process.pid)

    def hub_calls(self) -> float:
        if self.hub_metrics is None:
            return 0.0
        text = httpx.get(self.hub_metrics, timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == HUB_CALLS
            for sample in family.samples
            if sample.name == HUB_CALLS + "_count"
        )

    def stop(self, level: Level, folder: Path | None = None) -> Level:
        """The level with the CPU and busy time it cost; ``folder`` holds Locust's history,
        from which its steady cost per served call is read."""
        used = {name: cpu_seconds(pid) - self._cpu[name] for name, pid in self.pids.items()}
        cpu_ms = 1000 * sum(used.values()) / level.requests if level.requests else float("nan")
        hub_ms = float("nan")
        if self.hub_metrics is not None and "hub" in used:
            calls = self.hub_calls() - self._hub_calls
            hub_ms = 1000 * used["hub"] / calls if calls else float("nan")
        by_party = tuple(
            (name, 1000 * cpu / level.requests if level.requests else float("nan"))
            for name, cpu in used.items()
        )
        for timer in self._timers:
            timer.cancel()
            timer.join()
        locust = reaped_children_cpu() - self._children
        locust_ms = 1000 * locust / level.requests if level.requests else float("nan")
        steady_ms = float("nan")
        window = self._watch.window
        if folder is not None and window is not None:
            start, end, cpu = window
            made = served_between(folder / "locust_stats_history.csv", start, end)
            if made > 0:
                steady_ms = 1000 * cpu / made
        found = None
        if self.backends is not None:
            after = self.backends.busy_seconds()
            busy = {key: seconds - self._busy.get(key, 0.0) for key, seconds in after.items()}
            found = busiest(busy, self.backends.servers, level.requests)
        return Level(
            **{
                **level.__dict__,
                "cpu_ms": cpu_ms,
                "hub_cpu_ms": hub_ms,
                "by_party": by_party,
                "locust_cpu_ms": locust_ms,
                "locust_steady_ms": steady_ms,
                "busiest": found,
            }
        )


def reaped_children_cpu() -> float:
    """User + system CPU seconds of this process's children that have ended: across one
    level, the Locust master and workers it started and waited for (the servers are children
    too, but they end only with the ladder)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Ladder:
    """The levels a ladder ran and the capacity they show."""

    name: str
    levels: list[Level]
    slack_ms: float = P95_SLACK_MS
    """The least rise of the p95 over the light load's that is still within the bound."""

    @property
    def light_p95(self) -> float:
        return self.levels[0].p95 if self.levels else float("nan")

    @property
    def p95_bound(self) -> float:
        return max(P95_GROWTH * self.light_p95, self.light_p95 + self.slack_ms)

    @property
    def headroom_ms(self) -> float:
        """How far above the light load's p95 a level may go and still count."""
        return self.p95_bound - self.light_p95

    def within(self, level: Level) -> bool:
        return level.p95 <= self.p95_bound and level.failures < MAX_FAILURES

    @property
    def best(self) -> Level | None:
        kept = [level for level in self.levels if self.within(level)]
        return max(kept, key=lambda level: level.rps) if kept else None

    @property
    def saturated(self) -> bool:
        """Whether a level broke a bound (otherwise the capacity is a lower bound)."""
        return any(not self.within(level) for level in self.levels)


def federation_level(users: int, results: Path) -> Level:
    summary = read_summary(results)
    served = summary["served"]
    return Level(
        users,
        served["rps"],
        served["p50"],
        served["p95"],
        served["failureRatio"],
        int(served["requests"]),
    )


def bare_level(users: int, results: Path) -> Level:
    """The aggregated row of Locust's own CSV statistics."""
    with (results / "locust_stats.csv").open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    requests = int(row["Request Count"])
    failures = int(row["Failure Count"]) / requests if requests else 1.0
    return Level(
        users,
        float(row["Requests/s"]),
        float(row["50%"]),
        float(row["95%"]),
        failures,
        requests,
    )


def growing(levels: list[int], growth: float, max_users: int) -> Iterator[int]:
    """The given levels, then the last one times ``growth`` again and again up to
    ``max_users`` (steps of 1.5 keep the capacity, the last level within the bounds, within a
    third of the first level beyond them)."""
    yield from levels
    users = levels[-1]
    while (users := max(users + 1, round(users * growth))) <= max_users:
        yield users


def climb(
    name: str,
    levels: Iterator[int] | list[int],
    run_level: Callable[[int, Path], None],
    read_level: Callable[[int, Path], Level],
    results: Path,
    meter: Meter,
    *,
    confirm: bool = True,
    slack_ms: float = P95_SLACK_MS,
    refine: int = 0,
) -> Ladder:
    """Run levels in order until one breaks a bound; print each as it ends.

    With ``refine``, that many more levels then halve the gap between the last level within
    the bounds and the first beyond them (the ladder's steps grow by a third to a half, so
    its capacity alone is told only within that much).

    With ``confirm``, a level that breaks a bound runs once more and only the second run
    counts: on a machine shared with other work one preempted second can lift a p95 by tens
    of milliseconds, which would end a ladder on noise rather than load.
    """
    ladder = Ladder(name, [], slack_ms)
    print(f"\n{name} (p95 bound: light load's + {slack_ms:.0f} ms or + 20 %, whichever is more)")
    print(
        f"{'users':>6} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'failures':>9}"
        f" {'cpu ms/call':>12} {'hub cpu ms/hub call':>20} {'locust cpu ms/call':>19}"
    )

    def measure(users: int, attempt: int) -> Level:
        folder = results / f"{name}-{users}-{attempt}"
        meter.start()
        run_level(users, folder)
        level = meter.stop(read_level(users, folder), folder)
        print(
            f"{level.users:6d} {level.rps:8.1f} {level.p50:7.0f} {level.p95:7.0f} "
            f"{level.failures:9.2%} {level.cpu_ms:12.2f} {level.hub_cpu_ms:20.2f}"
            f" {level.locust_cpu_ms:19.2f}",
            flush=True,
        )
        if len(level.by_party) > 1:
            parts = ", ".join(f"{name} {ms:.2f}" for name, ms in level.by_party)
            print(f"{'':6} cpu ms per served call by process: {parts}", flush=True)
        if math.isfinite(level.locust_steady_ms):
            print(
                f"{'':6} Locust after its start-up: {level.locust_steady_ms:.2f} cpu ms per"
                " served call",
                flush=True,
            )
        if level.busiest is not None:
            print(f"{'':6} {bounds_line(level)}", flush=True)
        return level

    def step(users: int) -> Level:
        level = measure(users, 1)
        if ladder.levels and confirm and not ladder.within(level):
            print(f"{'':6} beyond the bounds: once more, to tell load from noise", flush=True)
            level = measure(users, 2)
        ladder.levels.append(level)
        return level

    for users in levels:
        if not ladder.within(step(users)):
            break
    if ladder.saturated and len(ladder.levels) > 1:
        # halve the gap between the last level within the bounds and the first beyond them
        good, bad = ladder.levels[-2].users, ladder.levels[-1].users
        if refine and bad - good > 1:
            print(f"{'':6} refining between {good} and {bad} users", flush=True)
        for _ in range(refine):
            users = (good + bad) // 2
            if users in (good, bad):
                break
            if ladder.within(step(users)):
                good = users
            else:
                bad = users
    return ladder


def scaled_core(config: FederationConfig, scale: int) -> FederationConfig:
    """``config`` with each operator's network functions given ``scale`` times the servers
    and waiting room, their service times unchanged: the modelled backends then queue only at
    ``scale`` times the rate, so a ladder measures the federation's own limit rather than the
    model's (at the default size, the location server's four servers a replica queue first)."""
    return config.model_copy(
        update={
            "operators": tuple(
                operator.model_copy(update={"core": operator.core.scaled(scale)})
                for operator in config.operators
            )
        }
    )


def federation_meter(descriptor: Path, config: FederationConfig) -> Meter:
    """Every party's process, the hub's metrics and the operators' network functions, from
    the descriptor ``ogsim up`` wrote and the federation it started."""
    described = json.loads(descriptor.read_text())
    parties = [*described["operators"], *described["aggregators"]]
    pids = {party["id"]: int(party["pid"]) for party in parties if party.get("pid")}
    hub = described.get("aggregator")
    return Meter(
        pids, hub["apiRoot"] + "/metrics" if hub else None, federation_backends(described, config)
    )


def federation_backends(described: dict, config: FederationConfig) -> Backends:
    """Each operator's network functions: where to read each data centre's, and the servers
    of one (each data centre's replica has a core of its own)."""
    sites = {
        party["id"]: (party["apiRoot"], tuple(party.get("dataCentres", ())))
        for party in described["operators"]
    }
    servers = {
        (operator.id, function.kind.value): function.servers
        for operator in config.operators
        for function in (getattr(operator.core, slot) for slot in type(operator.core).model_fields)
    }
    return Backends(sites, servers)


def bounds_line(level: Level) -> str:
    """What would stop more of this mix: the busiest modelled function's servers, or CPU."""
    demand = level.busiest
    assert demand is not None
    return (
        f"bounds: the model {level.model_bound:,.0f} calls/s (busiest: {demand.operator}"
        f" {demand.site} {demand.function}, {demand.busy_ms:.1f} server-ms per served call"
        f" over its {demand.servers} servers); {CORES} cores {level.cpu_bound:,.0f} calls/s for the"
        f" servers alone, {level.shared_cpu_bound:,.0f} with Locust's CPU"
        + (
            " (after its start-up)"
            if math.isfinite(level.locust_steady_ms)
            else " (its start-up included)"
        )
    )


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """One uvicorn process serving the bare endpoint on loopback; its URL and process id."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gateway_throughput:bare_app",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare endpoint did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary_line(ladder: Ladder) -> str:
    best = ladder.best
    if best is None:
        return f"{ladder.name}: no level within the bounds"
    bound = "" if ladder.saturated else " (a lower bound: no level of the ladder broke a bound)"
    return (
        f"{ladder.name}: {best.rps:.0f} served calls/s at {best.users} users, p95 {best.p95:.0f}"
        f" ms (light load {ladder.light_p95:.0f} ms, bound {ladder.p95_bound:.0f}"
        f" ms){bound}"
    )


def runner(
    args: argparse.Namespace,
    descriptor: Path,
    locustfile: Path,
    classes: list[str],
    meter: Meter,
    env: dict[str, str] | None = None,
) -> Callable[[int, Path], None]:
    """One ladder's way to run a level: Locust with the same set-up for every ladder."""

    def run(users: int, folder: Path) -> None:
        run_locust(
            locustfile=locustfile,
            descriptor=descriptor,
            results=folder,
            users=users,
            spawn_rate=float(users),
            run_time=f"{args.level_seconds}s",
            workers=args.workers,
            stop_timeout=10,
            user_classes=classes,
            extra_env=env,
            started=meter.track,
        )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--levels",
        default="10,20,40,60,90,130,180",
        help="Locust users of each level of the ladder, comma-separated, lightest first (the"
        " first is the light load whose p95 sets the bound)",
    )
    parser.add_argument(
        "--level-seconds", type=int, default=25, help="seconds each level runs (default 25)"
    )
    parser.add_argument(
        "--think-scale",
        type=float,
        default=0.2,
        help="multiplies each user's think time (uniform 0.5 to 1.5 s); default 0.2",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Locust worker processes beside its master (default 1); they share the cores"
        " with the servers",
    )
    parser.add_argument(
        "--bare-max-users",
        type=int,
        default=3000,
        help="the bare ladder grows its users past --levels until a level breaks a bound,"
        " at most this many",
    )
    parser.add_argument(
        "--bare-growth", type=float, default=1.5, help="users of a bare level over the last's"
    )
    parser.add_argument(
        "--no-confirm",
        action="store_true",
        help="end a ladder at its first level beyond the bounds without running it again",
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=2,
        help="levels that then halve the gap between the last level within the bounds and"
        " the first beyond them (0: none)",
    )
    parser.add_argument(
        "--user-class",
        action="append",
        choices=CLASSES,
        help="the federation's applications (repeatable; default: all four): one alone shows"
        " what its calls cost the servers",
    )
    parser.add_argument(
        "--core-scale",
        type=int,
        default=1,
        help="give every operator's modelled network functions this many times the servers"
        " and waiting room (service times unchanged), so the model's queues do not set the"
        " capacity (default 1: the operators as configured)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--skip-bare", action="store_true", help="federation ladder only")
    which.add_argument("--skip-federation", action="store_true", help="bare ladder only")
    args = parser.parse_args()
    if args.core_scale < 1:
        parser.error("--core-scale must be at least 1")
    if args.refine < 0:
        parser.error("--refine must not be negative")
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        parser.error(f"--levels must be user counts separated by commas, not {args.levels!r}")
    if not levels or levels[0] < 1 or any(b <= a for a, b in itertools.pairwise(levels)):
        parser.error(f"--levels must be rising user counts from 1, not {args.levels!r}")
    os.environ["OGSIM_THINK_SCALE"] = str(args.think_scale)
    classes = args.user_class or CLASSES
    federation = bare = None
    with tempfile.TemporaryDirectory(prefix="ogsim-capacity-") as scratch:
        results = Path(scratch)
        descriptor = results / "no-federation.json"  # the bare locustfile reads none
        if not args.skip_federation:
            config = scaled_core(default_federation(), args.core_scale)
            with federation_for_run(None, results, None, config=config) as descriptor:
                meter = federation_meter(descriptor, config)
                meter.level_seconds = args.level_seconds
                federation_run = runner(args, descriptor, LOCUSTFILE, classes, meter)
                federation = climb(
                    "federation"
                    if args.core_scale == 1
                    else f"federation, core x{args.core_scale}",
                    levels,
                    federation_run,
                    federation_level,
                    results,
                    meter,
                    confirm=not args.no_confirm,
                    refine=args.refine,
                )
        if not args.skip_bare:
            # the same allowance in milliseconds as the federation had (see the docstring)
            slack = P95_SLACK_MS
            if federation is not None and federation.levels:
                slack = max(slack, federation.headroom_ms)
            with bare_server() as (url, pid):
                bare_meter = Meter({"bare": pid}, level_seconds=args.level_seconds)
                bare_run = runner(
                    args,
                    descriptor,
                    BARE_LOCUSTFILE,
                    ["BareCaller"],
                    bare_meter,
                    {"OGSIM_BARE_URL": url},
                )
                bare = climb(
                    "bare",
                    growing(levels, args.bare_growth, args.bare_max_users),
                    bare_run,
                    bare_level,
                    results,
                    bare_meter,
                    confirm=not args.no_confirm,
                    slack_ms=slack,
                    refine=args.refine,
                )
    print()
    for ladder in (federation, bare):
        if ladder is not None:
            print(summary_line(ladder))
    best = federation.best if federation is not None else None
    if federation is None or best is None:
        return
    if best.busiest is not None:
        print(f"at the federation's best level, {bounds_line(best)}")
    figures: dict[str, object] = {
        "users": best.users,
        "rps": round(best.rps, 1),
        "modelBound": _finite(best.model_bound),
        "cpuBound": _finite(best.cpu_bound),
        "sharedCpuBound": _finite(best.shared_cpu_bound),
        "p95": best.p95,
        "lightP95": federation.light_p95,
        "coreScale": args.core_scale,
        "userClasses": classes,
        "refine": args.refine,
    }
    if bare is not None and bare.best is not None:
        ratio = best.rps / bare.best.rps
        figures["bareRps"] = round(bare.best.rps, 1)
        figures["ratio"] = round(ratio, 3)
        measured = federation.saturated and bare.saturated
        figures["ratioMeasured"] = measured
        print(
            f"ratio federation/bare: {ratio:.3f} ({os.cpu_count()} cores shared by Locust"
            " and the servers)"
            + ("" if measured else "; a bound, not a measurement: a ladder broke no bound")
        )
    print(json.dumps(figures))
    print(f"reproduce the federation's best level: {reproduction(args, best.users, classes)}")


def _finite(value: float) -> float | None:
    """A figure for the JSON line: rounded, or null when it was not measured (NaN)."""
    return round(value, 1) if math.isfinite(value) else None


def reproduction(args: argparse.Namespace, users: int, classes: list[str]) -> str:
    """The command that runs the best level again: ``ogsim loadtest`` against the default
    federation, or this script (light load, then that level) when the core was resized."""
    chosen = " ".join(f"--user-class {c}" for c in classes)
    if args.core_scale != 1:
        return (
            f".venv/bin/python benchmarks/federation_capacity.py --skip-bare --levels 10,{users}"
            f" --refine 0 --no-confirm --core-scale {args.core_scale} --think-scale"
            f" {args.think_scale} --level-seconds {args.level_seconds} --workers {args.workers}"
            f" {chosen}"
        )
    return (
        f"OGSIM_THINK_SCALE={args.think_scale} ogsim loadtest --users {users} --spawn-rate"
        f" {users} --run-time {args.level_seconds}s --workers {args.workers} {chosen}"
    )


if __name__ == "__main__":
    main()
