"""A simulated API business: who signs up, how they integrate and call, who abuses, and what
the report must show.

A business scenario is a YAML file with ``kind: api_business`` (``ogsim run`` dispatches on
it). Every model forbids unknown fields and every problem is reported as ``file:line: field:
message``, as :func:`sim.scenario.load_scenario` does for the capacity scenarios. The
analytics settings are named here field by field but hold no defaults of their own: a field
left out takes the engine's default (:class:`operators.analytics.AnalyticsSettings`), so the
simulation always runs the live operator's configuration unless the file says otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from operators import ConfigFileError, Plan, default_plans, line_of, read_yaml_mapping
from sim.scenario import field_problems, read_document, start_in_range

if TYPE_CHECKING:
    from operators.analytics import AnalyticsSettings

__all__ = [
    "ABUSE_KINDS",
    "API_NAMES",
    "AbuseKind",
    "AbuseSpec",
    "AnalyticsSpec",
    "BusinessExpectation",
    "BusinessScenario",
    "CredentialTheftSpec",
    "DetectorSpec",
    "DevelopersSpec",
    "EnumerationSpec",
    "QuotaFarmingSpec",
    "TrafficSpec",
    "is_business_file",
    "load_business_scenario",
    "metric_names",
]

AbuseKind = Literal["credential_theft", "enumeration", "quota_farming"]
ABUSE_KINDS: tuple[AbuseKind, ...] = ("credential_theft", "enumeration", "quota_farming")

ApiName = Literal[
    "sim-swap",
    "number-verification",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification",
    "location-retrieval",
    "kyc-match",
    "quality-on-demand",
]
API_NAMES: tuple[str, ...] = (
    "sim-swap",
    "number-verification",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification",
    "location-retrieval",
    "kyc-match",
    "quality-on-demand",
)
"""The CAMARA APIs an application may call, named as the gateway's usage events name them."""

Span = tuple[float, float]
"""A ``[low, high]`` range a value is drawn from uniformly."""

MAX_CALLS_PER_HOUR = 1e6
"""The largest median plateau (calls an hour): with a sigma of :data:`MAX_SIGMA` and growth,
an application's hourly mean stays far within what numpy's Poisson draw accepts."""
MAX_SIGMA = 3.0
"""The largest sigma of a lognormal draw (e**(3 * 5) is already 3e6 times the median)."""
BUCKET_SECONDS = 3600.0
"""The simulation draws hourly buckets, whatever the live operator's bucket length."""


class _Model(BaseModel):
    """No unknown field, no infinity or NaN (a rate or window of ``.inf`` reaches numpy)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _span(value: Span) -> Span:
    low, high = value
    if low < 0 or high < low:
        raise ValueError(f"a range is [low, high] with 0 <= low <= high (got [{low}, {high}])")
    return value


# -- developers ----------------------------------------------------------------------------


class LognormalDelay(_Model):
    """A delay whose logarithm is normal: ``median_hours`` and the log's ``sigma``."""

    distribution: Literal["lognormal"] = "lognormal"
    median_hours: float = Field(default=6.0, gt=0)
    sigma: float = Field(default=1.2, ge=0)


class ExponentialDelay(_Model):
    """A memoryless delay of mean ``mean_hours``."""

    distribution: Literal["exponential"] = "exponential"
    mean_hours: float = Field(gt=0)


Delay = Annotated[LognormalDelay | ExponentialDelay, Field(discriminator="distribution")]


class DevelopersSpec(_Model):
    """How developers arrive and get going.

    ``total`` developers arrive as a Poisson process over the first ``arrival_days`` (the
    whole run by default); ``rate_per_day`` instead fixes the rate. ``integration_delay`` runs
    from sign-up to the first token; ``never_integrate`` is the share that never gets one.
    """

    total: int | None = Field(default=None, ge=1, le=1_000_000,
                              description="expected arrivals in all")
    rate_per_day: float | None = Field(default=None, gt=0, le=10_000,
                                       description="arrivals per day")
    arrival_days: float | None = Field(default=None, gt=0, description="default: the run")
    never_integrate: float = Field(default=0.2, ge=0, le=1)
    integration_delay: Delay = LognormalDelay()
    application_delay_hours: float = Field(
        default=0.5, ge=0, description="mean time from sign-up to the first application"
    )
    extra_applications: float = Field(
        default=0.2, ge=0, description="mean further applications per developer (Poisson)"
    )
    team_share: float = Field(
        default=0.3, ge=0, le=1, description="share joining an existing organisation"
    )


