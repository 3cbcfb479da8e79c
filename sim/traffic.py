"""Traffic: arrival processes and the applications' clients, with timeouts and retries.

Arrivals are generated segment by segment between rate changes (spike starts and ends), so
a Poisson process with spikes is exact (memorylessness lets each segment restart at its
boundary) and a diurnal curve is sampled by thinning within each segment. A client runs one
operation per arrival: pick a subscriber line, get a token (cached client credentials, or
CIBA per operation), then attempts (straight to the operator, or through the aggregator,
whose Telco Finder picks the operator), each bounded by the client timeout, retried by the
live :class:`~operators.policies.RetryPolicy` (and its :class:`RetryBudget`) on ``env.now``.
A timed-out request keeps running in the operator: its work is wasted, which is what lets
retries sustain an overload. An attempt waits on one event, answered by the operator's
callback or by the client's deadline (:class:`~sim.tiers.deadlines.Deadlines`), whichever
comes first.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, cast

import simpy

from operators.camara import WORKLOADS, operation_named
from operators.gateway import is_billable
from operators.policies import RetryBudget, RetryPolicy
from sim.metrics import CLIENT_TIMEOUT, KeyStats, Metrics
from sim.scenario import (
    ApplicationSpec,
    ArrivalProcess,
    ConstantArrivals,
    DiurnalArrivals,
    RetrySpec,
    Spike,
)
from sim.tiers.aggregator import SimAggregator
from sim.tiers.deadlines import Deadlines
from sim.tiers.operator import AGGREGATOR, Answer, Client, Line, SimOperator

__all__ = ["SimApplication", "arrival_times", "retry_policy"]

TIMED_OUT = Answer(0, CLIENT_TIMEOUT)


def _segments(spikes: tuple[Spike, ...], duration: float) -> list[tuple[float, float, float]]:
    """``(start, end, factor)`` pieces of [0, duration) with a constant spike factor."""
    cuts = {0.0, duration}
    for spike in spikes:
        for moment in (spike.at, spike.at + spike.duration):
            if 0 < moment < duration:
                cuts.add(moment)
    ordered = sorted(cuts)
    pieces = []
    for start, end in itertools.pairwise(ordered):
        factor = 1.0
        for spike in spikes:
            if spike.at <= start < spike.at + spike.duration:
                factor *= spike.factor
        pieces.append((start, end, factor))
    return pieces


def arrival_times(
    arrival: ArrivalProcess, spikes: tuple[Spike, ...], duration: float, rng: random.Random
) -> Iterator[float]:
    """Arrival instants in [0, duration), in order."""
    for start, end, factor in _segments(spikes, duration):
        t = start
        if isinstance(arrival, ConstantArrivals):
            gap = 1.0 / (arrival.rate * factor)
            while (t := t + gap) < end:
                yield t
        elif isinstance(arrival, DiurnalArrivals):
            peak = arrival.rate * (1 + arrival.amplitude) * factor
            omega = 2 * math.pi / arrival.period
            while (t := t + rng.expovariate(peak)) < end:
                rate = arrival.rate * (
                    1 + arrival.amplitude * math.cos(omega * (t - arrival.peak_at))
                )
                if rng.random() * peak <= rate * factor:
                    yield t
        else:
            rate = arrival.rate * factor
            while (t := t + rng.expovariate(rate)) < end:
                yield t


def retry_policy(spec: RetrySpec, rng: random.Random, clock: Callable[[], float]) -> RetryPolicy:
    """The live RetryPolicy for a scenario's retry settings, its budget on ``clock``."""
    if spec.policy == "none":
        return RetryPolicy.none()
    budget = None
    if spec.budget is not None:
        budget = RetryBudget(
            spec.budget.ratio, spec.budget.min_per_second, spec.budget.window, clock
        )
    if spec.policy == "immediate":
        return RetryPolicy(spec.max_attempts, 0.0, 0.0, "none", rng, budget)
    return RetryPolicy(spec.max_attempts, spec.base_delay, spec.max_delay, spec.jitter, rng, budget)


