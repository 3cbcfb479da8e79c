"""An autoscaler with Kubernetes' HorizontalPodAutoscaler semantics (``autoscaling/v2``).

A pure decision object on an injected clock: given the replicas a pool has now (when each
started, whether it is ready, its metric), it says how many the pool should have. The caller
(the simulation's data centre, a live process pool) applies the answer and calls again every
:attr:`AutoscalerConfig.sync_period`; the object remembers only its past recommendations and
scale events, as the HPA controller does.

==================================================  =============================================
HPA behaviour                                       ogsim
==================================================  =============================================
desired = ceil(current * metric / target)           covered, "current" being the replicas that
                                                    are ready and report the metric; the metric
                                                    is their average (an ``AverageValue`` or
                                                    ``Utilization`` target)
tolerance (default 0.1)                             covered: no change while metric / target is
                                                    within 1 +- tolerance
minReplicas, maxReplicas                            covered, applied after every other rule
missing metrics                                     covered: a ready replica without a metric
                                                    counts as 100 % of target when scaling down,
                                                    0 % when scaling up; a change that this
                                                    reverses or brings within tolerance is
                                                    dropped
not-yet-ready replicas                              covered: not ready, or started less than
                                                    ``readiness_delay`` ago (the controller's
                                                    initial-readiness-delay, 30 s); set aside,
                                                    counted as 0 % when scaling up, ignored when
                                                    scaling down
behavior.scaleUp / scaleDown                        covered: stabilizationWindowSeconds (up:
  stabilizationWindowSeconds                        lowest recommendation in the window; down:
                                                    highest), defaults 0 s up and 300 s down
behavior policies (Pods, Percent; periodSeconds)    covered: change since the start of each
  selectPolicy Max / Min / Disabled                 policy's period, Max takes the policy that
                                                    allows the most change, Min the least
several metrics (highest proposal wins)             covered (:meth:`Autoscaler.decide_many`);
                                                    with a metric unreadable, no scale-down
external / object metrics, container resources,    not covered (the caller computes the per-
  cpu-initialization-period, scale to zero          replica value it wants scaled on)
==================================================  =============================================
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from operators.types import Clock

__all__ = [
    "Autoscaler",
    "AutoscalerConfig",
    "PolicyKind",
    "ReplicaSample",
    "ScaleDecision",
    "ScalingPolicy",
    "ScalingRules",
    "SelectPolicy",
]


class PolicyKind(StrEnum):
    """What a scaling policy bounds: a number of replicas or a percentage of them."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    """Which of several policies wins: the one allowing most change, least, or none at all."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(BaseModel):
    """At most ``value`` replicas (or percent of them) of change per ``period`` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PolicyKind
    value: int = Field(gt=0)
    period: float = Field(gt=0, le=1800)


class ScalingRules(BaseModel):
    """One direction's behaviour: its stabilisation window and its rate policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stabilization_window: float = Field(default=0.0, ge=0, le=3600)
    policies: tuple[ScalingPolicy, ...] = ()
    select_policy: SelectPolicy = SelectPolicy.MAX


def _default_scale_up() -> ScalingRules:
    return ScalingRules(
        stabilization_window=0.0,
        policies=(
            ScalingPolicy(kind=PolicyKind.PERCENT, value=100, period=15),
            ScalingPolicy(kind=PolicyKind.PODS, value=4, period=15),
        ),
    )


def _default_scale_down() -> ScalingRules:
    return ScalingRules(
        stabilization_window=300.0,
        policies=(ScalingPolicy(kind=PolicyKind.PERCENT, value=100, period=15),),
    )