# -- traffic -------------------------------------------------------------------------------


class DiurnalSpec(_Model):
    """Each application's day: a cosine around a local peak hour, and quieter weekends."""

    amplitude: float = Field(default=0.7, ge=0, lt=1)
    peak_hour: float = Field(default=14.0, ge=0, lt=24, description="UTC hour of the peak")
    peak_spread_hours: float = Field(default=3.0, ge=0, description="per-application jitter")
    weekend_factor: float = Field(default=0.6, gt=0, le=1)


class TrafficSpec(_Model):
    """Calls of an integrated application: plateau, ramp, cycles, growth, churn and answers.

    ``calls_per_hour`` is the plateau's mean (over the week) drawn per application from a
    lognormal; ``ramp_days`` the time to reach it after the first success, from
    ``ramp_start_share`` of it. Every week a
    developer grows (rate times ``growth_factor``, reached gradually over the week) with
    ``growth_probability`` or starts to churn with ``churn_probability``: its traffic then
    halves every ``churn_halving_days`` until below 2 % of its peak, when it stops.
    """

    calls_per_hour_median: float = Field(default=12.0, gt=0, le=MAX_CALLS_PER_HOUR)
    calls_per_hour_sigma: float = Field(default=1.0, ge=0, le=MAX_SIGMA)
    ramp_days: float = Field(default=5.0, ge=0)
    ramp_start_share: float = Field(
        default=0.3, gt=0, le=1, description="share of the plateau on the first day live"
    )
    growth_probability: float = Field(default=0.1, ge=0, le=1, description="per week")
    growth_factor: float = Field(default=1.5, ge=1)
    churn_probability: float = Field(default=0.04, ge=0, le=1, description="per week")
    churn_halving_days: float = Field(default=4.0, gt=0)
    diurnal: DiurnalSpec = DiurnalSpec()
    error_share: float = Field(default=0.03, ge=0, lt=1, description="mean 4xx/5xx share")
    subscribers_median: float = Field(
        default=60.0, ge=1, description="a normal application's pool of subscribers"
    )
    subscribers_sigma: float = Field(default=0.8, ge=0, le=MAX_SIGMA)
    apis_per_application: float = Field(
        default=0.5, ge=0, description="mean APIs beyond the first (Poisson)"
    )
    upgrade_probability: float = Field(
        default=0.3, ge=0, le=1, description="per day near a quota: move to the next plan"
    )


# -- abuse ---------------------------------------------------------------------------------


class _AbuseKindSpec(_Model):
    count: int = Field(default=0, ge=0, description="abusers of this kind in the run")


class CredentialTheftSpec(_AbuseKindSpec):
    """A normal application's key, stolen: from ``at_day`` (a day drawn in the range) it is
    also used from a new source at ``volume_factor`` times its usual rate (at least
    ``min_calls_per_hour``) for ``duration_hours``, over ``targets`` subscribers; with
    ``odd_hours_share`` the thief works at the victim's night."""

    at_day: Span = (14.0, 80.0)
    min_age_days: float = Field(default=7.0, ge=0, description="victim's traffic age at theft")
    duration_hours: Span = (6.0, 36.0)
    volume_factor: Span = (8.0, 30.0)
    min_calls_per_hour: float = Field(default=150.0, ge=0)
    odd_hours_share: float = Field(default=0.5, ge=0, le=1)
    targets: int = Field(default=10, ge=1, description="distinct subscribers the thief calls")
    error_share: float = Field(default=0.1, ge=0, lt=1)

    _spans = field_validator("at_day", "duration_hours", "volume_factor")(_span)


class EnumerationSpec(_AbuseKindSpec):
    """A developer who integrates normally, then after ``after_days`` of traffic walks the
    numbering plan from one key: ``subscribers_per_hour`` distinct numbers an hour (one call
    each), most of them unknown (``not_found_share`` answered 404), for ``duration_hours``."""

    after_days: Span = (4.0, 20.0)
    duration_hours: Span = (8.0, 48.0)
    subscribers_per_hour: Span = (400.0, 3000.0)
    not_found_share: float = Field(default=0.6, ge=0, lt=1)
    plan: str = Field(default="pay-as-you-go", description="the plan an enumerator pays for")

    _spans = field_validator("after_days", "duration_hours", "subscribers_per_hour")(_span)


