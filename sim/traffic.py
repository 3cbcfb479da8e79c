"""Traffic: arrival processes and the applications' clients, with timeouts and retries.

Arrivals are generated segment by segment between rate changes (spike starts and ends), so
a Poisson process with spikes is exact (memorylessness lets each segment restart at its
boundary) and a diurnal curve is sampled by thinning within each segment. A client runs one
operation per arrival: pick a subscriber line, get a token (cached client credentials, or
CIBA per operation), then attempts (straight to the operator, or through the aggregator,
whose Telco Finder picks the operator), each bounded by the client timeout, retried by the
live :class:`~operators.policies.RetryPolicy` (and its :class:`RetryBudget`) on ``env.now``.
A timed-out request keeps running in the operator: its work is wasted, which is what lets
retries sustain an overload. An operation is an object driven by callbacks, not a process:
each attempt is answered by the operator's callback or by the client's deadline
(:class:`~sim.tiers.deadlines.Deadlines`), whichever comes first, at the instant it happens,
so an operation schedules no event of its own except a backoff timer.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar, cast

import simpy

from operators.camara import WORKLOADS, operation_named
from operators.gateway import is_billable
from operators.policies import RetryBudget, RetryPolicy
from sim.metrics import CLIENT_TIMEOUT, KeyStats, Metrics, PairStats
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
from sim.tiers.timers import Timer, call_later, clock

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


_log = math.log


def arrival_times(
    arrival: ArrivalProcess, spikes: tuple[Spike, ...], duration: float, rng: random.Random
) -> Iterator[float]:
    """Arrival instants in [0, duration), in order.

    Constant arrivals are counted, then each is placed in the middle of its slot,
    ``start + (k + 1/2) * gap``: adding the gap up in floating point, from ``start + gap``, lost
    one call per segment (10/s for 20 s gave 199, the per-second counts read 10, 9, 10, 10,
    11), and a call on a slot's edge would fall on the whole seconds where faults and spikes
    begin, its side of the fault decided by event order. Exponential gaps are
    ``Random.expovariate``'s own formula written out (the same draws and values, without its
    frame per arrival)."""
    for start, end, factor in _segments(spikes, duration):
        t = start
        if isinstance(arrival, ConstantArrivals):
            rate = arrival.rate * factor
            # the k with (k + 1/2) / rate < length, the product rounded first so that 20 s *
            # 10/s is 200 calls even where it comes out 200.00000000000003
            for k in range(max(0, math.ceil(round((end - start) * rate - 0.5, 9)))):
                yield start + (k + 0.5) / rate
        elif isinstance(arrival, DiurnalArrivals):
            peak = arrival.rate * (1 + arrival.amplitude) * factor
            omega = 2 * math.pi / arrival.period
            while (t := t + -_log(1.0 - rng.random()) / peak) < end:  # rng.expovariate(peak)
                rate = arrival.rate * (
                    1 + arrival.amplitude * math.cos(omega * (t - arrival.peak_at))
                )
                if rng.random() * peak <= rate * factor:
                    yield t
        else:
            rate = arrival.rate * factor
            uniform = rng.random
            while (t := t + -_log(1.0 - uniform()) / rate) < end:  # rng.expovariate(rate)
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


_bisect_right = bisect.bisect_right

T = TypeVar("T")


class _Chooser(Generic[T]):
    """Weighted choice by bisection over cumulative weights (one uniform per draw), answering
    the chosen value itself (an operator object, an API name), not its name to look up."""

    __slots__ = ("cumulative", "last", "names", "total", "values")

    def __init__(self, weights: Mapping[str, float], values: Mapping[str, T]) -> None:
        self.names = list(weights)
        self.values = [values[name] for name in self.names]
        total = 0.0
        self.cumulative: list[float] = []
        for name in self.names:
            total += weights[name]
            self.cumulative.append(total)
        self.total = total
        self.last = len(self.names) - 1
        """The index a uniform at the very top (rounding) is held to."""

    def __call__(self, rng: random.Random) -> T:
        index = _bisect_right(self.cumulative, rng.random() * self.total)
        return self.values[index if index < self.last else self.last]


class _Reply:
    """One attempt's answer: the first of the operator's reply and the client's deadline.

    Both reach the operation's :meth:`_Operation.answered` directly, at the virtual instant
    they happen; whichever comes second finds the attempt no longer ``active`` and is dropped.
    """

    __slots__ = ("active", "operation")

    def __init__(self, operation: _Operation) -> None:
        self.operation = operation
        self.active = True

    def __call__(self, answer: Answer) -> None:
        if self.active:
            self.active = False
            self.operation.answered(answer)

    def expire(self) -> None:
        self.active = False
        self.operation.answered(TIMED_OUT)

    def fetched(self, event: simpy.Event) -> None:
        """The token this attempt waited for came (or not): send the request, or fail it."""
        if not self.active:
            return  # the deadline passed first
        answer = cast(Answer, event.value)
        if answer.ok:
            self.operation.send(self)
        else:
            self(answer)


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
            spec.client.retry, random.Random(f"{seed}:{app_id}:retry"), clock(env)
        )
        self._retry_on = frozenset(spec.client.retry.retry_on) | {0}
        weights = spec.operators or {op_id: op.spec.market_share for op_id, op in operators.items()}
        self._pick_operator = _Chooser(weights, operators)
        apis = {str(api): weight for api, weight in spec.apis.items()}
        self._pick_api = _Chooser(apis, {api: api for api in apis})
        self._tokens: dict[str, float] = {}
        self._fetching: dict[str, simpy.Event] = {}
        self._deadlines = Deadlines(env)
        self._billable: dict[tuple[str, int], int] = {}
        self._stats: dict[SimOperator, dict[str, KeyStats]] = {op: {} for op in operators.values()}
        """Each operator's keys by API (two lookups by an object and a string are cheaper
        than building and hashing a tuple key per call)."""
        self._times: Iterator[float] = iter(())
        self._next_arrival = self._arrive
        """The bound method, made once (each arrival's timer would make one)."""
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

    def _arrive(self, timer: Timer | None) -> None:
        if timer is not None:
            self.begin()
        t = next(self._times, None)
        if t is not None:
            call_later(self.env, t - self.env._now, self._next_arrival)

    def begin(self) -> None:
        """One API operation arrives: a line, maybe a CIBA token, then its first attempt."""
        rng = self._rng
        chosen = self._pick_operator(rng)
        api = self._pick_api(rng)
        # rng.randrange(len(lines)), written out as Random._randbelow draws it (same bits)
        lines = chosen.lines
        count = len(lines)
        if not count:
            raise ValueError(f"{chosen.id} has no subscriber lines to call")
        bits = count.bit_length()
        index = rng.getrandbits(bits)
        while index >= count:
            index = rng.getrandbits(bits)
        line = lines[index]
        # Direct calls go to the operator whose range holds the number (the app's contract);
        # calls through the aggregator go where its finder says, and count for the operator
        # that serves the number now.
        operator = chosen
        if self._via:
            assert self.aggregator is not None
            serving = self.aggregator.serving(line.number)
            operator = self.operators.get(serving or "", chosen)
        by_api = self._stats[operator]
        stats = by_api.get(api)
        if stats is None:
            stats = by_api[api] = self.metrics.key(operator.id, api, self.id)
        # A ported number: its home operator (the range holder) and the serving one settle.
        pair = None if operator is chosen else self.metrics.pair(chosen.id, operator.id, self.id)
        operation = _Operation(self, operator, api, line, stats, pair, self.env._now)
        self.metrics.offered(stats, self.id, operator.id)
        if self._ciba:
            operator.issue_token(self.spec.auth, operation.granted)
        else:
            self.retry.record_call()
            operation.attempt()

    def ready(self, operator: SimOperator) -> bool:
        """No partition in the way and no token to fetch: the request can go at once."""
        if self.partitioned(self.id, AGGREGATOR if self._via else operator.id, False):
            return False
        return not self._cached_tokens or self._tokens.get(operator.id, -1.0) > self.env._now

    def wait_for_token(self, operator: SimOperator, reply: _Reply) -> None:
        """An attempt behind a partition (its deadline answers) or waiting for a token."""
        if self.partitioned(self.id, AGGREGATOR if self._via else operator.id, False):
            return  # blackholed: the client's deadline answers
        fetch = self._fetching.get(operator.id)
        if fetch is None or fetch.triggered:
            fetch = self._fetch_token(operator)
            self._fetching[operator.id] = fetch
        fetch.callbacks.append(reply.fetched)

    def billable(self, api: str, status: int) -> int:
        """The calls a finished workload bills (the live rule, asked once per api and status)."""
        key = (api, status)
        found = self._billable.get(key)
        if found is None:
            found = self._billable[key] = billable_calls(api, status)
        return found

    def _fetch_token(self, operator: SimOperator) -> simpy.Event:
        fetched = self.env.event()

        def issued(answer: Answer) -> None:
            if answer.ok:
                self._tokens[operator.id] = self.env.now + operator.config.lifetimes.access_token
            fetched.succeed(answer)

        operator.issue_token(None, issued)
        return fetched


class _Operation:
    """One API operation of an application, from its arrival until success or giving up.

    It runs on callbacks, not as a process: an attempt's answer (or its deadline) calls
    :meth:`answered`, a backoff timer calls :meth:`attempt` again; nothing waits on an event
    of its own.
    """

    __slots__ = ("api", "app", "line", "number", "operator", "pair", "started", "stats")

    def __init__(
        self,
        app: SimApplication,
        operator: SimOperator,
        api: str,
        line: Line,
        stats: KeyStats,
        pair: PairStats | None,
        started: float,
    ) -> None:
        self.app = app
        self.operator = operator
        self.api = api
        self.line = line
        self.stats = stats
        self.pair = pair
        self.started = started
        self.number = 1
        """The attempt under way (1 for the first)."""

    def granted(self, answer: Answer) -> None:
        """The CIBA round ended: attempts begin, or the operation fails without one."""
        if answer.ok:
            self.app.retry.record_call()
            self.attempt()
            return
        app, stats = self.app, self.stats
        app.metrics.attempt(stats, False)
        app.metrics.attempt_failed(stats, answer.code or "UNKNOWN")
        self._gave_up()

    def attempt(self, _: object = None) -> None:
        """Send the request now (or wait for a token first), bounded by the client timeout."""
        app = self.app
        stats = self.stats
        app.metrics.attempt(stats, self.number > 1)
        reply = _Reply(self)
        app._deadlines.add(app.env._now + app._timeout, reply)
        operator = self.operator
        if app.ready(operator):
            if app._via:
                assert app.aggregator is not None
                app.aggregator.handle(app.client, self.api, self.line, reply)
            else:
                operator.handle(app.client, self.api, self.line, False, reply)
        else:
            app.wait_for_token(operator, reply)

    def send(self, reply: _Reply) -> None:
        """The request itself: to the aggregator or straight to the operator (as
        :meth:`attempt` sends it when it can go at once)."""
        app = self.app
        if app._via:
            assert app.aggregator is not None
            app.aggregator.handle(app.client, self.api, self.line, reply)
        else:
            self.operator.handle(app.client, self.api, self.line, False, reply)

    def answered(self, answer: Answer) -> None:
        """The attempt ended: done, retried after the policy's delay, or given up."""
        app, stats = self.app, self.stats
        metrics = app.metrics
        if answer.ok:
            metrics.finished(stats, app.id, self.operator.id, True, self.started)
            billed = app._billable.get((self.api, answer.status))
            if billed is None:
                billed = app.billable(self.api, answer.status)
            stats.billable += billed
            pair = self.pair
            if pair is not None:
                pair.completed += 1
                pair.ok += 1
                pair.billable += billed
            return
        metrics.attempt_failed(stats, answer.code or "UNKNOWN")
        delay = app.retry.next_delay(self.number) if answer.status in app._retry_on else None
        if delay is None:
            self._gave_up()
            return
        self.number += 1
        if delay > 0:
            call_later(app.env, delay, self.attempt)
        else:
            self.attempt()

    def _gave_up(self) -> None:
        app = self.app
        app.metrics.finished(self.stats, app.id, self.operator.id, False, self.started)
        if self.pair is not None:
            self.pair.completed += 1
