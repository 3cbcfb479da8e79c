"""What a run produced and how each expectation was judged: records only, no behaviour.

They live apart from :mod:`sim.engine` (which builds them) and :mod:`sim.expectations` (which
measures them) so that neither of those imports the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sim.metrics import KeyStats, LittleCheck, TimeSeries, row_span, row_start
from sim.scenario import Scenario

__all__ = [
    "CONSENT_TOTALS",
    "RATIOS",
    "REPLICAS",
    "TOTALS",
    "RunResult",
    "StationLittle",
    "Verdict",
]

REPLICAS = "replicas."
"""The prefix of the per-second gauges counting each data centre's gateway replicas."""

TOTALS = (
    "operations",
    "completed",
    "succeeded",
    "attempts",
    "throttled",
    "availability",
    "goodput_per_second",
    "offered_per_second",
    "retry_amplification",
    "gateway_replica_hours",
)
"""The names of :meth:`RunResult.totals` in every run (known before it, so a sweep's
``--metric`` is checked before its runs)."""

RATIOS = ("availability", "retry_amplification")
"""The totals that are ratios of counts, undefined (None) when the count below is 0: a run in
which no operation completed has no availability, which is not an availability of 0."""

CONSENT_TOTALS = (
    "revoked_consent_refused",
    "revoked_consent_successes_within_lag",
    "revoked_consent_successes_after_lag",
)
"""The names :meth:`RunResult.totals` adds when a consent revocation wave ran."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One expectation's measured value and whether it lies within its bounds."""

    label: str
    metric: str
    value: float | None
    min: float | None
    max: float | None
    note: str | None = None
    """What the reader must know to read the value: a window the run covered only in part
    (measured over what it covered) or not at all (undefined)."""

    @property
    def passed(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        if self.min is not None and self.value < self.min:
            return False
        return not (self.max is not None and self.value > self.max)

    def as_dict(self) -> dict[str, Any]:
        """The verdict as a run's ``summary.json`` lists it (capacity and business runs)."""
        return {
            "name": self.label,
            "metric": self.metric,
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "passed": self.passed,
            **({"note": self.note} if self.note is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class StationLittle:
    """Little's law at one network function (its Occupancy's time averages)."""

    name: str
    mean_in_system: float
    throughput: float
    mean_sojourn: float

    @property
    def relative_error(self) -> float:
        product = self.throughput * self.mean_sojourn
        scale = max(self.mean_in_system, product, 1e-12)
        return abs(self.mean_in_system - product) / scale


@dataclass(slots=True)
class RunResult:
    """What one variant's run produced; :meth:`summary` is its deterministic digest."""

    scenario: Scenario
    series: TimeSeries
    keys: dict[tuple[str, str, str], KeyStats]
    little: LittleCheck
    stations: list[StationLittle]
    verdicts: list[Verdict]
    breaker_changes: dict[str, dict[str, int]]
    balancer_changes: list[tuple[float, str, str, bool]]
    calls: int
    events: dict[str, tuple[float, float]] = field(default_factory=dict)
    discovery: dict[str, int] = field(default_factory=dict)
    """Telco Finder searches by mode (SHALLOW, DEEP) and forwards that found a moved number."""
    ported: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    """Operations for ported numbers: (home, serving, application) -> (succeeded, completed)."""
    consent: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per operator with a consent revocation wave: calls refused, successes within and after
    the replication lag (ground truth, counted when the consent was checked)."""
    consent_waves: list[dict[str, Any]] = field(default_factory=list)
    """Each wave as scheduled per operator: timing, replication lag, lines, where they landed."""
    _rows: list[dict[str, float]] | None = field(default=None, init=False, repr=False)

    @property
    def rows(self) -> list[dict[str, float]]:
        """The per-second rows as dicts (built from :attr:`series` on first use, then kept)."""
        if self._rows is None:
            self._rows = self.series.rows()
        return self._rows

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def counts(self) -> dict[str, float]:
        """The totals that are always defined: whole-run counts over every key, rates over
        the run's duration, replica-hours and (with a wave) the revoked-consent counts."""
        keys = self.keys.values()
        offered = sum(k.offered for k in keys)
        ok = sum(k.ok for k in keys)
        duration = self.scenario.duration
        return {
            "operations": offered,
            "completed": sum(k.completed for k in keys),
            "succeeded": ok,
            "attempts": sum(k.attempts for k in keys),
            "throttled": sum(k.throttled for k in keys),
            "goodput_per_second": ok / duration,
            "offered_per_second": offered / duration,
            "gateway_replica_hours": sum(
                stats["replica_hours"] for stats in self.replicas().values()
            ),
            **self.consent_totals(),
        }

    def totals(self) -> dict[str, float | None]:
        """Whole-run counts and ratios over every key (:data:`TOTALS`, then any consent
        counts); a ratio of nothing is None (see :data:`RATIOS`), for readers to show as
        undefined and leave out of means, where it read 0.0 (a run in which nothing
        completed had an availability of 0)."""
        counts = self.counts()
        offered, completed = counts["operations"], counts["completed"]
        found: dict[str, float | None] = {
            **counts,
            "availability": counts["succeeded"] / completed if completed else None,
            "retry_amplification": counts["attempts"] / offered if offered else None,
        }
        return {name: found[name] for name in dict.fromkeys([*TOTALS, *counts])}

    def consent_totals(self, operator: str | None = None) -> dict[str, int]:
        """Revoked-consent counts over every operator with a wave (or one): none if no wave."""
        found = [c for op, c in self.consent.items() if operator in (None, op)]
        if not self.consent:
            return {}
        return {
            f"revoked_consent_{name}": sum(c[name] for c in found)
            for name in ("refused", "successes_within_lag", "successes_after_lag")
        }

    def replica_counts(self, operator: str | None = None) -> tuple[list[float], list[float]]:
        """Times and gateway replicas per second (every replica that costs: starting, ready,
        draining, failed until replaced), summed over the data centres of ``operator`` or of
        every operator; the count is sampled as each row closes (``t``, its end)."""
        columns = [
            name
            for name in self.series.names
            if name.startswith(REPLICAS)
            and (operator is None or name[len(REPLICAS) :].rsplit(".", 1)[0] == operator)
        ]
        counts = [0.0] * len(self.series)
        for name in columns:
            counts = [a + b for a, b in zip(counts, self.series.column(name), strict=True)]
        return self.series.column("t"), counts

    def _spans(self) -> list[float]:
        """The seconds each row covers: 1, and less for a run's trailing part of a second."""
        return [row_span(t) for t in self.series.column("t")]

    def replicas(self) -> dict[str, dict[str, float]]:
        """Per ``operator/data centre``: gateway replica-hours, the fewest, most and mean
        replicas per second (each row's sample counts for the time its row covers: a
        second, or the run's trailing part of one)."""
        found: dict[str, dict[str, float]] = {}
        spans = self._spans()
        for name in self.series.names:
            if not name.startswith(REPLICAS):
                continue
            operator, data_centre = name[len(REPLICAS) :].rsplit(".", 1)
            counts = self.series.column(name)
            if counts:
                seconds = _weighted(counts, spans)
                found[f"{operator}/{data_centre}"] = {
                    "replica_hours": seconds / 3600.0,
                    "min": int(min(counts)),  # counts, whichever way the series stores them
                    "max": int(max(counts)),
                    "mean": seconds / sum(spans),
                }
        return dict(sorted(found.items()))

    def replica_measure(
        self, metric: str, operator: str | None, start: float, end: float
    ) -> float | None:
        """A replica expectation's value: replica-hours, or the per-second count's max, min
        or time-weighted mean over the rows within ``[start, end)`` (see
        :func:`~sim.metrics.row_start`)."""
        times, counts = self.replica_counts(operator)
        spans = self._spans()
        if metric == "replica_hours":
            return _weighted(counts, spans) / 3600.0
        inside = [
            (c, span)
            for t, c, span in zip(times, counts, spans, strict=True)
            if row_start(t) >= start and t <= end
        ]
        if not inside:
            return None
        window = [c for c, _ in inside]
        if metric == "replicas_max":
            return max(window)
        if metric == "replicas_min":
            return min(window)
        return _weighted(window, [span for _, span in inside]) / sum(span for _, span in inside)


def _weighted(counts: list[float], spans: list[float]) -> float:
    """Replica-seconds: each sample times the seconds its row covers (whole seconds times 1,
    so a run of whole seconds sums exactly as it did when each sample counted one second)."""
    return sum(c * span for c, span in zip(counts, spans, strict=True))