class QuotaFarmingSpec(_AbuseKindSpec):
    """A developer who creates ``applications`` applications within ``within_hours`` on the
    ``plan`` (a plan with a quota) and calls each at ``fill`` times the quota for ``days``
    (a farm exists because the demand is above one quota: what is over it is throttled)."""

    applications: tuple[int, int] = (3, 7)
    within_hours: float = Field(default=6.0, gt=0)
    plan: str = "free"
    fill: Span = (1.0, 2.0)
    days: Span = (30.0, 60.0)

    _spans = field_validator("fill", "days")(_span)

    @field_validator("applications")
    @classmethod
    def _at_least_two(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 2 or high < low:
            raise ValueError(f"applications is [low, high] with 2 <= low <= high (got {value})")
        return value


class AbuseSpec(_Model):
    """How many abusers of each kind, and how each behaves (ground truth of the scoring)."""

    credential_theft: CredentialTheftSpec = CredentialTheftSpec()
    enumeration: EnumerationSpec = EnumerationSpec()
    quota_farming: QuotaFarmingSpec = QuotaFarmingSpec()


# -- analytics -----------------------------------------------------------------------------


class DetectorSpec(_Model):
    """The detectors' settings (:class:`operators.analytics.DetectorSettings`); a field left
    out keeps the engine's default."""

    bucket_seconds: float | None = Field(
        default=None, description=f"{BUCKET_SECONDS:g} only: the simulation draws hours"
    )
    season_buckets: int | None = Field(default=None, ge=1)
    recent_buckets: int | None = Field(default=None, ge=1)
    min_history: int | None = Field(default=None, ge=0)
    threshold: float | None = Field(default=None, gt=0)
    thresholds: dict[str, Annotated[float, Field(gt=0)]] | None = Field(
        default=None, description="per alert kind (quota_farming: 10), overriding threshold"
    )
    record_floor: float | None = Field(default=None, ge=0)
    enumeration_min_subscribers: int | None = Field(default=None, ge=0)
    min_calls: int | None = Field(default=None, ge=0)

    @field_validator("bucket_seconds")
    @classmethod
    def _hourly(cls, value: float | None) -> float | None:
        if value is not None and value != BUCKET_SECONDS:
            raise ValueError(
                f"the simulation draws hourly buckets: bucket_seconds is {BUCKET_SECONDS:g} "
                f"or left out (got {value:g})"
            )
        return value


class AnalyticsSpec(_Model):
    """The analytics' settings (:class:`operators.analytics.AnalyticsSettings`); a field left
    out keeps the engine's default. ``funnel_api`` is the API of the funnel's last step."""

    detectors: DetectorSpec = DetectorSpec()
    funnel_window: float | None = Field(default=None, gt=0, description="seconds")
    churn_weeks: int | None = Field(default=None, ge=1)
    dormant_days: int | None = Field(default=None, ge=1)
    upsell_share: float | None = Field(default=None, gt=0, le=1)
    alert_cooldown_buckets: int | None = Field(default=None, ge=0)
    alert_cooldown_days: int | None = Field(default=None, ge=0)
    funnel_api: ApiName = "sim-swap"

    def settings(self) -> AnalyticsSettings:
        """The engine's settings with this file's fields applied."""
        from operators.analytics import AnalyticsSettings, DetectorSettings

        detectors = dataclasses.replace(
            DetectorSettings(), **self.detectors.model_dump(exclude_none=True)
        )
        given = self.model_dump(exclude_none=True, exclude={"detectors", "funnel_api"})
        return dataclasses.replace(AnalyticsSettings(), detectors=detectors, **given)


# -- expectations --------------------------------------------------------------------------

KIND_METRICS = ("precision", "recall", "time_to_detect_hours", "time_to_detect_p90_hours")
"""Measured per abuse kind: ``precision.enumeration``, ``time_to_detect_hours.quota_farming``."""
RUN_METRICS = (
    "funnel_error",
    "funnel_conversion",
    "true_conversion",
    "integration_error",
    "churn_precision",
    "churn_recall",
    "false_alarm_share",
)
"""Measured once per run (see :mod:`sim.business.scoring`)."""


def metric_names() -> tuple[str, ...]:
    """Every metric an expectation may name."""
    return tuple(f"{m}.{k}" for m in KIND_METRICS for k in ABUSE_KINDS) + RUN_METRICS


class BusinessExpectation(_Model):
    """A bound on one scored metric, e.g. ``precision.credential_theft`` at least 0.8."""

    name: str | None = None
    metric: str
    min: float | None = None
    max: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in metric_names():
            kinds = ", ".join(f"{m}.<kind>" for m in KIND_METRICS)
            raise ValueError(
                f"unknown metric {value!r} (known: {kinds} with kind one of "
                f"{', '.join(ABUSE_KINDS)}; {', '.join(RUN_METRICS)})"
            )
        return value

    @model_validator(mode="after")
    def _bounded(self) -> BusinessExpectation:
        if self.min is None and self.max is None:
            raise ValueError("an expectation needs min or max")
        return self

    @property
    def label(self) -> str:
        return self.name or self.metric


class SweepSpec(_Model):
    """Detector thresholds at which :mod:`sim.business.scoring` redraws precision and recall
    from the recorded scores (no re-run)."""

    thresholds: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 25.0)

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)) or value[0] <= 0:
            raise ValueError("thresholds must be a non-empty ascending list of numbers > 0")
        return value


