"""What the live federation's own servers say about one load step: scrapes and CPU times.

Each operator process exposes ``/metrics`` (the gateway's Prometheus histogram of request
seconds by API and operation, the identity server's grants under ``api="oauth"``); its pid
in the descriptor gives its CPU seconds in ``/proc/<pid>/stat`` (user plus system ticks) and
the kernel's scheduler statistics in ``/proc/<pid>/schedstat`` (seconds on a core, seconds
runnable but waiting for one): how much of the shared cores the process got while it had
work. A step is measured as the difference of two readings, before and after the load, so
what happened earlier (start-up, previous steps) does not count; the machine's busy cores
(``/proc/stat``) and load average are read with them.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from operators.camara import WORKLOADS
from operators.core import CoreSpec
from operators.integrator import GuardSettings
from sim.calibration_fit import Histogram
from sim.scenario import guard_policies

__all__ = [
    "IDENTITY_API",
    "NOT_CALLS",
    "WORKLOAD_OF",
    "LiveBackends",
    "LiveStep",
    "OperatorReading",
    "OperatorStep",
    "Party",
    "api_name",
    "busy_core_seconds",
    "cpu_seconds",
    "idle_cpu",
    "live_backends",
    "measure_step",
    "parse_backends",
    "parse_histograms",
    "preemptions",
    "read_operator",
    "sched_seconds",
    "site_expositions",
]

IDENTITY_API = "oauth"
TOKEN_ENDPOINT = "token"
"""The gateway's ``operation`` label of the identity server's token endpoint: every grant."""
NOT_CALLS = frozenset({"health", "admin", "metrics", "portal", "-"})
"""Gateway ``api`` labels that are housekeeping, not calls a client makes."""
HISTOGRAM = "ogsim_gateway_request_seconds"
HUB = "aggregator"
"""The aggregator's name among a step's parties."""
HUB_HISTOGRAM = "ogsim_aggregator_request_seconds"
"""The aggregator's histogram of its CAMARA calls (labels as the gateway's)."""
HUB_HOPS = "ogsim_aggregator_hop_seconds"
"""The aggregator's histogram of the hops inside its calls (labels ``stage``, ``operator``)."""
BACKEND_SERVICE = "ogsim_backend_service_seconds"
"""An operator's histogram of each network function's service time (label ``function``)."""
K = TypeVar("K")
Party = tuple[str, int | None, tuple[str, ...]]
"""An operator as the descriptor names it: API root, process id, its data centres."""
WORKLOAD_OF = {operations[0]: name for name, operations in WORKLOADS.items()}
"""The scenario's unit of work each live operation begins (its first operation)."""


def api_name(operation: str) -> str | None:
    """The scenario's name of a live operation, None when it begins no unit of work (a QoD
    session's read or extension: its CPU is carried by the calls that are modelled)."""
    return WORKLOAD_OF.get(operation)


