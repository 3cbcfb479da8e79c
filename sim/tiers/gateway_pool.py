"""A data centre's gateway replicas as Kubernetes runs them: started, ready, drained, healed.

The pool holds every replica that costs money (starting, ready, draining, failed and not yet
replaced) and, apart, the ones in rotation: the data centre's local balancer picks among
those round robin, so a new replica gets no work until its start-up time is over (its
readiness probe passes) and a draining one gets no new work while it finishes what it holds.

Two controllers act on the pool, as in a cluster. The ReplicaSet heals: a failed replica
leaves rotation at once (the calls it held are lost) and is replaced after the liveness
probe's delay by a new replica, which again needs its start-up time. The
HorizontalPodAutoscaler scales: :meth:`GatewayPool.autoscale` runs the operators' own
:class:`~operators.policies.Autoscaler` on ``env.now`` every sync period, with each replica's
utilisation (the busy share of its workers since the last sample, the simulation's CPU
utilisation) as the metric, and applies its ``desired`` count; no HPA arithmetic lives here.
Scaling down removes failed replicas first, then starting ones, then the newest ready ones
(the ReplicaSet's order), which drain before they go.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from enum import Enum
from typing import Any, Protocol, cast

import simpy

from operators.policies import Autoscaler, AutoscalerConfig, ReplicaSample, ScaleDecision
from sim.tiers.timers import Timer, call_later

__all__ = ["GatewayJob", "GatewayPool", "Replica", "ReplicaState"]


class GatewayJob(Protocol):
    """A call held by a gateway replica: called when served, ``lost`` when its replica died."""

    def __call__(self) -> None: ...

    def lost(self) -> None: ...


class ReplicaState(Enum):
    """Where a replica is in its life."""

    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"
    GONE = "gone"


# Members as module constants for the per-call paths: reading a member off its Enum class
# runs the class's attribute lookup (about ten times a global's cost).
_DRAINING = ReplicaState.DRAINING
_FAILED = ReplicaState.FAILED
_GONE = ReplicaState.GONE


class Replica:
    """``servers`` parallel workers with a FIFO waiting room (as :class:`Station`), plus a
    life cycle and the busy-worker-seconds its utilisation is measured from."""

    __slots__ = (
        "_area",
        "_env",
        "_finished",
        "_mark",
        "_pool",
        "_sampled_area",
        "_sampled_at",
        "_waiting",
        "busy",
        "servers",
        "started",
        "state",
    )

    def __init__(
        self, env: simpy.Environment, servers: int, started: float, pool: GatewayPool
    ) -> None:
        self._env = env
        self._pool = pool
        self.servers = servers
        self.started = started
        self.state = ReplicaState.STARTING
        self.busy = 0
        self._waiting: deque[tuple[float, GatewayJob]] = deque()
        self._area = 0.0
        self._mark = env.now
        self._sampled_area = 0.0
        self._sampled_at = env.now
        self._finished = self._finish
        """The bound method, made once (each timer would make one)."""

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def idle(self) -> bool:
        return self.busy == 0 and not self._waiting

    def _account(self) -> None:
        now = self._env._now
        self._area += self.busy * (now - self._mark)
        self._mark = now

    def serve(self, duration: float, job: GatewayJob, arriving: bool = True) -> None:
        """Hold a worker for ``duration`` seconds (after the jobs ahead), then call ``job``.

        A call ``arriving`` at a replica with nothing to do first waits the pool's wake-up
        time, when it has one (live: the event loop slept and waits for a core)."""
        busy = self.busy
        if busy < self.servers:
            wake = self._pool.wake_up
            if wake is not None and arriving and busy == 0:
                duration += wake()
            now = self._env._now
            self._area += busy * (now - self._mark)
            self._mark = now
            self.busy = busy + 1
            call_later(self._env, duration, self._finished, job)
        else:
            self._waiting.append((duration, job))

    def serve_next(self, duration: float, job: GatewayJob) -> None:
        """As :meth:`serve`, but ahead of the jobs waiting: work the replica itself queued
        (live, a callback the event loop runs before the next requests it reads)."""
        if self.busy < self.servers:
            self.serve(duration, job, arriving=False)
        else:
            self._waiting.appendleft((duration, job))

    def _finish(self, event: Timer) -> None:
        job: GatewayJob = event.value
        state = self.state
        if state is _FAILED or state is _GONE:
            job.lost()  # its process died while serving it
            return
        if not self._waiting:  # the worker goes idle (as _release, inline: most calls)
            now = self._env._now
            busy = self.busy
            self._area += busy * (now - self._mark)
            self._mark = now
            self.busy = busy - 1
            if busy == 1 and state is _DRAINING:
                self._pool._drained(self)
            job()
            return
        # the call's continuation first: work it queues on this replica (serve_next) goes
        # ahead of the calls already waiting; then the worker takes the next job
        job()
        if self._waiting and self.state is not _FAILED:
            duration, waiting = self._waiting.popleft()
            call_later(self._env, duration, self._finished, waiting)
        elif self.state is not _FAILED:
            self._release()

    def _release(self) -> None:
        """A worker goes idle (a draining replica with none busy is done)."""
        now = self._env._now
        self._area += self.busy * (now - self._mark)
        self._mark = now
        self.busy -= 1
        if self.busy == 0 and self.state is _DRAINING:
            self._pool._drained(self)

    def utilisation(self) -> float:
        """The busy share of the workers since the last call (the metric the HPA reads)."""
        self._account()
        now = self._env._now
        elapsed = now - self._sampled_at
        used = self._area - self._sampled_area
        self._sampled_area, self._sampled_at = self._area, now
        return used / (self.servers * elapsed) if elapsed > 0 else 0.0

    def fail(self) -> None:
        """The process dies: the calls waiting are lost now, those in service when due."""
        self._account()
        self.state = ReplicaState.FAILED
        waiting, self._waiting = self._waiting, deque()
        for _, job in waiting:
            job.lost()


class GatewayPool:
    """The gateway replicas of one data centre, with their ReplicaSet and maybe an HPA.

    ``startup`` is the seconds from a replica's start until it is in rotation; ``liveness``
    the seconds from a failure until its replacement starts. Replicas present at the start
    are ready since before the run (``started`` = -inf).
    """

    def __init__(
        self,
        env: simpy.Environment,
        replicas: int,
        workers: int,
        *,
        startup: float,
        liveness: float,
    ) -> None:
        self.env = env
        self.workers = workers
        self.startup = startup
        self.liveness = liveness
        self.wake_up: Callable[[], float] | None = None
        """Draws the time an idle replica takes to start on a call (None: no time)."""
        self.replicas: list[Replica] = []
        """Every replica that costs: starting, ready, draining, failed (not yet replaced)."""
        self.rotation: list[Replica] = []
        """The ready replicas, in the order the balancer cycles through them."""
        self._next = 0
        self._seconds = 0.0
        self._counted = len(self.replicas)
        self._mark = env.now
        self.decisions: list[ScaleDecision] = []
        self.failures = 0
        self.replacements = 0
        for _ in range(replicas):
            replica = Replica(env, workers, -math.inf, self)
            replica.state = ReplicaState.READY
            self.replicas.append(replica)
            self.rotation.append(replica)
        self._recount()

    # -- the balancer ---------------------------------------------------------------------

    def pick(self) -> Replica | None:
        """The next replica in rotation, round robin; None when none is ready."""
        rotation = self.rotation
        if not rotation:
            return None
        self._next = (self._next + 1) % len(rotation)
        return rotation[self._next]

    # -- counts ---------------------------------------------------------------------------

    def _recount(self) -> None:
        now = self.env.now
        self._seconds += self._counted * (now - self._mark)
        self._mark = now
        self._counted = len(self.replicas)

    @property
    def replica_seconds(self) -> float:
        """Replicas times seconds so far (the cost: every replica that runs or is replaced)."""
        return self._seconds + self._counted * (self.env.now - self._mark)

    @property
    def counted(self) -> list[Replica]:
        """The replicas the controllers count: all but those draining."""
        return [r for r in self.replicas if r.state is not ReplicaState.DRAINING]

    def samples(self) -> list[ReplicaSample]:
        """What the autoscaler sees of each counted replica (failed ones not ready, no metric)."""
        found = []
        for replica in self.counted:
            if replica.state is ReplicaState.READY:
                found.append(ReplicaSample(replica.started, replica.utilisation(), True))
            else:
                found.append(ReplicaSample(replica.started, None, False))
        return found

    # -- life cycle -----------------------------------------------------------------------

    def _add(self) -> Replica:
        replica = Replica(self.env, self.workers, self.env.now, self)
        self.replicas.append(replica)
        self._recount()
        self.env.timeout(self.startup, replica).callbacks.append(self._ready)
        return replica

    def _ready(self, event: simpy.Event) -> None:
        replica = cast(Replica, event.value)
        if replica.state is ReplicaState.STARTING:
            replica.state = ReplicaState.READY
            replica._sampled_at = replica._mark = self.env.now
            self.rotation.append(replica)

    def _out_of_rotation(self, replica: Replica) -> None:
        if replica in self.rotation:
            self.rotation.remove(replica)
            if self.rotation:
                self._next %= len(self.rotation)

    def _remove(self, replica: Replica) -> None:
        self._out_of_rotation(replica)
        if replica.state is not ReplicaState.FAILED:
            replica.state = ReplicaState.GONE
        self.replicas.remove(replica)
        self._recount()

    def _drained(self, replica: Replica) -> None:
        if replica in self.replicas:
            replica.state = ReplicaState.GONE
            self.replicas.remove(replica)
            self._recount()

    def fail(self, count: int = 1) -> int:
        """The ``count`` oldest replicas in rotation die now; each is replaced after the
        liveness delay. Returns how many died (fewer when fewer were in rotation)."""
        victims = self.rotation[:count]
        for replica in victims:
            self._out_of_rotation(replica)
            replica.fail()
            self.failures += 1
            self.env.timeout(self.liveness, replica).callbacks.append(self._replace)
        return len(victims)

    def _replace(self, event: simpy.Event) -> None:
        replica = cast(Replica, event.value)
        if replica in self.replicas:  # not scaled away meanwhile
            self.replicas.remove(replica)
            self.replacements += 1
            self._add()

    def scale_to(self, desired: int) -> None:
        """Start replicas, or remove failed, then starting, then the newest ready ones."""
        counted = self.counted
        if desired > len(counted):
            for _ in range(desired - len(counted)):
                self._add()
            return
        surplus = len(counted) - desired
        order = {ReplicaState.FAILED: 0, ReplicaState.STARTING: 1, ReplicaState.READY: 2}
        ranked = sorted(
            enumerate(counted), key=lambda item: (order[item[1].state], -item[0])
        )  # within a state, the newest first
        for _, replica in ranked[:surplus]:
            if replica.state is ReplicaState.READY:
                self._out_of_rotation(replica)
                replica.state = ReplicaState.DRAINING
                if replica.idle:
                    self._drained(replica)
            else:
                self._remove(replica)

    # -- the HorizontalPodAutoscaler ------------------------------------------------------

    def autoscale(self, config: AutoscalerConfig) -> Generator[simpy.Event, Any, None]:
        """The HPA's loop: every sync period, the shared Autoscaler decides, the pool obeys."""
        env = self.env
        autoscaler = Autoscaler(config, clock=lambda: env.now)
        for replica in self.replicas:
            replica.utilisation()  # start every replica's first sample now
        while True:
            yield env.timeout(config.sync_period)
            decision = autoscaler.decide(self.samples())
            self.decisions.append(decision)
            if decision.desired != decision.current:
                self.scale_to(decision.desired)