# -- the scenario --------------------------------------------------------------------------

class BusinessScenario(_Model):
    """A simulated API business over ``days`` from ``start`` (a whole UTC hour)."""

    kind: Literal["api_business"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    seed: int = Field(default=0, ge=0, description="numpy seeds are non-negative")
    start: datetime = Field(
        default=datetime(2025, 3, 3, 0, 0, tzinfo=UTC), description="calendar time at day 0"
    )
    days: float = Field(gt=0, le=3660, description="simulated days")
    developers: DevelopersSpec
    traffic: TrafficSpec = TrafficSpec()
    apis: dict[ApiName, float] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "sim-swap": 4.0,
            "number-verification": 3.0,
            "device-reachability-status": 1.0,
            "location-verification": 1.0,
            "kyc-match": 1.0,
        },
        min_length=1,
        description="relative weights of the APIs applications choose",
    )
    plans: tuple[Plan, ...] = Field(default_factory=default_plans, min_length=1)
    plan_mix: dict[str, float] = Field(
        default_factory=lambda: {"free": 0.7, "pay-as-you-go": 0.25, "enterprise": 0.05},
        min_length=1,
        description="relative weights of the plans new applications take",
    )
    abuse: AbuseSpec = AbuseSpec()
    analytics: AnalyticsSpec = AnalyticsSpec()
    sweep: SweepSpec = SweepSpec()
    expectations: tuple[BusinessExpectation, ...] = ()

    @field_validator("start")
    @classmethod
    def _whole_hour(cls, value: datetime) -> datetime:
        value = start_in_range(value)
        if value.timestamp() % 3600:
            raise ValueError("start must be a whole hour (buckets are hours since the epoch)")
        return value

    @field_validator("apis", "plan_mix")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w < 0 or not math.isfinite(w) for w in value.values()) or not sum(value.values()):
            raise ValueError("weights are finite, non-negative and not all zero")
        return value

    @property
    def epoch(self) -> float:
        """Epoch seconds of virtual time zero."""
        return self.start.timestamp()

    @property
    def seconds(self) -> float:
        return self.days * 86400.0

    @property
    def arrival_rate(self) -> float:
        """Developers arriving per second."""
        spec = self.developers
        window = (spec.arrival_days or self.days) * 86400.0
        if spec.rate_per_day is not None:
            return spec.rate_per_day / 86400.0
        assert spec.total is not None
        return spec.total / window

    @property
    def arrival_seconds(self) -> float:
        return min(self.seconds, (self.developers.arrival_days or self.days) * 86400.0)

    def plan(self, name: str) -> Plan:
        return next(p for p in self.plans if p.name == name)


# -- loading -------------------------------------------------------------------------------


