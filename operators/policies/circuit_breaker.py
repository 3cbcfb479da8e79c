"""A circuit breaker with resilience4j's semantics, so its settings carry over unchanged.

Read from resilience4j's ``CircuitBreakerStateMachine`` and ``CircuitBreakerMetrics``; times are
seconds from the injected clock instead of ``java.time`` durations.

======================================================  ==========================================
resilience4j option / behaviour                         ogsim
======================================================  ==========================================
failureRateThreshold, slowCallRateThreshold             covered (percent, ``>=`` trips)
slowCallDurationThreshold                               covered (slow means strictly greater)
slidingWindowType COUNT_BASED / TIME_BASED              covered (TIME_BASED: N one-second buckets
                                                        aligned on whole clock seconds)
slidingWindowSize, minimumNumberOfCalls                 covered (count-based uses
                                                        min(minimum, window size))
permittedNumberOfCallsInHalfOpenState                   covered (the half-open window is a
                                                        count-based window of that size, judged
                                                        once every probe is recorded, as
                                                        RESILIENCE.md says; resilience4j judges
                                                        after min(minimum, permitted) results)
waitDurationInOpenState                                 covered as a constant
waitIntervalFunctionInOpenState                         not covered (no per-attempt backoff)
automaticTransitionFromOpenToHalfOpenEnabled            covered, evaluated lazily: the transition
                                                        is stamped at its due time, not when seen
maxWaitDurationInHalfOpenState                          covered, lazily, like the automatic move
recordExceptions, ignoreExceptions, record*Predicate    not covered: callers decide, calling
                                                        ``on_error`` for a failure, ``on_success``
                                                        for a success, ``release_permission`` for
                                                        an ignored outcome
recordResult / transitionOnResult                       not covered (callers decide, as above)
states CLOSED, OPEN, HALF_OPEN, DISABLED,               covered, with resilience4j's allowed
METRICS_ONLY, FORCED_OPEN                               transitions (METRICS_ONLY cannot go to
                                                        OPEN or HALF_OPEN)
state transition events                                 covered (``add_listener``)
other events (success, error, not permitted,            not covered; read ``metrics()``
rate exceeded, reset), reset()
writableStackTraceEnabled, scheduler, clock             not applicable / the injected clock
======================================================  ==========================================

Deviations: a permit released in HALF_OPEN never raises the number of free probes above
``permitted_number_of_calls_in_half_open_state`` (resilience4j increments without a cap, so a
stray release could admit an extra probe); ``cumulative_not_permitted`` in ``metrics()`` is an
addition for the simulator, kept across state changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from operators.types import Clock

from .circuit_breaker_config import CircuitBreakerConfig, SlidingWindowType

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerMetrics",
    "CircuitBreakerState",
    "SlidingWindowType",
    "StateTransition",
]


class CircuitBreakerState(StrEnum):
    """The six states of resilience4j's breaker."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    DISABLED = "DISABLED"
    METRICS_ONLY = "METRICS_ONLY"
    FORCED_OPEN = "FORCED_OPEN"


@dataclass(frozen=True, slots=True)
class StateTransition:
    """One state change, stamped with the clock time at which it took effect."""

    at: float
    from_state: CircuitBreakerState
    to_state: CircuitBreakerState


@dataclass(frozen=True, slots=True)
class CircuitBreakerMetrics:
    """A snapshot of the current state's window; rates are -1.0 below the minimum calls."""

    failure_rate: float
    slow_call_rate: float
    number_of_buffered_calls: int
    number_of_failed_calls: int
    number_of_slow_calls: int
    number_of_slow_failed_calls: int
    number_of_successful_calls: int
    number_of_not_permitted_calls: int
    cumulative_not_permitted: int


@dataclass(slots=True)
class _Tally:
    calls: int = 0
    failed: int = 0
    slow: int = 0
    slow_failed: int = 0

    def add(self, failed: bool, slow: bool, sign: int = 1) -> None:
        self.calls += sign
        self.failed += sign * failed
        self.slow += sign * slow
        self.slow_failed += sign * (failed and slow)

    def subtract(self, other: _Tally) -> None:
        self.calls -= other.calls
        self.failed -= other.failed
        self.slow -= other.slow
        self.slow_failed -= other.slow_failed


