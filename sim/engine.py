"""The scenario engine: builds the world of one scenario variant and runs it in virtual time.

``World(scenario)`` assembles the operators' tiers, the applications and the fault timeline
on one ``simpy.Environment``; ``run()`` advances it in slices (reporting progress), closes a
metrics row at every whole second and, for a run that ends inside a second, one for that last
part (so a 10.5 s run's rows count its last half second, as its totals do), then checks
Little's law and the expectations. Random streams are seeded by name from the scenario seed
(``random.Random("seed:app:arrivals")``), so a component's draws do not depend on how many
other components exist or their order.

The operators share one federation :class:`~federation.trust.TrustGraph` (each trusts the
aggregator until a fault revokes it); when an application calls through the aggregator or
numbers are ported, the world also holds the national portability register and a
:class:`~sim.tiers.aggregator.SimAggregator` with the federation's Telco Finder.

While it runs, the world asks Python's cycle collector to look less often (its young
generation every 50 000 allocations rather than 700): a call leaves no reference cycles
behind, so the collector would only walk the live calls over and over, which costs more than
the calls in an overloaded run with long queues. Thresholds are restored when the run ends.
"""

from __future__ import annotations

import gc
import heapq
import math
import weakref
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import simpy
from simpy.events import URGENT

from federation import NodeKind, PortabilityDatabase, TrustGraph
from operators import ChangeKind
from sim.expectations import evaluate, resolve_window
from sim.faults import Partitions, schedule_faults
from sim.metrics import Metrics
from sim.results import RunResult, StationLittle
from sim.scenario import Scenario
from sim.tiers.aggregator import SimAggregator, federation_config, port_lines
from sim.tiers.operator import AGGREGATOR, SimOperator
from sim.tiers.timers import Timer, clock
from sim.traffic import SimApplication

__all__ = ["Progress", "RunResult", "World", "run_scenario"]

Progress = Callable[[float], None]
"""Called with the virtual time reached, after each slice of the run."""


_worlds: weakref.WeakSet[simpy.Environment] = weakref.WeakSet()
"""The environment of every world still in memory, alive or uncollected garbage (a world
dies with its environment, which its processes refer to; the environment, unlike a world
compiled by mypyc, can be weakly referred to)."""


@contextmanager
def _collector_at_ease(world: World, threshold: int = 50_000) -> Iterator[None]:
    """Let the cycle collector's young generation fill up to ``threshold`` objects, and keep
    its full collections off the heap that was there before the run.

    A built world and the modules it imports are over a hundred thousand objects that live
    as long as the run, and a process may still hold an earlier world's cyclic garbage. Each
    full collection during the run walked all of it: three of them cost a protected
    thundering herd about a fifth of its time when it ran after the unprotected variant. The
    heap is collected and then frozen (``gc.freeze``), so the collector walks only the
    objects the run itself makes. The heap is given back, and collectable again, when the run
    ends. A process that froze its own heap already keeps its freeze untouched; one that
    freezes part of the heap during the run gets it back thawed, since ``gc.unfreeze`` cannot
    tell freezes apart.

    What is collected first depends on what garbage can be there. The young generations
    always: they hold what was dropped since the last collection, and are small. The whole
    heap only while another world is still in memory: an earlier world's garbage is in the
    old generation, and freezing it would keep it through this run and, in a calibration
    loop, through every later one (the old generation is rarely collected). Walking the whole
    heap costs about 60 ms here even when it frees nothing, a tenth of a short run's time;
    what else the old generation holds as garbage is only kept until the run ends.
    """
    saved = gc.get_threshold()
    gc.set_threshold(max(threshold, saved[0]), *saved[1:])
    freezing = gc.get_freeze_count() == 0
    if freezing:
        others = any(env is not world.env for env in _worlds)
        gc.collect(2 if others else 1)
        gc.freeze()
    try:
        yield
    finally:
        if freezing:
            gc.unfreeze()
        gc.set_threshold(*saved)


def _run_until(env: simpy.Environment, at: float) -> None:
    """``env.run(until=at)``, with SimPy's ``step`` inlined in the loop.

    The loop takes events in the same order and stops where ``run`` would: before the first
    event that comes after an urgent event scheduled now for ``at``, then moves the clock to
    ``at``. It takes the event ids ``run`` takes (for that stop event, and for scheduling it
    again when it stops), so later events get the same ids and keep their order. A failed
    event that nobody defused crashes the run, as in ``step``. A
    :class:`~sim.tiers.timers.Timer` (most events) only has its one callback called: it
    always succeeds, and nothing reads it once processed.
    """
    if at <= env.now:
        raise ValueError(f"until ({at}) must be greater than the current simulation time")
    stop = (at, URGENT, next(env._eid))
    queue: list[Any] = env._queue
    pop = heapq.heappop
    timer = Timer
    while queue:
        item = pop(queue)
        when, _, _, event = item
        if when >= at and item > stop:  # compare the whole entry only at the stop's time
            heapq.heappush(queue, item)
            break
        env._now = when
        if event.__class__ is timer:  # most events: one callback, always succeeds
            event.fn(event)
            continue
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            failure = event._value
            crash = type(failure)(*failure.args)
            crash.__cause__ = failure
            raise crash
    env._now = at
    next(env._eid)  # run() schedules its stop event again once it has stopped: one more id


def trust_graph(operators: list[str]) -> TrustGraph:
    """Each operator states its trust in the aggregator (revocable by a fault)."""
    graph = TrustGraph()
    graph.add_party(AGGREGATOR, NodeKind.AGGREGATOR)
    for operator in operators:
        graph.add_party(operator, NodeKind.OPERATOR)
    for operator in operators:
        graph.state(operator, AGGREGATOR)
    return graph


