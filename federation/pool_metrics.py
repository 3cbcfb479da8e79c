"""Prometheus series of a replica pool, read from the pool's own state at scrape time.

What kube-state-metrics says of a Deployment, for ``ogsim up --autoscale``: how many replicas
the autoscaler wants and how many serve, start, drain or sit out of rotation, how busy they
are, what the supervisor did (starts, deaths, kills) and what the replicas cost
(replica-seconds, the autoscaling scenario's cost figure). The pool's gauges are read when
Prometheus scrapes, so the proxy's hot path pays nothing for them; its counters are plain
integers the pool keeps anyway.

Served on the pool's port at :data:`POOL_METRICS_PATH`, unauthenticated like every party's
``/metrics`` (counts only, no client or subscriber in any label). The operator's own
``/metrics`` still passes through the pool to one replica, as a Service in front of pods does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .replica_pool import Replica, ReplicaPool

__all__ = ["POOL_METRICS_PATH", "PoolTally", "exposition", "replica_state"]

POOL_METRICS_PATH = "/pool/metrics"
REPLICA_STATES = ("serving", "starting", "out_of_rotation", "draining")


@dataclass
class PoolTally:
    """What the pool counts as it goes: answers it relayed, calls it could not place, the
    supervisor's events by kind and the replica-seconds its processes have run."""

    answered: int = 0
    unavailable: int = 0
    timed_out: int = 0
    events: Counter[str] = field(default_factory=Counter)
    replica_seconds: float = 0.0
    accounted_at: float | None = None

    def account_replicas(self, running: int, now: float) -> None:
        """Add ``running`` replicas' time since the last call (the first starts the clock)."""
        if self.accounted_at is not None:
            self.replica_seconds += running * max(now - self.accounted_at, 0.0)
        self.accounted_at = now


def replica_state(replica: Replica) -> str:
    """The one state a replica is counted in: draining wins, then serving, then starting."""
    if replica.draining:
        return "draining"
    if replica.in_rotation:
        return "serving"
    if not replica.ever_ready:
        return "starting"
    return "out_of_rotation"


class _PoolCollector(Collector):
    def __init__(self, pool: ReplicaPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        pool, tally = self._pool, self._pool.tally
        labels = ["pool"]
        desired = GaugeMetricFamily(
            "ogsim_pool_desired_replicas", "Replicas the autoscaler wants", labels=labels
        )
        desired.add_metric([pool.name], pool.desired)
        yield desired
        states = Counter(replica_state(r) for r in pool.members if r.alive())
        replicas = GaugeMetricFamily(
            "ogsim_pool_replicas", "Live replica processes by state", labels=["pool", "state"]
        )
        for state in REPLICA_STATES:
            replicas.add_metric([pool.name, state], states[state])
        yield replicas
        in_flight = GaugeMetricFamily(
            "ogsim_pool_calls_in_flight", "Calls relayed and not yet answered", labels=labels
        )
        in_flight.add_metric([pool.name], sum(r.in_flight for r in pool.members))
        yield in_flight
        for name, doc, value in (
            ("ogsim_pool_answers", "Answers relayed from a replica", tally.answered),
            (
                "ogsim_pool_unavailable",
                "Calls answered 503: no replica could take them",
                tally.unavailable,
            ),
            (
                "ogsim_pool_timeouts",
                "Calls answered 504: the replica did not answer in time",
                tally.timed_out,
            ),
            (
                "ogsim_pool_replica_seconds",
                "Seconds of replica processes run (the cost)",
                tally.replica_seconds,
            ),
        ):
            counter = CounterMetricFamily(name, doc, labels=labels)
            counter.add_metric([pool.name], value)
            yield counter
        events = CounterMetricFamily(
            "ogsim_pool_events", "Supervisor events by kind", labels=["pool", "kind"]
        )
        for kind, count in sorted(tally.events.items()):
            events.add_metric([pool.name, kind.replace(" ", "_")], count)
        yield events


def exposition(pool: ReplicaPool) -> bytes:
    """The pool's series in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_PoolCollector(pool))
    return generate_latest(registry)