def _where(path: Path, node: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    line = line_of(node, loc)
    return f"{path}:{line}" if line else str(path)


def _settings_field(spec: AnalyticsSpec, message: str) -> tuple[str, ...]:
    """Where in ``analytics`` the engine's complaint ``message`` points: the field it names
    first among those the file gives (``recent_buckets must fit in season_buckets * ...``)."""
    given: list[tuple[str, ...]] = [
        ("detectors", name) for name in spec.detectors.model_dump(exclude_none=True)
    ]
    given += [(name,) for name in spec.model_dump(exclude_none=True) if name != "detectors"]
    found = ((re.search(rf"\b{loc[-1]}\b", message), loc) for loc in given)
    named = [(match.start(), loc) for match, loc in found if match]
    return min(named)[1] if named else ()


def _cross_check(path: Path, node: yaml.Node | None, scenario: BusinessScenario) -> list[str]:
    """Names that pydantic cannot relate: plans, the analytics floor, the arrival spec."""
    problems: list[str] = []

    def report(loc: tuple[Any, ...], message: str) -> None:
        problems.append(f"{_where(path, node, loc)}: {'.'.join(map(str, loc))}: {message}")

    names = [plan.name for plan in scenario.plans]
    for name in scenario.plan_mix:
        if name not in names:
            report(("plan_mix", name), f"unknown plan {name!r} (plans: {', '.join(names)})")
    if scenario.abuse.enumeration.plan not in names:
        report(
            ("abuse", "enumeration", "plan"),
            f"unknown plan {scenario.abuse.enumeration.plan!r} (plans: {', '.join(names)})",
        )
    farming = scenario.abuse.quota_farming
    if farming.plan not in names:
        report(("abuse", "quota_farming", "plan"), f"unknown plan {farming.plan!r}")
    elif farming.count and scenario.plan(farming.plan).quota is None:
        report(("abuse", "quota_farming", "plan"), f"plan {farming.plan!r} has no quota to farm")
    spec = scenario.developers
    if (spec.total is None) == (spec.rate_per_day is None):
        report(("developers",), "give exactly one of total and rate_per_day")
    problems.extend(_check_analytics(path, node, scenario))
    return problems


def _check_analytics(path: Path, node: yaml.Node | None, scenario: BusinessScenario) -> list[str]:
    """Build the engine's settings as the run will, so that what the engine refuses is named
    at its field's line here, and check what depends on them: the sweep against the floor of
    kept scores, churn weeks against the weeks kept."""
    from operators.analytics import WEEKS_KEPT

    def at(loc: tuple[Any, ...], message: str) -> str:
        return f"{_where(path, node, loc)}: {'.'.join(map(str, loc))}: {message}"

    spec = scenario.analytics
    try:
        settings = spec.settings()
    except ValueError as error:
        return [at(("analytics", *_settings_field(spec, str(error))), str(error))]
    problems: list[str] = []
    floor = settings.detectors.record_floor
    if scenario.sweep.thresholds[0] < floor:
        problems.append(
            at(
                ("sweep", "thresholds"),
                f"{scenario.sweep.thresholds[0]:g} is below analytics.detectors.record_floor "
                f"({floor:g}): scores under the floor are not kept",
            )
        )
    if settings.churn_weeks >= WEEKS_KEPT:
        problems.append(
            at(
                ("analytics", "churn_weeks"),
                f"at most {WEEKS_KEPT - 1}: the analytics keeps {WEEKS_KEPT} weeks and churn "
                f"compares churn_weeks + 1 of them (got {settings.churn_weeks})",
            )
        )
    return problems


def is_business_file(path: str | Path) -> bool:
    """Whether ``path`` is a business scenario (``kind: api_business``); False when it cannot
    be read, so the capacity scenarios' loader reports the problem."""
    try:
        _, data = read_yaml_mapping(path)
    except ConfigFileError:
        return False
    return data.get("kind") == "api_business"


def load_business_scenario(
    path: str | Path,
    *,
    seed: int | None = None,
    days: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> BusinessScenario:
    """The business scenario at ``path`` with dotted ``overrides`` (and ``seed``, ``days``)
    applied, validated. Raises :class:`ConfigFileError` listing ``file:line: field: why``."""
    source, node, data = read_document(path, overrides)
    if seed is not None:
        data["seed"] = seed
    if days is not None:
        data["days"] = days
    try:
        scenario = BusinessScenario.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError(str(source), field_problems(source, node, error)) from error
    problems = _cross_check(source, node, scenario)
    if problems:
        raise ConfigFileError(str(source), problems)
    return scenario