class _CountWindow:
    """The outcomes of the last ``size`` calls, in a ring."""

    __slots__ = ("_next", "_ring", "_size", "total")

    def __init__(self, size: int) -> None:
        self._ring: list[tuple[bool, bool] | None] = [None] * size
        self._size = size
        self._next = 0
        self.total = _Tally()

    def record(self, failed: bool, slow: bool, now: float) -> None:
        # _Tally.add inlined (once per guarded call): the outcome leaving, then the new one.
        total = self.total
        at = self._next
        ring = self._ring
        old = ring[at]
        ring[at] = (failed, slow)
        self._next = (at + 1) % self._size
        if old is None:
            total.calls += 1
            total.failed += failed
            total.slow += slow
            total.slow_failed += failed and slow
            return
        # A full ring: one outcome replaces another, the call count stays; each count moves
        # by the difference only when it changes (whole numbers: the same totals).
        old_failed, old_slow = old
        if failed != old_failed:
            total.failed += failed - old_failed
        if slow != old_slow:
            total.slow += slow - old_slow
        if (failed and slow) != (old_failed and old_slow):
            total.slow_failed += (failed and slow) - (old_failed and old_slow)

    def snapshot(self, now: float) -> _Tally:
        return self.total


class _TimeWindow:
    """The outcomes of the last ``size`` whole clock seconds, one bucket per second."""

    __slots__ = ("_buckets", "_head", "total")

    def __init__(self, size: int, now: float) -> None:
        self._buckets = [_Tally() for _ in range(size)]
        self._head = math.floor(now)
        self.total = _Tally()

    def _move_to(self, now: float) -> None:
        second = math.floor(now)
        if second <= self._head:
            return
        size = len(self._buckets)
        for step in range(1, min(second - self._head, size) + 1):
            bucket = self._buckets[(self._head + step) % size]
            self.total.subtract(bucket)
            self._buckets[(self._head + step) % size] = _Tally()
        self._head = second

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self._move_to(now)
        self._buckets[self._head % len(self._buckets)].add(failed, slow)
        self.total.add(failed, slow)

    def snapshot(self, now: float) -> _Tally:
        self._move_to(now)
        return self.total


_Window = _CountWindow | _TimeWindow

_ALLOWED = {
    CircuitBreakerState.CLOSED: set(CircuitBreakerState),
    CircuitBreakerState.OPEN: set(CircuitBreakerState),
    CircuitBreakerState.HALF_OPEN: set(CircuitBreakerState),
    CircuitBreakerState.FORCED_OPEN: set(CircuitBreakerState),
    CircuitBreakerState.DISABLED: set(CircuitBreakerState),
    CircuitBreakerState.METRICS_ONLY: set(CircuitBreakerState)
    - {CircuitBreakerState.OPEN, CircuitBreakerState.HALF_OPEN},
}

# Members as module constants: reading an Enum member off its class costs far more than a global.
_CLOSED = CircuitBreakerState.CLOSED
_OPEN = CircuitBreakerState.OPEN
_HALF_OPEN = CircuitBreakerState.HALF_OPEN
_DISABLED = CircuitBreakerState.DISABLED
_METRICS_ONLY = CircuitBreakerState.METRICS_ONLY
_FORCED_OPEN = CircuitBreakerState.FORCED_OPEN


