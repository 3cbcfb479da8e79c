"""An hour of a simulated business's calls, folded into the gateway's usage buckets.

Each live application's calls to each API are drawn for the hour as Poisson counts (its
plateau rate times ramp, growth or churn, and its weekly cycle), plus a thief's calls on a
stolen key and an enumerator's walk. The gateway's own quota counter
(:class:`operators.policies.QuotaCounter`) throttles what is over the plan's quota (429), a
binomial share of the rest fails (4xx/5xx), the gateway's ``is_billable`` says which answers
are billed, and the distinct subscribers are drawn as a
number (the occupancy of the application's pool by that many calls) and then added as that
many numbers to the same :class:`DistinctCounter` the live gateway fills. No call is ever an
object: an hour costs a few numbers per (application, API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from operators.analytics import MAX_DISTINCT, DistinctCounter, UsageBucket
from operators.policies import window_bounds, window_index
from sim.business.applications import HOUR, NUMBERS, Application, Subscription, hour_of_week
from sim.business.population import Population
from sim.business.revenue import billable_calls

if TYPE_CHECKING:
    from operators import Quota

__all__ = ["HourTotals", "HourlyTraffic", "quota_spans"]

Span = tuple[float, float]


def quota_spans(quota: Quota, epoch0: float) -> tuple[Span, ...]:
    """The quota windows the hour from epoch second ``epoch0`` (a whole hour) meets, each as
    ``(moment, share of the hour)``: the moment (the middle of the part of the hour in that
    window) is when the hour's calls in it are counted. One span for hour, day and month
    quotas (hours nest in them); sixty for a per-minute quota. Windows are the gateway's own
    (:func:`operators.policies.quota.window_index` and ``window_bounds``)."""
    spans: list[Span] = []
    at, end = epoch0, epoch0 + HOUR
    while at < end:
        _, window_end = window_bounds(quota.period, window_index(quota.period, at))
        until = min(window_end, end)
        spans.append(((at + until) / 2, (until - at) / HOUR))
        at = until
    return tuple(spans)


@dataclass(slots=True)
class HourTotals:
    """What one hour carried, for the daily series (abusive calls by kind)."""

    calls: int = 0
    successes: int = 0
    errors: int = 0
    throttled: int = 0
    abusive: dict[str, int] = field(default_factory=dict)


def _overlap(start: float, end: float, t0: float) -> float:
    return max(0.0, min(end, t0 + HOUR) - max(start, t0)) / HOUR


def _occupancy(pool: int, calls: int) -> float:
    """The chance that one subscriber of a pool of ``pool`` is among ``calls`` uniform calls."""
    return 1.0 - (1.0 - 1.0 / pool) ** calls if pool > 0 else 0.0


@dataclass(slots=True)
class _Entry:
    app: Application
    sub: Subscription
    normal: int = 0
    theft: int = 0
    walk: int = 0
    throttled: int = 0
    stolen_throttled: int = 0
    """Of ``throttled``, the thief's calls (they come from the thief's network)."""


class HourlyTraffic:
    """Draws each hour's usage buckets for a population; ``rng`` is its own stream."""

    def __init__(self, population: Population, rng: np.random.Generator) -> None:
        self.population = population
        self.rng = rng

    def _rates(self, t0: float) -> tuple[list[_Entry], list[float]]:
        """Every (application, API) with traffic this hour, and its three Poisson means."""
        epoch0 = self.population.epoch + t0
        how = hour_of_week(epoch0)
        mid, end = t0 + HOUR / 2, t0 + HOUR
        entries: list[_Entry] = []
        means: list[float] = []
        for app in self.population.live:
            if app.farming_per_day:
                if t0 >= app.farming_until:
                    continue
                base = app.farming_per_day / 24 * app.cycle[how]
            else:
                base = app.rate * app.level(mid) * app.ramp(mid) * app.cycle[how]
            theft, walk = app.theft, app.enumeration
            for position, sub in enumerate(app.subscriptions):
                if sub.since is None or sub.since >= end:
                    continue
                share = 1.0 if sub.since <= t0 else (end - sub.since) / HOUR
                entries.append(_Entry(app, sub))
                means.append(base * sub.share * share)
                stolen = walked = 0.0
                if position == 0 and theft is not None:
                    stolen = theft.rate * theft.cycle[how] * _overlap(theft.start, theft.end, t0)
                if position == 0 and walk is not None:
                    walked = walk.rate * _overlap(walk.start, walk.end, t0)
                means.extend((stolen, walked))
        return entries, means

    def _throttle(self, entries: list[_Entry], epoch0: float) -> None:
        """Count each subscription's calls on the gateway's quota counter; what it refuses is
        throttled, every part in proportion (calls of the hour interleave). An hour meeting
        several windows (a per-minute quota) spreads its calls over them at random."""
        spans: dict[str, tuple[Span, ...]] = {}
        for entry in entries:
            sub = entry.sub
            total = entry.normal + entry.theft + entry.walk
            quota = sub.plan.quota
            if total == 0 or quota is None:
                continue
            windows = spans.get(sub.plan.name)
            if windows is None:
                windows = spans[sub.plan.name] = quota_spans(quota, epoch0)
            counter = sub.quota_counter(quota, windows[0][0])
            if len(windows) == 1:
                parts = [total]
            else:
                parts = self.rng.multinomial(total, [share for _, share in windows]).tolist()
            allowed = 0
            for (moment, _), part in zip(windows, parts, strict=True):
                taken = min(part, counter.remaining_at(moment))
                counter.try_acquire_at(moment, taken)
                allowed += taken
            if allowed == total:
                continue
            entry.throttled = total - allowed
            theft = entry.theft * allowed // total
            walk = entry.walk * allowed // total
            entry.stolen_throttled = entry.theft - theft
            entry.normal, entry.theft, entry.walk = allowed - theft - walk, theft, walk

    def draw(self, t0: float) -> tuple[list[UsageBucket], HourTotals]:
        """The buckets of the hour starting at virtual second ``t0`` (calls > 0 only)."""
        epoch0 = self.population.epoch + t0
        entries, means = self._rates(t0)
        totals = HourTotals()
        if not entries:
            return [], totals
        counts = self.rng.poisson(np.asarray(means)).tolist()
        for index, entry in enumerate(entries):
            entry.normal, entry.theft, entry.walk = counts[3 * index : 3 * index + 3]
            if entry.sub.first_pending and entry.normal == 0:
                entry.normal = 1
        self._throttle(entries, epoch0)
        trials: list[int] = []
        chances: list[float] = []
        for entry in entries:
            app = entry.app
            theft, walk = app.theft, app.enumeration
            walk_fail = 0.0
            if walk is not None:
                walk_fail = walk.not_found_share + (1 - walk.not_found_share) * app.error_share
            failing = app.error_share * (0 if entry.sub.first_pending else 1)
            targets = len(theft.targets) if theft is not None else 0
            trials.extend((entry.normal, entry.theft, entry.walk, app.pool_size, targets))
            chances.extend(
                (
                    failing,
                    theft.error_share if theft is not None else 0.0,
                    walk_fail,
                    _occupancy(app.pool_size, entry.normal),
                    _occupancy(targets, entry.theft),
                )
            )
        draws = self.rng.binomial(np.asarray(trials), np.asarray(chances)).tolist()
        buckets: list[UsageBucket] = []
        for index, entry in enumerate(entries):
            errors_n, errors_t, errors_w, distinct_n, distinct_t = draws[5 * index : 5 * index + 5]
            bucket = self._bucket(entry, epoch0, errors_n + errors_t + errors_w)
            if bucket is None:
                continue
            # a draw of distinct numbers never exceeds the calls that named them: a live
            # bucket, one subscriber per call, cannot
            distinct_n, distinct_t = min(distinct_n, entry.normal), min(distinct_t, entry.theft)
            self._subscribers(bucket.subscribers, entry, distinct_n, distinct_t)
            self._sources(bucket, entry)
            entry.sub.first_pending = False
            entry.sub.billable += billable_calls(bucket)
            buckets.append(bucket)
            self._add(totals, entry, bucket)
        return buckets, totals

    def _bucket(self, entry: _Entry, epoch0: float, errors: int) -> UsageBucket | None:
        answered = entry.normal + entry.theft + entry.walk
        calls = answered + entry.throttled
        if calls == 0:
            return None
        return UsageBucket(
            entry.app.client_id,
            entry.sub.api,
            epoch0,
            calls=calls,
            successes=answered - errors,
            errors=errors,
            throttled=entry.throttled,
        )

    def _subscribers(
        self, counter: DistinctCounter, entry: _Entry, distinct: int, stolen: int
    ) -> None:
        """``distinct`` numbers of the pool (a window at a random place), ``stolen`` of the
        thief's targets, one new number per enumerating call (answered calls only)."""
        app = entry.app
        if distinct:
            size = app.pool_size
            first = int(self.rng.integers(size))
            low = app.pool_offset + first
            if first + distinct <= size:
                counter.update(NUMBERS[low : low + distinct])
            else:
                counter.update(NUMBERS[low : app.pool_offset + size])
                counter.update(NUMBERS[app.pool_offset : app.pool_offset + first + distinct - size])
        if stolen and app.theft is not None:
            counter.update(app.theft.targets[:stolen])
        walk = app.enumeration
        if entry.walk and walk is not None:
            first = walk.next_number
            walk.next_number += entry.walk
            shown = min(entry.walk, MAX_DISTINCT + 1)
            counter.update(f"+3469{number:07d}" for number in range(first, first + shown))

    def _sources(self, bucket: UsageBucket, entry: _Entry) -> None:
        app = entry.app
        stolen = entry.theft + entry.stolen_throttled
        home = bucket.calls - stolen
        if stolen and app.theft is not None:
            bucket.add_source(app.theft.source, stolen)
        if home > 0:
            if len(app.sources) > 1:
                split = int(self.rng.binomial(home, 0.5))
                for source, calls in zip(app.sources, (home - split, split), strict=False):
                    if calls:
                        bucket.add_source(source, calls)
            else:
                bucket.add_source(app.sources[0], home)

    @staticmethod
    def _add(totals: HourTotals, entry: _Entry, bucket: UsageBucket) -> None:
        totals.calls += bucket.calls
        totals.successes += bucket.successes
        totals.errors += bucket.errors
        totals.throttled += bucket.throttled
        parts = {"credential_theft": entry.theft, "enumeration": entry.walk}
        if entry.app.farming_per_day:
            parts["quota_farming"] = bucket.calls
        for kind, calls in parts.items():
            if calls:
                totals.abusive[kind] = totals.abusive.get(kind, 0) + calls