class World:
    """Every simulated party of one scenario variant on one environment."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.env = env = simpy.Environment()
        _worlds.add(env)
        seed = f"{scenario.seed}"
        self.metrics = Metrics(clock(env))
        topology = scenario.topology
        self.trust = trust_graph(list(topology.operators))
        self.operators = {
            op_id: SimOperator(env, op_id, spec, seed=seed, start=scenario.start, trust=self.trust)
            for op_id, spec in topology.operators.items()
        }
        self.partitions = Partitions()
        self.aggregator: SimAggregator | None = None
        if topology.ports or any(
            app.via_aggregator for app in scenario.traffic.applications.values()
        ):
            self.aggregator = self._federate(seed)
        for op in self.operators.values():
            op.prepare()
        self.applications = [
            SimApplication(
                env,
                app_id,
                spec,
                self.operators,
                self.metrics,
                seed=seed,
                duration=scenario.duration,
                partitioned=self.partitions,
                aggregator=self.aggregator,
            )
            for app_id, spec in scenario.traffic.applications.items()
        ]
        self.events = scenario.events()
        for expectation in scenario.expectations:
            if expectation.window is not None and expectation.metric.startswith("latency"):
                start, end = resolve_window(expectation, self.events)
                self.metrics.window(start, end)
        for op in self.operators.values():
            op.start()
        for app in self.applications:
            app.start()
        schedule_faults(env, scenario.faults, self.operators, self.partitions)
        env.process(self._ticker())

    def _federate(self, seed: str) -> SimAggregator:
        """Ports, the register, the federation config and the aggregator with its finder."""
        topology = self.scenario.topology
        synced, unsynced = port_lines(topology, self.operators, seed)
        federation = federation_config(topology, self.operators, synced)
        register = PortabilityDatabase(federation, clock=clock(self.env))
        for number, recipient in unsynced.items():
            register.port(number, recipient)  # since the finder's last sync
        for number, recipient in {**synced, **unsynced}.items():
            holder = register.plan.holder(number)
            donor = holder.party if holder is not None else None
            # What federation.portability.record_port tells member operators, at t=0.
            if donor in self.operators:
                self.operators[donor].subscribers.record_change(
                    number, ChangeKind.PORT_OUT, {"operator": recipient}
                )
            self.operators[recipient].subscribers.record_change(
                number, ChangeKind.PORT_IN, {"from": donor or "unknown"}
            )
        hub = topology.aggregator  # its processing station, or None: the hub costs no time
        return SimAggregator(
            self.env, federation, register, self.operators, self.partitions, hub, seed
        )

    def _gauges(self) -> dict[str, float]:
        """Every operator's gauges (queues, breakers, replicas), sampled now."""
        gauges: dict[str, float] = {}
        for op in self.operators.values():
            gauges.update(op.gauges())
        return gauges

    def _ticker(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            yield env.timeout(1.0)
            self.metrics.close_second(env.now, self._gauges())

    def _close_trailing_part(self) -> None:
        """Close the row of ``[floor(duration), duration)`` for a run that ends inside a
        second: the ticker closes whole seconds only, so that part's calls were in the totals
        but in no row (a 0.5 s run had no row, and its availability read undefined)."""
        duration = self.scenario.duration
        if duration > math.floor(duration):
            self.metrics.close_second(duration, self._gauges())

    def run(self, progress: Progress | None = None, slices: int = 100) -> RunResult:
        """Run to the scenario's duration and judge it."""
        duration = self.scenario.duration
        step = max(1.0, math.ceil(duration / slices))
        t = 0.0
        with _collector_at_ease(self):
            while t < duration:
                t = min(duration, t + step)
                # A hair past a whole second, so the ticker closes the last row before we stop.
                _run_until(self.env, t + 1e-9)
                if progress is not None:
                    progress(t)
        self._close_trailing_part()
        return self._result()

    def _result(self) -> RunResult:
        metrics = self.metrics
        stations = []
        for op in self.operators.values():
            for nf in op.core.values():
                snap = nf.snapshot()
                if snap.served:
                    stations.append(
                        StationLittle(
                            f"{op.id}/{nf.name}",
                            snap.mean_in_system,
                            snap.throughput,
                            snap.mean_sojourn,
                        )
                    )
        result = RunResult(
            scenario=self.scenario,
            series=metrics.series,
            keys=metrics.keys,
            little=metrics.little(),
            stations=stations,
            verdicts=[],
            breaker_changes={
                op.id: dict(sorted(op.breaker_changes.items())) for op in self.operators.values()
            },
            balancer_changes=[
                (change.at, op.id, change.data_centre, change.up)
                for op in self.operators.values()
                for change in op.balancer.health.transitions
            ],
            calls=metrics.total_offered,
            events=self.events,
            discovery=dict(sorted(self.aggregator.searches.items())) if self.aggregator else {},
            ported={
                key: (stats.billable, stats.completed)
                for key, stats in sorted(metrics.pairs.items())
            },
            consent={
                op.id: op.consent.counts() for op in self.operators.values() if op.consent.active
            },
            consent_waves=[
                {
                    "name": wave.name,
                    "operator": op.id,
                    "at": wave.at,
                    "spread": wave.spread,
                    "replication_lag": wave.replication_lag,
                    "lines": wave.lines,
                    "landed": dict(sorted(wave.landed.items())),
                }
                for op in self.operators.values()
                for wave in op.consent.waves
            ],
        )
        result.verdicts = evaluate(self.scenario, result, metrics)
        return result


def run_scenario(scenario: Scenario, progress: Progress | None = None) -> RunResult:
    """Build the world of ``scenario`` and run it."""
    return World(scenario).run(progress)