class _Chooser:
    """Weighted choice by bisection over cumulative weights (one uniform per draw)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.names = list(weights)
        total = 0.0
        self.cumulative = []
        for name in self.names:
            total += weights[name]
            self.cumulative.append(total)
        self.total = total

    def __call__(self, rng: random.Random) -> str:
        index = bisect.bisect_right(self.cumulative, rng.random() * self.total)
        return self.names[min(index, len(self.names) - 1)]


class _Driver:
    """Runs an operation's generator on its events: a SimPy process without its own events.

    ``simpy.Process`` schedules an event to start and another to end, and neither is
    needed by an operation that nobody waits for; this resumes the generator from the
    callbacks of the events it yields, and lets it run on past events already processed.
    """

    __slots__ = ("_generator",)

    def __init__(self, generator: Generator[simpy.Event, Any, None]) -> None:
        self._generator = generator
        self._resume(None)

    def _resume(self, event: simpy.Event | None) -> None:
        value = None if event is None else event.value
        generator = self._generator
        while True:
            try:
                target = generator.send(value)
            except StopIteration:
                return
            if target.callbacks is not None:
                target.callbacks.append(self._resume)
                return
            value = target.value  # already processed: go on at once, as a Process would


class _Waiting:
    """An attempt's answer: the first of the operator's reply and the client's deadline."""

    __slots__ = ("active", "event")

    def __init__(self, event: simpy.Event) -> None:
        self.event = event
        self.active = True

    def __call__(self, answer: Answer) -> None:
        if self.active:
            self.active = False
            self.event.succeed(answer)

    def expire(self) -> None:
        self.active = False
        self.event.succeed(TIMED_OUT)


def billable_calls(workload: str, status: int) -> int:
    """The calls a finished workload bills: each of its operations, by the live rule."""
    return sum(is_billable(operation_named(op), status) for op in WORKLOADS[workload])