class CircuitBreaker:
    """Stops calling a backend whose failure or slow-call rate crossed a threshold, then probes."""

    def __init__(self, config: CircuitBreakerConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        # The settings read on every call, copied once (the config is frozen; pydantic
        # attributes cost more to read than plain ones).
        self._slow_call_duration = config.slow_call_duration_threshold
        self._failure_threshold = config.failure_rate_threshold
        self._slow_rate_threshold = config.slow_call_rate_threshold
        self._open_wait = config.wait_duration_in_open_state
        self._listeners: list[Callable[[StateTransition], None]] = []
        self._state = _CLOSED
        self._since = clock()
        self._window: _Window = self._closed_window(self._since)
        self._minimum = self._closed_minimum()
        self._free_probes = 0
        self._episode = 0
        """Which HALF_OPEN stretch this is (each entry counts one): a permit given back is a
        probe again only in the stretch that gave it out."""
        self._not_permitted = 0
        self._cumulative_not_permitted = 0

    @property
    def config(self) -> CircuitBreakerConfig:
        """The settings this breaker was built with."""
        return self._config

    @property
    def state(self) -> CircuitBreakerState:
        """The current state, after applying any time-driven transition that is due."""
        self._advance(self._clock())
        return self._state

    def add_listener(self, listener: Callable[[StateTransition], None]) -> None:
        """Call ``listener`` on every state change (a metric, a time-series point, a log)."""
        self._listeners.append(listener)

    # -- windows ---------------------------------------------------------------------------

    def _closed_window(self, now: float) -> _Window:
        config = self._config
        if config.sliding_window_type is SlidingWindowType.COUNT_BASED:
            return _CountWindow(config.sliding_window_size)
        return _TimeWindow(config.sliding_window_size, now)

    def _closed_minimum(self) -> int:
        config = self._config
        if config.sliding_window_type is SlidingWindowType.COUNT_BASED:
            return min(config.minimum_number_of_calls, config.sliding_window_size)
        return config.minimum_number_of_calls

    def _rates(self, tally: _Tally) -> tuple[float, float]:
        if tally.calls == 0 or tally.calls < self._minimum:
            return -1.0, -1.0
        return tally.failed * 100.0 / tally.calls, tally.slow * 100.0 / tally.calls

    # -- transitions -----------------------------------------------------------------------

    def _transition(self, to_state: CircuitBreakerState, at: float) -> None:
        from_state = self._state
        if to_state not in _ALLOWED[from_state]:
            raise ValueError(f"a circuit breaker cannot go from {from_state} to {to_state}")
        self._state = to_state
        self._since = at
        if to_state is not _OPEN:
            self._not_permitted = 0
        if to_state in (_CLOSED, _METRICS_ONLY):
            self._window = self._closed_window(at)
            self._minimum = self._closed_minimum()
        elif to_state is _HALF_OPEN:
            permitted = self._config.permitted_number_of_calls_in_half_open_state
            self._window = _CountWindow(permitted)
            self._minimum = permitted  # judged when every probe is recorded (RESILIENCE.md)
            self._free_probes = permitted
            self._episode += 1
        elif to_state is not _OPEN:
            self._window = _CountWindow(1)  # DISABLED and FORCED_OPEN record nothing
        # OPEN keeps the metrics that tripped it, as resilience4j does, so late results count.
        event = StateTransition(at=at, from_state=from_state, to_state=to_state)
        for listener in self._listeners:
            listener(event)

    def _advance(self, now: float) -> None:
        """Apply the scheduled transitions that are due by ``now``, each at its due time."""
        state = self._state
        if state is not _OPEN and state is not _HALF_OPEN:
            return  # only OPEN and HALF_OPEN have transitions in time
        config = self._config
        while True:
            if (
                self._state is _OPEN
                and config.automatic_transition_from_open_to_half_open_enabled
                and now >= self._since + config.wait_duration_in_open_state
            ):
                self._transition(_HALF_OPEN, self._since + config.wait_duration_in_open_state)
            elif (
                self._state is _HALF_OPEN
                and config.max_wait_duration_in_half_open_state > 0
                and now >= self._since + config.max_wait_duration_in_half_open_state
            ):
                self._transition(
                    _OPEN,
                    self._since + config.max_wait_duration_in_half_open_state,
                )
            else:
                return

    def transition_to_closed(self) -> None:
        """Force CLOSED with an empty window."""
        self._transition(_CLOSED, self._clock())

    def transition_to_open(self) -> None:
        """Force OPEN; the wait before HALF_OPEN starts now."""
        self._transition(_OPEN, self._clock())

    def transition_to_half_open(self) -> None:
        """Force HALF_OPEN with a fresh set of probes."""
        self._transition(_HALF_OPEN, self._clock())

    def transition_to_disabled(self) -> None:
        """Let every call through and record nothing."""
        self._transition(_DISABLED, self._clock())

    def transition_to_forced_open(self) -> None:
        """Refuse every call until another manual transition."""
        self._transition(_FORCED_OPEN, self._clock())

    def transition_to_metrics_only(self) -> None:
        """Let every call through but keep measuring, to observe a breaker before enforcing it."""
        self._transition(_METRICS_ONLY, self._clock())

    # -- calls -----------------------------------------------------------------------------

    def _refuse(self) -> bool:
        self._not_permitted += 1
        self._cumulative_not_permitted += 1
        return False

    def try_acquire_permission(self) -> bool:
        """Whether a call may go to the backend now; a refusal is counted as not permitted."""
        now = self._clock()
        state = self._state
        if state is _OPEN or state is _HALF_OPEN:  # the only states _advance can move
            self._advance(now)
            state = self._state
        if state is _OPEN:
            # resilience4j's lazy move: strictly after the wait (Instant.isAfter).
            if now <= self._since + self._open_wait:
                return self._refuse()
            self._transition(_HALF_OPEN, now)
            state = self._state
        if state is _HALF_OPEN:
            if self._free_probes > 0:
                self._free_probes -= 1
                return True
            return self._refuse()
        if state is _FORCED_OPEN:
            return self._refuse()
        return True

    def probe_episode(self) -> int | None:
        """The HALF_OPEN stretch a permit just acquired belongs to, or None when it is no
        probe (any other state): what :meth:`release_permission` is told when it comes back."""
        return self._episode if self._state is _HALF_OPEN else None

    def release_permission(self, episode: int | None = None) -> None:
        """Give back a permit that was not used, or whose outcome is to be ignored. With
        ``episode`` (:meth:`probe_episode` when it was acquired) only a probe of the current
        HALF_OPEN stretch frees a probe again: a permit from an earlier stretch, or one taken
        while CLOSED, must not let one more probe through than ``permitted``."""
        self._advance(self._clock())
        if self._state is _HALF_OPEN and (episode is None or episode == self._episode):
            permitted = self._config.permitted_number_of_calls_in_half_open_state
            self._free_probes = min(permitted, self._free_probes + 1)

    def on_success(self, duration: float) -> None:
        """Record a call that succeeded after ``duration`` seconds."""
        self._record(False, duration)

    def on_error(self, duration: float) -> None:
        """Record a call that failed after ``duration`` seconds."""
        self._record(True, duration)

    def _record(self, failed: bool, duration: float) -> None:
        now = self._clock()
        state = self._state
        if state is _OPEN or state is _HALF_OPEN:  # the only states _advance can move
            self._advance(now)
            state = self._state
        if state is _DISABLED or state is _FORCED_OPEN:
            return
        slow = duration > self._slow_call_duration
        self._window.record(failed, slow, now)
        if state is _OPEN or state is _METRICS_ONLY:
            return
        # The window's total is its snapshot at ``now``: record() has just moved it there.
        # Below the minimum number of calls nothing is judged; above a threshold it trips.
        tally = self._window.total
        calls = tally.calls
        if calls == 0 or calls < self._minimum:
            return
        # The rates exactly as _rates computes them (same operations, same floats).
        if (
            tally.failed * 100.0 / calls >= self._failure_threshold
            or tally.slow * 100.0 / calls >= self._slow_rate_threshold
        ):
            self._transition(_OPEN, now)
        elif state is _HALF_OPEN:
            self._transition(_CLOSED, now)

    def metrics(self) -> CircuitBreakerMetrics:
        """The current state's window, as resilience4j's ``CircuitBreaker.Metrics`` reports it."""
        now = self._clock()
        self._advance(now)
        tally = self._window.snapshot(now)
        failure_rate, slow_rate = self._rates(tally)
        return CircuitBreakerMetrics(
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            number_of_buffered_calls=tally.calls,
            number_of_failed_calls=tally.failed,
            number_of_slow_calls=tally.slow,
            number_of_slow_failed_calls=tally.slow_failed,
            number_of_successful_calls=tally.calls - tally.failed,
            number_of_not_permitted_calls=self._not_permitted,
            cumulative_not_permitted=self._cumulative_not_permitted,
        )
