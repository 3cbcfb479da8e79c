"""Counters and time averages of one network function, kept the same way in both realisations.

Fed by the function at each arrival, service start and departure with the function's own clock
(monotonic wall time live, ``lambda: env.now`` in SimPy). It integrates the number in the
system and in the queue over time, which is what Little's law (L = λW) and the comparison
with queueing theory need; :meth:`reset` starts a fresh observation window after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.types import Clock

__all__ = ["Occupancy", "OccupancySnapshot"]


@dataclass(frozen=True, slots=True)
class OccupancySnapshot:
    """Everything observed since the window opened, and the derived means."""

    window: float
    offered: int
    rejected: int
    refused: int
    served: int
    failed: int
    in_service: int
    queue_length: int
    mean_in_system: float
    mean_queue_length: float
    mean_wait: float
    mean_sojourn: float
    mean_service: float
    throughput: float

    @property
    def blocking_probability(self) -> float:
        """Share of offered calls rejected because servers and waiting room were full."""
        return self.rejected / self.offered if self.offered else 0.0


class Occupancy:
    """Time-weighted number in system and in queue, plus call counts, waits and sojourns."""

    __slots__ = (
        "_area_queue",
        "_area_system",
        "_clock",
        "_departed",
        "_failed",
        "_last",
        "_offered",
        "_refused",
        "_rejected",
        "_served",
        "_since",
        "_started",
        "_sum_service",
        "_sum_sojourn",
        "_sum_wait",
        "in_service",
        "queue_length",
    )

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.in_service = 0
        self.queue_length = 0
        self.reset()

    def reset(self) -> None:
        """Open a new observation window now; current occupants stay, past counts are dropped."""
        now = self._clock()
        self._since = now
        self._last = now
        self._area_system = 0.0
        self._area_queue = 0.0
        self._offered = self._rejected = self._refused = 0
        self._served = self._failed = self._started = self._departed = 0
        self._sum_wait = self._sum_sojourn = self._sum_service = 0.0

    def _advance(self) -> float:
        now = self._clock()
        elapsed = now - self._last
        self._area_system += (self.in_service + self.queue_length) * elapsed
        self._area_queue += self.queue_length * elapsed
        self._last = now
        return now

    def offer(self) -> float:
        """A call arrives; returns its arrival time."""
        self._offered += 1
        return self._clock()

    def reject(self) -> None:
        """The call was turned away for lack of room (BackendBusy)."""
        self._rejected += 1

    def refuse(self) -> None:
        """The call was turned away by an outage (BackendUnavailable)."""
        self._refused += 1

    def enqueue(self) -> None:
        """The call was admitted and waits for a server."""
        self._advance()
        self.queue_length += 1

    def start(self, arrived_at: float, *, queued: bool) -> float:
        """A server takes the call; returns the service start time."""
        # _advance() inlined (here and in depart: once per call each), the same arithmetic.
        now = self._clock()
        elapsed = now - self._last
        self._area_system += (self.in_service + self.queue_length) * elapsed
        self._area_queue += self.queue_length * elapsed
        self._last = now
        if queued:
            self.queue_length -= 1
        self.in_service += 1
        self._started += 1
        self._sum_wait += now - arrived_at
        return now

    def abandon(self) -> None:
        """A waiting call was cancelled by its caller before a server took it."""
        self._advance()
        self.queue_length -= 1

    def depart(self, arrived_at: float, started_at: float, *, ok: bool) -> None:
        """The call leaves its server, answered (``ok``) or failed."""
        now = self._clock()  # _advance() inlined, as in start()
        elapsed = now - self._last
        self._area_system += (self.in_service + self.queue_length) * elapsed
        self._area_queue += self.queue_length * elapsed
        self._last = now
        self.in_service -= 1
        self._departed += 1
        if ok:
            self._served += 1
        else:
            self._failed += 1
        self._sum_sojourn += now - arrived_at
        self._sum_service += now - started_at

    def snapshot(self) -> OccupancySnapshot:
        """Counts and means over the window so far."""
        now = self._advance()
        window = now - self._since
        return OccupancySnapshot(
            window=window,
            offered=self._offered,
            rejected=self._rejected,
            refused=self._refused,
            served=self._served,
            failed=self._failed,
            in_service=self.in_service,
            queue_length=self.queue_length,
            mean_in_system=self._area_system / window if window > 0 else 0.0,
            mean_queue_length=self._area_queue / window if window > 0 else 0.0,
            mean_wait=self._sum_wait / self._started if self._started else 0.0,
            mean_sojourn=self._sum_sojourn / self._departed if self._departed else 0.0,
            mean_service=self._sum_service / self._departed if self._departed else 0.0,
            throughput=self._departed / window if window > 0 else 0.0,
        )
