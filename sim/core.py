"""The network core realised in virtual time: each function a SimPy resource with a waiting room.

Built from the same :class:`~operators.core.description.NetworkFunctionSpec` and the same
:class:`~operators.core.service_model.ServiceModel` as the live asyncio function, answering
with the same handlers and raising the same :mod:`operators.core.errors`; only the clock and
the waiting differ. ``call(request)`` is a SimPy process generator::

    record = yield from hlr.call(MsisdnQuery("+34600000001"))   # inside a process
    env.process(hlr.call(query))                                  # or as its own process
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterable
from typing import Any, Generic, TypeVar

import simpy
from pydantic import BaseModel, ConfigDict, Field

from operators.core.description import Faults, NetworkFunctionSpec
from operators.core.errors import BackendBusy, BackendFailure, BackendUnavailable
from operators.core.occupancy import Occupancy, OccupancySnapshot
from operators.core.service_model import Outcome, ServiceModel

__all__ = ["FaultChange", "SimNetworkFunction"]

Req = TypeVar("Req")
Rec = TypeVar("Rec")


class FaultChange(BaseModel):
    """From virtual time ``at`` on, the function has ``faults`` (a scenario's fault timeline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(ge=0)
    faults: Faults


class SimNetworkFunction(Generic[Req, Rec]):
    """One network function in virtual time: ``servers`` SimPy slots and a bounded FIFO queue."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: NetworkFunctionSpec,
        handler: Callable[[Req], Rec],
        rng: random.Random,
    ) -> None:
        self.env = env
        self.spec = spec
        self.handler = handler
        self.model = ServiceModel(spec, rng)
        self.occupancy = Occupancy(lambda: env.now)
        self._resource = simpy.Resource(env, capacity=spec.servers)
        self._capacity = spec.capacity

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def faults(self) -> Faults:
        return self.model.faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults now; calls already in service keep the fate they drew."""
        self.model.set_faults(faults)

    def schedule_faults(self, timeline: Iterable[FaultChange]) -> simpy.Process:
        """Apply each change of a fault timeline at its time, as a process of its own."""
        changes = sorted(timeline, key=lambda change: change.at)

        def run() -> Generator[simpy.Event, Any, None]:
            for change in changes:
                if change.at > self.env.now:
                    yield self.env.timeout(change.at - self.env.now)
                self.set_faults(change.faults)

        return self.env.process(run())

    @property
    def in_service(self) -> int:
        return self._resource.count

    @property
    def queue_length(self) -> int:
        return len(self._resource.queue)

    def snapshot(self) -> OccupancySnapshot:
        """Counters and time averages (L, Lq, W, Wq, throughput) since the last reset."""
        return self.occupancy.snapshot()

    def call(self, request: Req) -> Generator[simpy.Event, Any, Rec]:
        """Serve ``request`` in virtual time; raises a BackendError subclass like the live one."""
        draw = self.model.draw()
        occupancy = self.occupancy
        arrived = occupancy.offer()
        if draw.outcome is Outcome.OUTAGE:
            occupancy.refuse()
            raise BackendUnavailable(self.name, "in outage")
        resource = self._resource
        if self._capacity is not None and resource.count + len(resource.queue) >= self._capacity:
            occupancy.reject()
            raise BackendBusy(self.name, "all servers busy and waiting room full")
        with resource.request() as slot:
            queued = not slot.triggered
            if queued:
                occupancy.enqueue()
                try:
                    yield slot
                except simpy.Interrupt:
                    occupancy.abandon()
                    raise
            started = occupancy.start(arrived, queued=queued)
            ok = False
            try:
                if draw.duration > 0:
                    yield self.env.timeout(draw.duration)
                if draw.outcome is Outcome.ERROR:
                    raise BackendFailure(self.name, "injected error")
                record = self.handler(request)
                ok = True
            finally:
                occupancy.depart(arrived, started, ok=ok)
        return record