class SimApplication:
    """One application's arrivals and client behaviour against the federation."""

    def __init__(
        self,
        env: simpy.Environment,
        app_id: str,
        spec: ApplicationSpec,
        operators: dict[str, SimOperator],
        metrics: Metrics,
        *,
        seed: str,
        duration: float,
        partitioned: Callable[[str, str, bool], bool],
        aggregator: SimAggregator | None = None,
    ) -> None:
        self.env = env
        self.id = app_id
        self.spec = spec
        self.operators = operators
        self.metrics = metrics
        self.duration = duration
        self.partitioned = partitioned
        if spec.via_aggregator and aggregator is None:
            raise ValueError(f"{app_id} calls through the aggregator, but there is none")
        self.aggregator = aggregator
        self._arrival_rng = random.Random(f"{seed}:{app_id}:arrivals")
        self._rng = random.Random(f"{seed}:{app_id}:calls")
        self.retry = retry_policy(
            spec.client.retry, random.Random(f"{seed}:{app_id}:retry"), lambda: env.now
        )
        self._retry_on = frozenset(spec.client.retry.retry_on) | {0}
        weights = spec.operators or {op_id: op.spec.market_share for op_id, op in operators.items()}
        self._pick_operator = _Chooser(weights)
        self._pick_api = _Chooser({str(api): weight for api, weight in spec.apis.items()})
        self._tokens: dict[str, float] = {}
        self._fetching: dict[str, simpy.Event] = {}
        self._deadlines = Deadlines(env)
        self._stats: dict[tuple[str, str], KeyStats] = {}
        self._times: Iterator[float] = iter(())
        self._timeout = spec.client.timeout
        self._ciba = spec.auth.flow == "ciba"
        self._cached_tokens = spec.auth.flow == "client_credentials"
        self._via = spec.via_aggregator and aggregator is not None
        self.client = Client(
            app_id, spec.plan, spec.purpose, self._ciba, spec.environment == "sandbox"
        )

    def start(self) -> None:
        """Schedule the first arrival; each arrival starts an operation and the next one."""
        self._times = arrival_times(
            self.spec.arrival, self.spec.spikes, self.duration, self._arrival_rng
        )
        self._arrive(None)

    def _arrive(self, event: simpy.Event | None) -> None:
        if event is not None:
            _Driver(self.operation())
        t = next(self._times, None)
        if t is not None:
            self.env.timeout(t - self.env.now).callbacks.append(self._arrive)

    def _key(self, operator: str, api: str) -> KeyStats:
        stats = self._stats.get((operator, api))
        if stats is None:
            stats = self._stats[operator, api] = self.metrics.key(operator, api, self.id)
        return stats

    def operation(self) -> Generator[simpy.Event, Any, None]:
        """One API operation: a line, a token, then attempts until success or giving up."""
        env, metrics, rng = self.env, self.metrics, self._rng
        chosen = self.operators[self._pick_operator(rng)]
        api = self._pick_api(rng)
        line = chosen.lines[rng.randrange(len(chosen.lines))]
        # Direct calls go to the operator whose range holds the number (the app's contract);
        # calls through the aggregator go where its finder says, and count for the operator
        # that serves the number now.
        operator = chosen
        if self._via:
            assert self.aggregator is not None
            serving = self.aggregator.serving(line.number)
            operator = self.operators.get(serving or "", chosen)
        stats = self._key(operator.id, api)
        # A ported number: its home operator (the range holder) and the serving one settle.
        pair = None if operator is chosen else metrics.pair(chosen.id, operator.id, self.id)
        started = env.now
        metrics.offered(stats, self.id, operator.id)
        if self._ciba:
            granted = env.event()
            operator.issue_token(self.spec.auth, _Waiting(granted))
            answer = yield granted
            if not answer.ok:
                metrics.attempt(stats, retry=False)
                metrics.attempt_failed(stats, answer.code or "UNKNOWN")
                metrics.finished(stats, self.id, operator.id, False, started)
                if pair is not None:
                    pair.completed += 1
                return
        self.retry.record_call()
        attempt = 1
        while True:
            metrics.attempt(stats, retry=attempt > 1)
            deadline = env.now + self._timeout
            if self._ready(operator):
                answer = yield self._send(operator, api, line, deadline)
            else:
                answer = yield from self._attempt(operator, api, line, deadline)
            if answer.ok:
                metrics.finished(stats, self.id, operator.id, True, started)
                billed = billable_calls(api, answer.status)
                stats.billable += billed
                if pair is not None:
                    pair.completed += 1
                    pair.ok += 1
                    pair.billable += billed
                return
            metrics.attempt_failed(stats, answer.code or "UNKNOWN")
            delay = self.retry.next_delay(attempt) if answer.status in self._retry_on else None
            if delay is None:
                metrics.finished(stats, self.id, operator.id, False, started)
                if pair is not None:
                    pair.completed += 1
                return
            attempt += 1
            if delay > 0:
                yield env.timeout(delay)

    def _ready(self, operator: SimOperator) -> bool:
        """No partition in the way and no token to fetch: the request can go at once."""
        reached = AGGREGATOR if self._via else operator.id
        if self.partitioned(self.id, reached, False):
            return False
        return not self._cached_tokens or self._tokens.get(operator.id, -1.0) > self.env.now

    def _attempt(
        self, operator: SimOperator, api: str, line: Line, deadline: float
    ) -> Generator[simpy.Event, Any, Answer]:
        """One request behind a partition (it times out) or after fetching a token."""
        env = self.env
        reached = AGGREGATOR if self._via else operator.id
        if self.partitioned(self.id, reached, False):
            yield env.timeout(self._timeout)
            return TIMED_OUT
        fetch = self._fetching.get(operator.id)
        if fetch is None or fetch.triggered:
            fetch = self._fetch_token(operator)
            self._fetching[operator.id] = fetch
        yield fetch | env.timeout(max(0.0, deadline - env.now))
        if not fetch.triggered:
            return TIMED_OUT
        answer = cast(Answer, fetch.value)
        if not answer.ok:
            return answer
        return cast(Answer, (yield self._send(operator, api, line, deadline)))

    def _send(self, operator: SimOperator, api: str, line: Line, deadline: float) -> simpy.Event:
        """The request, and the event its answer (or the client's deadline) triggers."""
        replied = self.env.event()
        waiting = _Waiting(replied)
        self._deadlines.add(max(self.env.now, deadline), waiting)
        if self._via:
            assert self.aggregator is not None
            self.aggregator.handle(self.client, api, line, waiting)
        else:
            operator.handle(self.client, api, line, False, waiting)
        return replied

    def _fetch_token(self, operator: SimOperator) -> simpy.Event:
        fetched = self.env.event()

        def issued(answer: Answer) -> None:
            if answer.ok:
                self._tokens[operator.id] = self.env.now + operator.config.lifetimes.access_token
            fetched.succeed(answer)

        operator.issue_token(None, issued)
        return fetched