class AutoscalerConfig(BaseModel):
    """The HPA's spec and behaviour with Kubernetes' defaults; times in seconds.

    ``target`` is the wanted average of the metric per replica, in the metric's unit (a
    utilisation of 0.6, 40 calls per second).
    """

    # no infinities: an infinite window or period never decides again
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    target: float = Field(gt=0)
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=10, ge=1)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_up: ScalingRules = Field(default_factory=_default_scale_up)
    scale_down: ScalingRules = Field(default_factory=_default_scale_down)
    readiness_delay: float = Field(
        default=30.0, ge=0, description="a replica's metric counts this long after it started"
    )
    sync_period: float = Field(
        default=15.0, gt=0, description="how often the caller should ask (the controller's loop)"
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalerConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One replica as the autoscaler sees it: when it started, whether ready, its metric.

    ``value`` is ``None`` when the replica reported nothing (its metrics are missing).
    """

    started: float
    value: float | None
    ready: bool = True


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """How many replicas to run, and why.

    ``recommendation`` is the metric's proposal before stabilisation, policies and bounds;
    ``reason`` names the rule that settled ``desired``.
    """

    at: float
    current: int
    recommendation: int
    desired: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Stamped:
    at: float
    value: int


class Autoscaler:
    """Recommends a replica count from samples, remembering recommendations and scale events."""

    def __init__(self, config: AutoscalerConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._recommendations: deque[_Stamped] = deque()
        self._ups: deque[_Stamped] = deque()  # replicas added, when
        self._downs: deque[_Stamped] = deque()  # replicas removed, when
        self._horizon = max(
            [config.scale_up.stabilization_window, config.scale_down.stabilization_window]
            + [p.period for p in config.scale_up.policies + config.scale_down.policies]
        )

    def _ready(self, replica: ReplicaSample, now: float) -> bool:
        return replica.ready and now - replica.started >= self.config.readiness_delay

    def propose(self, replicas: Sequence[ReplicaSample], now: float) -> int | None:
        """The metric's proposal (the replica calculator), or ``None`` when no metric is usable.

        The average over ready replicas with a metric is compared with the target; replicas set
        aside (missing metric, not ready) then dampen the change as Kubernetes does.
        """
        current = len(replicas)
        target = self.config.target
        tolerance = self.config.tolerance
        values: list[float] = []
        missing = unready = 0
        for replica in replicas:
            if not self._ready(replica, now):
                unready += 1
            elif replica.value is None:
                missing += 1
            else:
                values.append(replica.value)
        if not values:
            return None
        ratio = sum(values) / len(values) / target
        rebalance_unready = unready > 0 and ratio > 1.0
        if missing == 0 and not rebalance_unready:
            if abs(1.0 - ratio) <= tolerance:
                return current
            return math.ceil(ratio * len(values))
        # Fill in the replicas set aside: missing ones at 100 % of target when the metric says
        # scale down, at 0 % when it says scale up; unready ones at 0 %, and only to scale up.
        total, count = sum(values), len(values)
        if ratio < 1.0:
            total += missing * target
        count += missing + (unready if rebalance_unready else 0)
        new_ratio = total / count / target
        if (
            abs(1.0 - new_ratio) <= tolerance
            or (ratio < 1.0 < new_ratio)
            or (new_ratio < 1.0 < ratio)
        ):
            return current
        proposal = math.ceil(new_ratio * count)
        if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
            return current
        return proposal

    def decide(self, replicas: Sequence[ReplicaSample]) -> ScaleDecision:
        """The replica count for now, from one metric's samples; the caller applies it."""
        now = self._clock()
        return self._settle(len(replicas), self.propose(replicas, now), now)

    def decide_many(self, metrics: Sequence[Sequence[ReplicaSample]]) -> ScaleDecision:
        """As :meth:`decide` with several metrics (one sample list each): the highest wins."""
        now = self._clock()
        current = len(metrics[0]) if metrics else 0
        proposals = [self.propose(samples, now) for samples in metrics]
        usable = [p for p in proposals if p is not None]
        proposal = max(usable) if usable else None
        if proposal is not None and proposal < current and len(usable) < len(proposals):
            proposal = current  # a metric we cannot read might want more: do not scale down
        return self._settle(current, proposal, now)

    def _settle(self, current: int, proposal: int | None, now: float) -> ScaleDecision:
        config = self.config
        self._trim(now)
        if proposal is None:
            # No usable metric: no change, but the bounds still hold.
            desired = min(max(current, config.min_replicas), config.max_replicas)
            reason = "no metric" if desired == current else "replica bounds"
            return self._applied(now, current, current, desired, reason)
        stabilised = self._stabilise(current, proposal, now)
        self._recommendations.append(_Stamped(now, proposal))
        desired, reason = self._limit(current, stabilised, now)
        if reason == "" and stabilised != proposal:
            reason = "stabilisation window"
        return self._applied(now, current, proposal, desired, reason or "metric")

    def _stabilise(self, current: int, proposal: int, now: float) -> int:
        """Scale up only to the lowest proposal of the up window, down to the highest of the
        down window (the current proposal included in both)."""
        up_cutoff = now - self.config.scale_up.stabilization_window
        down_cutoff = now - self.config.scale_down.stabilization_window
        up = down = proposal
        for past in self._recommendations:
            if past.at > up_cutoff:
                up = min(up, past.value)
            if past.at > down_cutoff:
                down = max(down, past.value)
        recommendation = current
        recommendation = max(recommendation, up)
        return min(recommendation, down)

    def _limit(self, current: int, desired: int, now: float) -> tuple[int, str]:
        """The policies' limit on change since each period began, then min and max replicas."""
        config = self.config
        lowest, highest = config.min_replicas, config.max_replicas
        reason = ""
        if desired > current:
            limit = self._up_limit(current, now)
            limit = max(limit, current)  # a policy never makes a scale-up into a scale-down
            if limit < highest:
                highest, reason = limit, "scale-up policy"
        elif desired < current:
            limit = self._down_limit(current, now)
            limit = min(limit, current)
            if limit > lowest:
                lowest, reason = limit, "scale-down policy"
        if desired > highest:
            return highest, reason or "max replicas"
        if desired < lowest:
            return lowest, reason or "min replicas"
        return desired, ""

    def _up_limit(self, current: int, now: float) -> int:
        rules = self.config.scale_up
        if rules.select_policy is SelectPolicy.DISABLED:
            return current
        if not rules.policies:
            return self.config.max_replicas
        limits = []
        for policy in rules.policies:
            start = self._period_start(current, now, policy.period)
            if policy.kind is PolicyKind.PODS:
                limits.append(start + policy.value)
            else:
                limits.append(math.ceil(start * (1 + policy.value / 100)))
        return max(limits) if rules.select_policy is SelectPolicy.MAX else min(limits)

    def _down_limit(self, current: int, now: float) -> int:
        rules = self.config.scale_down
        if rules.select_policy is SelectPolicy.DISABLED:
            return current
        if not rules.policies:
            return self.config.min_replicas
        limits = []
        for policy in rules.policies:
            start = self._period_start(current, now, policy.period)
            if policy.kind is PolicyKind.PODS:
                limits.append(start - policy.value)
            else:
                limits.append(int(start * (1 - policy.value / 100)))
        # Max allows the most change, which when scaling down is the lowest count.
        return min(limits) if rules.select_policy is SelectPolicy.MAX else max(limits)

    def _period_start(self, current: int, now: float, period: float) -> int:
        """The replica count when the last ``period`` seconds began (net of both directions)."""
        since = now - period
        added = sum(event.value for event in self._ups if event.at > since)
        removed = sum(event.value for event in self._downs if event.at > since)
        return current - added + removed

    def _applied(
        self, now: float, current: int, recommendation: int, desired: int, reason: str
    ) -> ScaleDecision:
        if desired > current:
            self._ups.append(_Stamped(now, desired - current))
        elif desired < current:
            self._downs.append(_Stamped(now, current - desired))
        return ScaleDecision(now, current, recommendation, desired, reason)

    def _trim(self, now: float) -> None:
        """Forget what no window or period can reach any more."""
        cutoff = now - self._horizon
        for history in (self._recommendations, self._ups, self._downs):
            while history and history[0].at <= cutoff:
                history.popleft()