def parse_labelled(
    text: str, name: str, labels: tuple[str, ...]
) -> dict[tuple[str, ...], Histogram]:
    """Each series of the histogram ``name`` in a Prometheus exposition, keyed by the values
    of ``labels`` (an absent label reads as an empty string)."""
    buckets: dict[tuple[str, ...], dict[float, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    counts: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            key = tuple(sample.labels.get(label, "") for label in labels)
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                if math.isfinite(bound):
                    buckets.setdefault(key, {})[bound] = sample.value
            elif sample.name.endswith("_sum"):
                sums[key] = sample.value
            elif sample.name.endswith("_count"):
                counts[key] = sample.value
    found = {}
    for key, series in buckets.items():
        bounds = tuple(sorted(series))
        found[key] = Histogram(
            bounds, tuple(series[b] for b in bounds), counts.get(key, 0.0), sums.get(key, 0.0)
        )
    return found


def parse_histograms(text: str, name: str = HISTOGRAM) -> dict[tuple[str, str], Histogram]:
    """Each ``(api, operation)`` series of the histogram ``name`` in a Prometheus exposition."""
    return {
        (api, operation): histogram
        for (api, operation), histogram in parse_labelled(text, name, ("api", "operation")).items()
    }


def parse_backends(text: str) -> dict[str, Histogram]:
    """Each network function's service seconds (the time it held a server for a call)."""
    return {
        function: histogram
        for (function,), histogram in parse_labelled(text, BACKEND_SERVICE, ("function",)).items()
    }


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User plus system CPU seconds of process ``pid`` so far (fields 14 and 15 of stat)."""
    text = (proc / str(pid) / "stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def sched_seconds(pid: int, proc: Path = Path("/proc")) -> tuple[float, float, int]:
    """Seconds process ``pid``'s main thread ran on a core and waited runnable for one, and
    the times it was put on a core (``schedstat``: nanoseconds, nanoseconds, count)."""
    fields = (proc / str(pid) / "schedstat").read_text().split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9, int(fields[2])


def preemptions(pid: int, proc: Path = Path("/proc")) -> int:
    """Times process ``pid``'s main thread was taken off a core while it still had work
    (``nonvoluntary_ctxt_switches``; the voluntary ones are its sleeps)."""
    status = (proc / str(pid) / "task" / str(pid) / "status").read_text()
    for line in status.splitlines():
        if line.startswith("nonvoluntary_ctxt_switches:"):
            return int(line.split(":")[1])
    raise ValueError(f"no nonvoluntary_ctxt_switches for {pid}")


def busy_core_seconds(proc: Path = Path("/proc")) -> float:
    """Core-seconds the whole machine spent on anything but idle and I/O wait so far."""
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("cpu "):
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    raise ValueError("no cpu line in /proc/stat")


@dataclass(frozen=True)
class OperatorReading:
    """One operator process at one instant: its histograms, CPU seconds, and scheduler
    seconds on a core and waiting for one (NaN: no pid, or no such file)."""

    histograms: dict[tuple[str, str], Histogram]
    cpu: float
    ran: float = math.nan
    waited: float = math.nan
    slices: float = math.nan
    preempted: float = math.nan
    backends: dict[str, Histogram] = field(default_factory=dict)
    """Each network function's service seconds (an operator's; none at the aggregator)."""
    hops: dict[tuple[str, ...], Histogram] = field(default_factory=dict)
    """The aggregator's hops by (stage, operator); none at an operator."""


SITE_HEADER = "x-ogsim-data-centre"
SITE_OPT_IN = "x-ogsim-show-data-centre"
"""The operator front names the data centre that answered when asked (federation's
``DATA_CENTRE_HEADER`` and ``DATA_CENTRE_OPT_IN``)."""
SCRAPE_TRIES = 60


def site_expositions(http: httpx.Client, root: str, sites: tuple[str, ...]) -> dict[str, str]:
    """Every data centre's exposition, by data centre (``""`` for an operator without any).

    Each data centre of an operator is its own gateway with its own metrics, and the
    operator's front sends ``/metrics`` to whichever its balancer picks: a single scrape is
    one data centre's share. The front is asked to name the site that answered, and the
    scrape repeated until each site of ``sites`` has answered once (the balancer is a smooth
    weighted round robin, so a few tries do). Raises RuntimeError when one never answers.
    """
    url = root.rstrip("/") + "/metrics"
    if not sites:
        answer = http.get(url)
        answer.raise_for_status()
        return {"": answer.text}
    seen: dict[str, str] = {}
    for _ in range(SCRAPE_TRIES):
        answer = http.get(url, headers={SITE_OPT_IN: "1"})
        answer.raise_for_status()
        site = answer.headers.get(SITE_HEADER, "")
        if site in sites and site not in seen:
            seen[site] = answer.text
            if len(seen) == len(sites):
                break
    missing = [s for s in sites if s not in seen]
    if missing:
        raise RuntimeError(f"{root}: data centre(s) {missing} never answered /metrics")
    return seen


def _added(readings: list[dict[K, Histogram]]) -> dict[K, Histogram]:
    """The sites' histograms added up, series by series."""
    total: dict[K, Histogram] = {}
    for histograms in readings:
        for key, histogram in histograms.items():
            total[key] = total[key].plus(histogram) if key in total else histogram
    return total


def read_operator(
    http: httpx.Client,
    root: str,
    pid: int | None,
    sites: tuple[str, ...] = (),
    histogram: str = HISTOGRAM,
) -> OperatorReading:
    """Scrape ``root/metrics`` (each data centre of ``sites``) and read the process's CPU and
    scheduler seconds. ``histogram`` names the party's calls (the aggregator's differ)."""
    texts = list(site_expositions(http, root, sites).values())
    histograms = _added([parse_histograms(text, histogram) for text in texts])
    backends = _added([parse_backends(text) for text in texts])
    hops = _added([parse_labelled(text, HUB_HOPS, ("stage", "operator")) for text in texts])
    cpu = ran = waited = slices = preempted = math.nan
    if pid is not None:
        try:
            cpu = cpu_seconds(pid)
            ran, waited, count = sched_seconds(pid)
            slices = float(count)
            preempted = float(preemptions(pid))
        except (OSError, ValueError, IndexError):
            pass
    return OperatorReading(histograms, cpu, ran, waited, slices, preempted, backends, hops)


@dataclass(frozen=True)
class OperatorStep:
    """What one operator served during a step, from its own metrics."""

    operator: str
    seconds: float
    calls: dict[tuple[str, str], Histogram]
    """Modelled CAMARA calls by (api, operation): the gateway's latency histograms."""
    others: float
    """CAMARA calls that begin no unit of work of the scenario language (counted only)."""
    grants: Histogram | None
    """The identity server's token endpoint calls (None when none were made)."""
    cpu: float
    """CPU seconds the operator process used (NaN when its pid is unknown)."""
    ran: float = math.nan
    """Seconds the process's main thread (its event loop) ran on a core (schedstat)."""
    waited: float = math.nan
    """Seconds it was runnable but waited for a core (schedstat; NaN when unknown)."""
    slices: float = math.nan
    """Times it was put on a core (after waking up or after being preempted)."""
    wait_profile: tuple[float, ...] = ()
    """The mean wait for a core per time on one, second by second through the step."""
    preempted: float = math.nan
    """Times it was taken off a core while it had work (the others were wake-ups)."""
    backends: dict[str, Histogram] = field(default_factory=dict)
    """Each network function's service seconds during the step, by function kind."""
    hops: dict[tuple[str, ...], Histogram] = field(default_factory=dict)
    """The aggregator's hops during the step by (stage, operator) (empty at an operator)."""
    requests: float = math.nan
    """Every request the party's histogram counted in the step, whatever its API: grants,
    CIBA requests, unmodelled calls and scrapes wake the loop too (NaN: not counted)."""

    @property
    def stretch(self) -> float:
        """Wall seconds a CPU second of the event loop took while it had work: 1 when it got
        a core at once, 2 when it waited as long as it ran (the cores it shared with Locust,
        the other parties and whatever else ran). 1 when unknown."""
        if not (math.isfinite(self.ran) and math.isfinite(self.waited)) or self.ran <= 0:
            return 1.0
        return (self.ran + self.waited) / self.ran

    @property
    def call_count(self) -> float:
        return sum(h.count for h in self.calls.values())

    @property
    def cpu_per_call(self) -> float:
        """CPU seconds per modelled call: grants and unmodelled calls ride on the modelled
        ones, so one simulated worker is as busy as the live event loop."""
        return self.cpu / self.call_count if self.call_count else math.nan

    def all_calls(self) -> Histogram | None:
        merged: Histogram | None = None
        for histogram in self.calls.values():
            merged = histogram if merged is None else merged.plus(histogram)
        return merged


def _step(
    operator: str, seconds: float, before: OperatorReading, after: OperatorReading
) -> OperatorStep:
    calls: dict[tuple[str, str], Histogram] = {}
    grants: Histogram | None = None
    others = requests = 0.0
    for key, histogram in after.histograms.items():
        earlier = before.histograms.get(key)
        delta = histogram.minus(earlier) if earlier is not None else histogram
        if delta.count <= 0:
            continue
        requests += delta.count
        if key[0] == IDENTITY_API:
            if key[1] == TOKEN_ENDPOINT:  # CIBA requests, key fetches: no grant
                grants = delta
        elif api_name(key[1]) is not None:
            calls[key] = delta
        elif key[0] not in NOT_CALLS:
            others += delta.count
    return OperatorStep(
        operator,
        seconds,
        calls,
        others,
        grants,
        after.cpu - before.cpu,
        after.ran - before.ran,
        after.waited - before.waited,
        after.slices - before.slices,
        preempted=after.preempted - before.preempted,
        backends=_grown(before.backends, after.backends),
        hops=_grown(before.hops, after.hops),
        requests=requests,
    )


def _grown(before: dict[K, Histogram], after: dict[K, Histogram]) -> dict[K, Histogram]:
    """The series that grew between two readings, by what they grew."""
    grown = {}
    for key, histogram in after.items():
        earlier = before.get(key)
        delta = histogram.minus(earlier) if earlier is not None else histogram
        if delta.count > 0:
            grown[key] = delta
    return grown


@dataclass(frozen=True)
class LiveStep:
    """One rung of the ladder: the users Locust ran, and each operator's share of the work."""

    users: int
    seconds: float
    operators: dict[str, OperatorStep]
    client: dict[str, Any]
    """Locust's own summary of the step (served calls' rps, p50, p95 as the client saw them)."""
    saturating: bool = False
    """Users called back to back (the saturation step), not at a set rate."""
    busy_cores: float = math.nan
    """Cores the whole machine kept busy on average during the step (everything on it)."""
    load_average: float = math.nan
    """The machine's one-minute load average at the step's end."""
    client_cores: float = math.nan
    """Cores Locust's own process used on average during the step."""
    hub: OperatorStep | None = None
    """The aggregator's share: its CAMARA calls and its process's CPU and scheduler
    statistics (None when it was not measured)."""
    idle_cpu: dict[str, float] = field(default_factory=dict)
    """Each party's event-loop CPU seconds per second with no calls, read just before the
    step (its timers, probes and writers; empty when not read)."""

    @property
    def throughput(self) -> float:
        """Modelled CAMARA calls per second served by the operators' gateways."""
        return sum(op.call_count for op in self.operators.values()) / self.seconds

    def calls(self) -> Histogram | None:
        merged: Histogram | None = None
        for step in self.operators.values():
            histogram = step.all_calls()
            if histogram is not None:
                merged = histogram if merged is None else merged.plus(histogram)
        return merged


def _calls(readings: dict[str, OperatorReading]) -> float:
    return sum(
        h.count
        for reading in readings.values()
        for (api, _), h in reading.histograms.items()
        if api not in NOT_CALLS and api != IDENTITY_API
    )


def measure_step(
    http: httpx.Client,
    operators: dict[str, Party],
    users: int,
    seconds: float,
    start: Callable[[], Callable[[], dict[str, Any]]],
    sleep: Callable[[float], None],
    warm_up: float = 0.0,
    start_limit: float = 30.0,
    saturating: bool = False,
    client_cpu: Callable[[], float] = lambda: math.nan,
    clock: Callable[[], float] = time.monotonic,
    hub: Party | None = None,
    running: Callable[[], bool] = lambda: True,
) -> LiveStep:
    """Start the load, wait for its first calls and a warm-up, read every operator, wait
    ``seconds``, read again, then wait for the load to finish (``start`` returns that wait,
    which gives the client's summary).

    ``operators`` maps each operator id to its API root, pid and data centres (from the
    descriptor). The
    load generator's own start (seconds on a busy machine) and the users' first token flows
    stay out of the measured window: it opens ``warm_up`` seconds after the operators saw
    the first calls (or after ``start_limit`` seconds without any). ``client_cpu`` reads the
    load generator's CPU seconds so far (NaN when unknown); ``clock`` times the window
    (from the middle of the readings that open it to the middle of those that close it).
    ``hub`` is the aggregator, read alongside when given (its calls count in no operator's).
    ``running`` says whether the load still runs: RuntimeError when it ended in the window.
    """
    parties = dict(operators)
    if hub is not None:
        parties[HUB] = hub

    def read() -> dict[str, OperatorReading]:
        return {
            op: read_operator(http, *party, histogram=HUB_HISTOGRAM if op == HUB else HISTOGRAM)
            for op, party in parties.items()
        }

    baseline = _calls(read())
    finish = start()
    try:
        waited = 0.0
        while waited < start_limit and _calls(read()) <= baseline:
            sleep(0.5)
            waited += 0.5
        sleep(warm_up)
        opened = clock()
        before, busy_before, client_before = read(), _busy(), client_cpu()
        opened = (opened + clock()) / 2
        profiles = _wait_profiles(parties, seconds, sleep)
        closed = clock()
        after, busy_after, client_after = read(), _busy(), client_cpu()
        closed = (closed + clock()) / 2
        load = os.getloadavg()[0]
        if not running():
            raise RuntimeError(
                "the load ended before the step's window closed (its rates would count idle"
                " seconds): give it a longer run time"
            )
    finally:
        client = finish()
    # The window as the clock saw it: scrapes take a while on a loaded machine, and a
    # window longer than asked for would count its calls over too few seconds.
    elapsed = closed - opened if closed > opened else seconds
    steps = {
        op: replace(_step(op, elapsed, before[op], after[op]), wait_profile=profiles[op])
        for op in parties
    }
    busy = (busy_after - busy_before) / elapsed
    client_cores = (client_after - client_before) / elapsed
    hub_step = steps.pop(HUB, None)
    return LiveStep(
        users, elapsed, steps, client, saturating, busy, load, client_cores, hub=hub_step
    )


@dataclass(frozen=True)
class LiveBackends:
    """One live operator's modelled network core and the integrator's protection of it, as
    one simulated operator stands for all its data centres (see :func:`live_backends`)."""

    core: CoreSpec
    protection: GuardSettings

    def scenario_policies(self) -> dict[str, Any]:
        """The protection as a scenario's ``operators[].policies`` give it to the simulation,
        which builds the same ``GuardSettings`` from them."""
        return guard_policies(self.protection)


def live_backends(run_dir: Path | None) -> dict[str, LiveBackends]:
    """Each operator's modelled network core and its protection as the live federation runs
    them, read from the federation file ``ogsim up`` leaves in its run folder (a descriptor's
    ``runDir``); empty when there is none (a federation started elsewhere), and the
    calibration then assumes the defaults.

    A federation sized with ``operators[].core`` (or guarded with ``operators[].protection``)
    queues or refuses at its backends where the default would not, or the other way round:
    simulating it with the default would move the predicted saturation without a word. Live,
    each data centre's replica has a core of that size and guards of its own; the calibrated
    scenario has one site and the simulation one core per operator, so the operator gets the
    servers, waiting room and buffer slots of all its replicas together (one pooled queue,
    which waits a little less than split ones at the same load)."""
    from federation import load_federation

    path = run_dir / "federation.yaml" if run_dir is not None else None
    if path is None or not path.exists():
        return {}
    return {
        operator.id: LiveBackends(
            operator.core.scaled(len(operator.data_centres)),
            operator.protection.pooled(len(operator.data_centres)),
        )
        for operator in load_federation(path).operators
    }


def idle_cpu(
    parties: dict[str, Party], seconds: float, sleep: Callable[[float], None]
) -> dict[str, float]:
    """Each party's event-loop CPU seconds per second over ``seconds`` while nobody calls it:
    the background that is no call's (parties without a readable pid are left out)."""
    before = {name: _sched(party[1]) for name, party in parties.items()}
    sleep(seconds)
    found = {}
    for name, party in parties.items():
        after, earlier = _sched(party[1]), before[name]
        if after is not None and earlier is not None:
            found[name] = (after[0] - earlier[0]) / seconds
    return found


PROFILE_TICK = 1.0
"""Seconds between the scheduler readings of a step's wait profile."""


def _sched(pid: int | None) -> tuple[float, float, int] | None:
    if pid is None:
        return None
    try:
        return sched_seconds(pid)
    except (OSError, ValueError, IndexError):
        return None


def _wait_profiles(
    operators: dict[str, Party], seconds: float, sleep: Callable[[float], None]
) -> dict[str, tuple[float, ...]]:
    """Wait ``seconds`` in ticks of about :data:`PROFILE_TICK`, reading each process's
    scheduler statistics at every tick: the mean wait for a core per time on a core in each
    tick. The machine's other load comes and goes within a step; the profile keeps how
    much (the waits' mean alone would make the simulation's tail too light)."""
    ticks = max(1, round(seconds / PROFILE_TICK))
    last = {op: _sched(party[1]) for op, party in operators.items()}
    profiles: dict[str, list[float]] = {op: [] for op in operators}
    for _ in range(ticks):
        sleep(seconds / ticks)
        for op, party in operators.items():
            now, then = _sched(party[1]), last[op]
            if now is not None and then is not None and now[2] > then[2]:
                profiles[op].append((now[1] - then[1]) / (now[2] - then[2]))
            last[op] = now
    return {op: tuple(values) for op, values in profiles.items()}


def _busy() -> float:
    try:
        return busy_core_seconds()
    except (OSError, ValueError):
        return math.nan
