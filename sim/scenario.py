"""A scenario file: topology, traffic, faults on a timeline, expectations, and variants.

Every model forbids unknown fields, because a typo in a scenario must name the field and its
line rather than be silently ignored. The file is loaded by :func:`load_scenario`, which
applies ``--duration``, ``--seed`` and ``--set key=value`` overrides before validation, then
checks cross-references (events named by expectations, operators named by faults) with the
same ``file:line: field: message`` errors as the pydantic ones.

A ``variants`` section runs the same world several ways in one report (the thundering herd
unprotected and protected): each variant is a set of dotted overrides applied to the base
document, plus its own expectations.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from operators import (
    ConfigFileError,
    Plan,
    TokenLifetimes,
    default_plans,
    default_purposes,
    field_problems,
    line_of,
    read_yaml_mapping,
    set_dotted,
)
from operators.core import CoreSpec, ExponentialServiceTime, Faults, ServiceTime
from operators.integrator import GuardSettings
from operators.policies import AutoscalerConfig, CircuitBreakerConfig

__all__ = [
    "API_NAMES",
    "CONSENT_METRICS",
    "REPLICA_METRICS",
    "AggregatorSpec",
    "ApplicationSpec",
    "ArrivalProcess",
    "BufferSpec",
    "ClientSpec",
    "DataCentreSpec",
    "Expectation",
    "FaultSpec",
    "OperatorSpec",
    "PoliciesSpec",
    "ReplicaFailure",
    "RetrySpec",
    "Scenario",
    "ScenarioFile",
    "Spike",
    "VariantSpec",
    "field_problems",
    "guard_policies",
    "load_scenario",
    "read_document",
    "scenario_json_schema",
]

API_NAMES: tuple[str, ...] = (
    "sim-swap.check",
    "sim-swap.retrieve-date",
    "number-verification.verify",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification.verify",
    "location-retrieval.retrieve",
    "kyc-match.match",
    "quality-on-demand.session",
)
"""The CAMARA operations a scenario's API mix may name (one integrator flow each)."""

ApiName = Literal[
    "sim-swap.check",
    "sim-swap.retrieve-date",
    "number-verification.verify",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification.verify",
    "location-retrieval.retrieve",
    "kyc-match.match",
    "quality-on-demand.session",
]

NAMED_ENTRIES = frozenset({"operators", "data_centres", "countries", "applications"})
"""Mappings of entries by name, into which a ``--set`` path may not reach past a missing name
(see :func:`~operators.config_file.set_dotted`)."""

Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A relative weight of a random choice: the chooser's running totals must rise, so a zero or
negative weight (which took every call from the others) is refused."""

UNBOUNDED = 1_000_000_000
"""Stands for "no limit" where a policy object needs an integer (buffer slots, waiting room)."""

MAX_REPLICAS = 1_000
"""Most replicas of one tier in one data centre: each is built as an object before the run, so
a slip of the finger (``replicas: 100000000``) was a MemoryError rather than an error naming
the field."""

MAX_WORKERS = 10_000
"""Most parallel calls of one replica (the same reason)."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _safe_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a usable name: it names files, so up to 64 letters, digits, '.',"
            " '_' and '-', starting with a letter or digit"
        )
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]
"""A scenario's or variant's name: it names files and folders (``runs/<name>``,
``timeseries-<variant>.csv``), so no ``/``, spaces or leading dot (a variant ``a/b`` ran to
its end and then failed writing its series)."""


class _Model(BaseModel):
    # No infinities: an infinite rate made every gap between arrivals zero (a run that never
    # advances its clock), an infinite duration overflowed the run's slices.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# -- topology ------------------------------------------------------------------------------


class StationSpec(_Model):
    """A tier of replicas, each with ``workers`` parallel slots and a per-call service time."""

    replicas: int = Field(default=2, ge=1, le=MAX_REPLICAS)
    workers: int = Field(
        default=64, ge=1, le=MAX_WORKERS, description="concurrent calls per replica"
    )
    service_time: ServiceTime = ExponentialServiceTime(mean=0.001)
    work_after_answer: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="gateway: the share of each call's service time spent after the call has"
        " passed on (live, the metering commit and the answer's writing, queued behind the"
        " work already waiting): it holds a worker without delaying that call",
    )
    wake_up: ServiceTime | None = Field(
        default=None,
        description="gateway: the time an idle replica takes to start on an arriving call"
        " (live, an event loop that slept waits for a core); none by default",
    )


class AggregatorSpec(_Model):
    """The aggregator's own processing of each hub call, as a station of its own.

    Live, the hub is one event loop per replica that, for every call, searches the Telco
    Finder, gets the serving operator's token and forwards the call; while it does, the next
    call waits. Each hub call here holds one of ``replicas`` x ``workers`` slots for one
    drawn ``service_time`` (first come, first served when all are busy) before it is routed,
    so the hub's queue and work show in the call's latency; ``waits`` then delays it
    without holding a worker (the hub's loop is free while it waits on the network). Without
    this section the hub costs no time, as before it existed.
    """

    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS, description="aggregator processes")
    workers: int = Field(
        default=1,
        ge=1,
        le=MAX_WORKERS,
        description="hub calls each replica works on at once (live: one loop)",
    )
    service_time: ServiceTime = Field(
        description="the hub's own time per call: the finder's search, the operator's token"
        " and the forwarding, one draw per call (a DEEP retry within the call is included)"
    )
    waits: ServiceTime | None = Field(
        default=None,
        description="the hub call's time outside the hub's loop and the operator's gateway"
        " (round trips to the finder and the token endpoint, the forwarded call's transport):"
        " it delays the call after the hub's work and holds no worker; none by default",
    )


class DataCentreSpec(_Model):
    """One data centre of an operator: its share of traffic, gateway and identity replicas.

    The gateway replicas live as in Kubernetes: a new one (scaled up, or replacing a failed
    one) takes ``replica_startup`` seconds before its readiness probe passes and it gets
    work; a failed one is replaced ``liveness_delay`` seconds after it failed (the liveness
    probe's period times its failure threshold, 10 s x 3 by default). ``autoscale`` scales
    them with the operators' HorizontalPodAutoscaler object on one metric, each replica's
    utilisation (busy share of its workers, the simulation's CPU utilisation): ``target``
    is that share, 0.6 for instance.
    """

    weight: int = Field(default=1, gt=0, le=1000, description="share for the global balancer")
    gateway: StationSpec = StationSpec()
    identity: StationSpec = StationSpec(
        replicas=1, workers=16, service_time=ExponentialServiceTime(mean=0.01)
    )
    replica_startup: float = Field(
        default=20.0, ge=0, description="seconds until a new gateway replica takes work"
    )
    liveness_delay: float = Field(
        default=30.0, ge=0, description="seconds until a failed gateway replica is replaced"
    )
    autoscale: AutoscalerConfig | None = Field(
        default=None,
        description="scale the gateway replicas on utilisation (target: busy share, e.g. 0.6)",
    )

    @model_validator(mode="after")
    def _replicas_within_bounds(self) -> DataCentreSpec:
        scale = self.autoscale
        if scale is not None and not (
            scale.min_replicas <= self.gateway.replicas <= scale.max_replicas
        ):
            raise ValueError(
                f"gateway.replicas ({self.gateway.replicas}) is outside autoscale.min_replicas "
                f"({scale.min_replicas}) .. autoscale.max_replicas ({scale.max_replicas})"
            )
        if scale is not None and scale.max_replicas > MAX_REPLICAS:
            raise ValueError(
                f"autoscale.max_replicas ({scale.max_replicas}) is above {MAX_REPLICAS}"
            )
        if scale is not None and scale.target > 1:
            raise ValueError(
                f"autoscale.target ({scale.target:g}) is a utilisation: at most 1 (e.g. 0.6)"
            )
        return self


DataCentreName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")]


class HealthCheckSpec(_Model):
    """The global load balancer's active health check of each data centre."""

    interval: float = Field(default=2.0, gt=0, description="seconds between probes")
    unhealthy_threshold: int = Field(default=2, ge=1, description="failed probes to take out")
    healthy_threshold: int = Field(default=2, ge=1, description="passed probes to put back")


class ThrottlingSpec(_Model):
    """The gateway's token bucket and quota per application and plan (the real Throttle)."""

    enabled: bool = True
    plans: tuple[Plan, ...] = Field(default_factory=default_plans)


class BufferSpec(_Model):
    """The integrator's request buffer per backend; null limits mean unbounded."""

    max_concurrent: int | None = Field(default=16, ge=1)
    max_waiting: int | None = Field(default=64, ge=0)
    max_wait: float = Field(default=1.0, ge=0, description="seconds in the buffer before 503")
    call_timeout: float = Field(default=5.0, gt=0, description="seconds before 504 TIMEOUT")


class SheddingSpec(_Model):
    """Admission load shedding: refuse when the expected wait exceeds ``target`` seconds."""

    target: float = Field(gt=0)


class PoliciesSpec(_Model):
    """The protective policies of one operator; null switches a policy off."""

    throttling: ThrottlingSpec = ThrottlingSpec()
    circuit_breaker: CircuitBreakerConfig | None = CircuitBreakerConfig(
        minimum_number_of_calls=20, sliding_window_size=50, wait_duration_in_open_state=10.0
    )
    buffer: BufferSpec = BufferSpec()
    load_shedding: SheddingSpec | None = None

    def guard_settings(self) -> GuardSettings:
        """The integrator's GuardSettings for these policies (unbounded as huge numbers)."""
        buffer = self.buffer
        return GuardSettings(
            max_concurrent=UNBOUNDED if buffer.max_concurrent is None else buffer.max_concurrent,
            max_waiting=UNBOUNDED if buffer.max_waiting is None else buffer.max_waiting,
            max_wait=buffer.max_wait,
            call_timeout=buffer.call_timeout,
            shed_target=None if self.load_shedding is None else self.load_shedding.target,
            breaker=self.circuit_breaker or CircuitBreakerConfig(),
        )


def guard_policies(guard: GuardSettings) -> dict[str, Any]:
    """``guard`` as a scenario's ``policies`` give it (buffer, breaker, shedding; throttling
    is not a guard's): :meth:`PoliciesSpec.guard_settings` of them gives ``guard`` back."""
    return {
        "buffer": {
            "max_concurrent": guard.max_concurrent,
            "max_waiting": guard.max_waiting,
            "max_wait": guard.max_wait,
            "call_timeout": guard.call_timeout,
        },
        "circuit_breaker": guard.breaker.model_dump(mode="json"),
        "load_shedding": None if guard.shed_target is None else {"target": guard.shed_target},
    }


class OperatorSpec(_Model):
    """One operator: numbers, data centres (active-active), network core, policies."""

    display_name: str | None = None
    country: str = Field(default="ES", pattern=r"^[A-Z]{2}$")
    mcc: str = Field(default="214", pattern=r"^[0-9]{3}$")
    mnc: str = Field(default="07", pattern=r"^[0-9]{2,3}$")
    number_ranges: tuple[str, ...] = Field(min_length=1)
    number_digits: int = Field(default=11, ge=8, le=15)
    subscribers: int = Field(
        default=50, ge=1, le=10_000, description="subscribers generated for the backends"
    )
    market_share: float = Field(default=1.0, gt=0, description="relative share of numbers")
    data_centres: dict[DataCentreName, DataCentreSpec] = Field(
        default_factory=lambda: {"dc1": DataCentreSpec()}, min_length=1
    )
    health_check: HealthCheckSpec = HealthCheckSpec()
    core: CoreSpec = CoreSpec()
    policies: PoliciesSpec = PoliciesSpec()
    lifetimes: TokenLifetimes = TokenLifetimes()


class CountrySpec(_Model):
    """A country's numbering, for operator discovery: its calling code and portability."""

    calling_code: str = Field(pattern=r"^\+[1-9][0-9]{0,2}$")
    portability: bool = False


class PortingSpec(_Model):
    """A share of ``donor``'s numbers now served by ``recipient`` (same country, portable).

    ``synced`` is the share of those ports the aggregator's Telco Finder already knows (its
    records at start); the others are routed to the donor on a ``SHALLOW`` search, answered
    ``404 IDENTIFIER_NOT_FOUND`` there, and found by a ``DEEP`` search, as live.
    """

    donor: str
    recipient: str
    share: float = Field(gt=0, le=1)
    synced: float = Field(default=1.0, ge=0, le=1)


class TopologySpec(_Model):
    """The operators of the federation by id, their countries' numbering, and ported numbers."""

    operators: dict[str, OperatorSpec] = Field(min_length=1)
    countries: dict[str, CountrySpec] = Field(
        default_factory=dict,
        description="by ISO code; calling codes of common countries are known without it",
    )
    ports: tuple[PortingSpec, ...] = ()
    aggregator: AggregatorSpec | None = Field(
        default=None,
        description="the hub's processing time and workers; none: the hub costs no time",
    )


# -- traffic -------------------------------------------------------------------------------


MAX_RATE = 1_000_000.0
"""Calls per second one application may offer (before spikes): far above what any modelled
backend serves, and low enough that a typo (1e12) is refused instead of filling the memory
with a run that cannot end."""


class PoissonArrivals(_Model):
    """Exponential gaps at ``rate`` calls per second."""

    process: Literal["poisson"] = "poisson"
    rate: float = Field(gt=0, le=MAX_RATE)


class ConstantArrivals(_Model):
    """Evenly spaced calls at ``rate`` per second."""

    process: Literal["constant"] = "constant"
    rate: float = Field(gt=0, le=MAX_RATE)


class DiurnalArrivals(_Model):
    """A Poisson process whose rate follows a cosine day: ``rate * (1 + amplitude*cos(...))``."""

    process: Literal["diurnal"] = "diurnal"
    rate: float = Field(gt=0, le=MAX_RATE, description="mean calls per second")
    amplitude: float = Field(default=0.5, ge=0, le=1)
    period: float = Field(default=86400.0, gt=0)
    peak_at: float = Field(default=0.0, description="seconds of the run at which rate peaks")


ArrivalProcess = Annotated[
    PoissonArrivals | ConstantArrivals | DiurnalArrivals, Field(discriminator="process")
]


class Spike(_Model):
    """For ``duration`` seconds from ``at``, the arrival rate is multiplied by ``factor``."""

    name: str | None = None
    at: float = Field(ge=0)
    duration: float = Field(gt=0)
    factor: float = Field(gt=0, le=10_000)


class RetryBudgetSpec(_Model):
    """Finagle's budget: retries up to ``ratio`` of recent calls plus a floor per second."""

    ratio: float = Field(default=0.1, ge=0)
    min_per_second: float = Field(default=1.0, ge=0)
    window: float = Field(default=10.0, gt=0)


class RetrySpec(_Model):
    """Client retries: none, immediate (harmful), or capped exponential backoff with jitter."""

    policy: Literal["none", "immediate", "backoff"] = "none"
    max_attempts: int = Field(default=1, ge=1, description="calls in all, the first included")
    base_delay: float = Field(default=0.1, ge=0)
    max_delay: float = Field(default=10.0, ge=0)
    jitter: Literal["full", "none"] = "full"
    budget: RetryBudgetSpec | None = None
    retry_on: tuple[int, ...] = Field(
        default=(429, 503, 504), description="HTTP statuses retried (client timeouts always are)"
    )


class ClientSpec(_Model):
    """How an application's client behaves: its timeout and its retries."""

    timeout: float = Field(default=5.0, gt=0, description="seconds before the client gives up")
    retry: RetrySpec = RetrySpec()


class AuthSpec(_Model):
    """How the application gets tokens: client credentials (cached) or CIBA per operation."""

    flow: Literal["client_credentials", "ciba"] = "client_credentials"
    answer_time: ServiceTime = ExponentialServiceTime(mean=6.0)
    approval_rate: float = Field(default=0.95, ge=0, le=1)


class ApplicationSpec(_Model):
    """One application: its plan, arrivals, API mix, operators reached, auth and client."""

    plan: str = "enterprise"
    via_aggregator: bool = False
    arrival: ArrivalProcess
    spikes: tuple[Spike, ...] = ()
    apis: dict[ApiName, Weight] = Field(min_length=1, description="relative weights")
    operators: dict[str, Weight] | None = Field(
        default=None, description="relative weights; default: the operators' market shares"
    )
    auth: AuthSpec = AuthSpec()
    client: ClientSpec = ClientSpec()
    environment: Literal["production", "sandbox"] = Field(
        default="production",
        description="a sandbox application reaches only the operators' documented test numbers",
    )
    purpose: str | None = Field(
        default=None,
        description="the dpv: purpose the application names; default: each API's purpose in "
        "the operation table. Its legal basis (consent, legitimate interest, contract) decides "
        "what the gateway checks, as live",
    )

    @field_validator("purpose")
    @classmethod
    def _known_purpose(cls, value: str | None) -> str | None:
        offered = [policy.purpose for policy in default_purposes()]
        if value is not None and value not in offered:
            raise ValueError(f"unknown purpose {value!r} (offered: {', '.join(offered)})")
        return value

    @model_validator(mode="after")
    def _sandbox_direct(self) -> ApplicationSpec:
        if self.environment == "sandbox" and self.via_aggregator:
            raise ValueError(
                "environment: sandbox is modelled for direct calls only (via_aggregator: false)"
            )
        return self


class TrafficSpec(_Model):
    """The applications calling the federation."""

    applications: dict[str, ApplicationSpec] = Field(min_length=1)


# -- faults --------------------------------------------------------------------------------


class _Fault(_Model):
    name: str | None = None
    at: float = Field(ge=0)
    duration: float | None = Field(default=None, gt=0, description="null: until the end")

    @property
    def end(self) -> float:
        return math.inf if self.duration is None else self.at + self.duration


class DataCentreDown(_Fault):
    """A data centre stops answering; the load balancer must detect it."""

    kind: Literal["data_centre_down"] = "data_centre_down"
    operator: str
    data_centre: str


class BackendFault(_Fault):
    """A network function slows down, fails a share of calls, or refuses all (Faults)."""

    kind: Literal["backend"] = "backend"
    operator: str
    function: Literal[
        "sim_data_register",
        "location_server",
        "policy_function",
        "kyc_register",
        "nv_authenticator",
    ]
    faults: Faults


class Partition(_Fault):
    """No packet passes between two parties (application ids, operator ids, 'aggregator')."""

    kind: Literal["partition"] = "partition"
    between: tuple[str, str]


class IdentityOutage(_Fault):
    """An operator's identity server refuses token requests."""

    kind: Literal["identity_outage"] = "identity_outage"
    operator: str


class TrustRevocation(_Fault):
    """An operator stops trusting the aggregator's assertions: its calls get 401."""

    kind: Literal["trust_revocation"] = "trust_revocation"
    operator: str
    issuer: str = "aggregator"


class ConsentRevocation(_Fault):
    """A share of subscribers revoke consent: consent-based calls for them get 403.

    Each revocation is recorded in one data centre of its operator (``data_centre``, else
    one drawn by the data centres' weights) and seen there at once; the operator's other data
    centres see it ``replication_lag`` seconds later. The wave's revocations happen at
    ``at`` or, with ``spread``, evenly over ``[at, at + spread)``. A ``duration`` ends the
    revocation (consent granted again) everywhere at once.
    """

    kind: Literal["consent_revocation"] = "consent_revocation"
    operator: str | None = None
    share: float = Field(gt=0, le=1)
    replication_lag: float = Field(
        default=0.0, ge=0, description="seconds until the other data centres see a revocation"
    )
    data_centre: str | None = Field(
        default=None, description="where the revocations are recorded; default: by DC weight"
    )
    spread: float = Field(default=0.0, ge=0, description="seconds over which the wave revokes")


class ReplicaFailure(_Fault):
    """Gateway replicas of a data centre die (SIGKILL, out of memory): the calls they hold
    are lost and they leave rotation; each is replaced after the data centre's
    ``liveness_delay`` and takes work again after its ``replica_startup``. Instant: no
    ``duration``; shown one second wide."""

    kind: Literal["replica_failure"] = "replica_failure"
    operator: str
    data_centre: str
    replicas: int = Field(
        default=1, ge=1, le=MAX_REPLICAS, description="how many replicas die (oldest first)"
    )

    @model_validator(mode="after")
    def _instant(self) -> ReplicaFailure:
        if self.duration is not None:
            raise ValueError(
                "duration: a replica failure is instant (its replacement comes after the data "
                "centre's liveness_delay)"
            )
        return self

    @property
    def end(self) -> float:
        return self.at + 1.0


FaultSpec = Annotated[
    DataCentreDown
    | BackendFault
    | Partition
    | IdentityOutage
    | TrustRevocation
    | ConsentRevocation
    | ReplicaFailure,
    Field(discriminator="kind"),
]


# -- expectations --------------------------------------------------------------------------

Metric = Literal[
    "availability",
    "goodput",
    "goodput_ratio",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "throttle_share",
    "error_share",
    "recovery_time",
    "revoked_consent_successes_after_lag",
    "revoked_consent_successes_within_lag",
    "replica_hours",
    "replicas_max",
    "replicas_min",
    "replicas_mean",
]

CONSENT_METRICS = frozenset(
    {"revoked_consent_successes_after_lag", "revoked_consent_successes_within_lag"}
)
"""Counts of calls that succeeded for a revoked consent (whole run, maybe per operator)."""

REPLICA_METRICS = frozenset({"replica_hours", "replicas_max", "replicas_min", "replicas_mean"})
"""Gateway replicas summed over data centres (of one operator, if named): replica-hours over
the run, or the per-second count's max, min or mean over the run or a window."""


class Expectation(_Model):
    """A pass/fail assertion on one metric, over the run or a window, maybe filtered.

    Windows are ``[start, end)`` seconds, shifted by the ``reference`` point (start or end)
    of ``relative_to`` (a fault or spike name) when given, so a shortened run with moved
    faults keeps its meaning. Filters
    (operator, application, api) apply to whole-run metrics only. ``recovery_time`` is the
    time from the ``reference`` point of ``event`` until per-second availability is back to
    ``level`` of its pre-event value for ``hold`` seconds (infinite if it never is within the
    run, undefined when the run ends before a ``min`` bound's time: unseen, not passed); a
    second whose calls were asked but none answered is not available, and a second with
    neither counts for nothing.
    """

    name: str | None = None
    metric: Metric
    min: float | None = None
    max: float | None = None
    window: tuple[float, float] | None = None
    relative_to: str | None = None
    operator: str | None = None
    application: str | None = None
    api: ApiName | None = None
    event: str | None = None
    reference: Literal["start", "end"] = "end"
    level: float = Field(default=0.95, gt=0, le=1)
    hold: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _coherent(self) -> Expectation:
        if self.min is None and self.max is None:
            raise ValueError("an expectation needs min or max")
        if self.metric == "recovery_time" and self.event is None:
            raise ValueError("recovery_time needs the event it recovers from")
        if self.metric in CONSENT_METRICS:
            if self.window is not None or self.application or self.api:
                raise ValueError(f"{self.metric} counts the whole run (operator filter only)")
            return self
        if self.metric in REPLICA_METRICS:
            if self.application or self.api:
                raise ValueError(f"{self.metric} counts gateway replicas (operator filter only)")
            if self.metric == "replica_hours" and self.window is not None:
                raise ValueError("replica_hours counts the whole run (no window)")
            if self.window is not None and self.window[1] <= self.window[0]:
                raise ValueError("window must be [start, end) with end > start")
            return self
        filtered = self.operator or self.application or self.api
        if filtered and (self.window is not None or self.metric in ("goodput", "recovery_time")):
            raise ValueError("operator/application/api filters apply to whole-run ratios only")
        if self.window is not None and self.window[1] <= self.window[0]:
            raise ValueError("window must be [start, end) with end > start")
        return self

    @property
    def label(self) -> str:
        """A readable name for tables: the ``name``, else every field that says what is
        measured (not the bounds), those left at their defaults omitted; so two unnamed
        expectations share a label only when they measure the same value (the scenario's
        cross-check refuses a label given twice)."""
        if self.name:
            return self.name
        parts: list[str] = [self.metric]
        for key in ("operator", "application", "api", "event"):
            value = getattr(self, key)
            if value:
                parts.append(f"{key}={value}")
        if self.window:
            parts.append(f"[{self.window[0]:g},{self.window[1]:g})")
            if self.relative_to:
                parts.append(f"after {self.relative_to}")
        defaults = type(self).model_fields
        for key in ("reference", "level", "hold"):
            value = getattr(self, key)
            if value != defaults[key].default:
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        return " ".join(parts)


EARLIEST_START = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)
"""The calendar a run may start in: months, weeks and usage buckets are counted from the Unix
epoch, and a run must end before Python's datetimes do."""


def start_in_range(value: datetime) -> datetime:
    """A run's ``start``, in UTC when it names no zone, or ValueError outside the range.

    Checked when the file is read: before, a start in 1969 failed only once the run was over,
    while its results were being summed by month, and the run was lost.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST_START <= value <= LATEST_START:
        raise ValueError(
            f"start must lie between {EARLIEST_START:%Y-%m-%d} and {LATEST_START:%Y-%m-%d} "
            "(buckets, weeks and months are counted from the Unix epoch)")
    return value


class VariantSpec(_Model):
    """One way to run the scenario: dotted overrides of the document and its expectations."""

    description: str = ""
    set: dict[str, Any] = Field(default_factory=dict)
    expectations: tuple[Expectation, ...] | None = None


class ScenarioFile(_Model):
    """A scenario file as written, variants included (the JSON Schema describes this)."""

    name: SafeName
    description: str = ""
    seed: int = 0
    duration: float = Field(gt=0, description="virtual seconds simulated")
    start: datetime = Field(
        default=datetime(2025, 3, 3, 9, 0, tzinfo=UTC), description="calendar time at t=0"
    )
    topology: TopologySpec
    traffic: TrafficSpec
    faults: tuple[FaultSpec, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    variants: dict[SafeName, VariantSpec] = Field(default_factory=dict)

    _start = field_validator("start")(start_in_range)


class Scenario(_Model):
    """One runnable variant: the file with its variant's overrides applied."""

    name: SafeName
    variant: SafeName = "default"
    description: str = ""
    seed: int = 0
    duration: float = Field(gt=0)
    start: datetime = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    topology: TopologySpec
    traffic: TrafficSpec
    faults: tuple[FaultSpec, ...] = ()
    expectations: tuple[Expectation, ...] = ()

    _start = field_validator("start")(start_in_range)

    def events(self) -> dict[str, tuple[float, float]]:
        """Named faults and spikes as ``name -> (start, end)`` (end capped at the duration)."""
        found: dict[str, tuple[float, float]] = {}
        for index, fault in enumerate(self.faults):
            found[fault.name or f"fault{index}"] = (fault.at, min(fault.end, self.duration))
        for app_id, app in self.traffic.applications.items():
            for index, spike in enumerate(app.spikes):
                name = spike.name or f"{app_id}.spike{index}"
                found[name] = (spike.at, min(spike.at + spike.duration, self.duration))
        return found

    def events_after_the_end(self) -> list[str]:
        """Named faults and spikes that start at or after the run's end (a ``--duration``
        shorter than the story): they never happen, and whatever is judged about them
        cannot be."""
        return [
            f"{name} at {start:g} s" for name, (start, _) in self.events().items()
            if start >= self.duration
        ]


# -- loading -------------------------------------------------------------------------------


def _cross_check(
    path: Path,
    node: yaml.Node | None,
    scenario: Scenario,
    expectations_at: tuple[str, ...] = ("expectations",),
) -> list[str]:
    """References between sections that pydantic cannot see: events, operators, plans;
    expectation labels given twice (``expectations_at``: where the expectations were written,
    the document's or a variant's own)."""
    problems: list[str] = []
    events = scenario.events()
    operators = scenario.topology.operators
    parties = set(operators) | set(scenario.traffic.applications) | {"aggregator"}

    def report(loc: tuple[Any, ...], message: str) -> None:
        line = line_of(node, loc)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {'.'.join(str(p) for p in loc)}: {message}")

    labels: dict[str, int] = {}
    for index, expectation in enumerate(scenario.expectations):
        first = labels.setdefault(expectation.label, index)
        if first != index:
            report(
                (*expectations_at, index, "name"),
                f"expectation {expectation.label!r} is already {'.'.join(expectations_at)}."
                f"{first}: give each expectation its own name (one expectation can hold both"
                " min and max)",
            )
        for key in ("event", "relative_to"):
            name = getattr(expectation, key)
            if name is not None and name not in events:
                known = ", ".join(sorted(events)) or "none"
                report((*expectations_at, index, key), f"unknown event {name!r} (known: {known})")
        if expectation.operator is not None and expectation.operator not in operators:
            report(
                (*expectations_at, index, "operator"), f"unknown operator {expectation.operator!r}"
            )
        if expectation.metric in CONSENT_METRICS and not any(
            isinstance(fault, ConsentRevocation) for fault in scenario.faults
        ):
            report((*expectations_at, index, "metric"), "needs a consent_revocation fault")
        app_name = expectation.application
        if app_name is not None and app_name not in scenario.traffic.applications:
            report((*expectations_at, index, "application"), f"unknown application {app_name!r}")
    for index, fault in enumerate(scenario.faults):
        operator = getattr(fault, "operator", None)
        if operator is not None and operator not in operators:
            report(("faults", index, "operator"), f"unknown operator {operator!r}")
        elif (
            isinstance(fault, DataCentreDown | ReplicaFailure)
            and fault.data_centre not in operators[fault.operator].data_centres
        ):
            report(("faults", index, "data_centre"), f"unknown data centre {fault.data_centre!r}")
        elif isinstance(fault, ConsentRevocation) and fault.data_centre is not None:
            targets = [fault.operator] if fault.operator else list(operators)
            lacking = [op for op in targets if fault.data_centre not in operators[op].data_centres]
            if lacking:
                report(
                    ("faults", index, "data_centre"),
                    f"unknown data centre {fault.data_centre!r} (of {', '.join(lacking)})",
                )
        if isinstance(fault, Partition):
            for side, party in enumerate(fault.between):
                if party not in parties:
                    report(("faults", index, "between", side), f"unknown party {party!r}")
    for index, fault in enumerate(scenario.faults):
        if isinstance(fault, TrustRevocation) and fault.operator in operators:
            if fault.issuer != "aggregator" and fault.issuer not in operators:
                report(("faults", index, "issuer"), f"unknown issuer {fault.issuer!r}")
            elif fault.issuer == fault.operator:
                report(("faults", index, "issuer"), "an operator cannot revoke itself")
    problems.extend(_check_numbering(path, node, scenario))
    for op_id, op in operators.items():
        # the operator config built from these (sim.tiers.operator) refuses them: say so here,
        # naming the field, rather than as a traceback when the world is built
        at = ("topology", "operators", op_id, "policies", "throttling", "plans")
        seen: dict[str, int] = {}
        for position, plan in enumerate(op.policies.throttling.plans):
            if seen.setdefault(plan.name, position) != position:
                report(
                    (*at, position, "name"),
                    f"plan {plan.name!r} is already plans.{seen[plan.name]}",
                )
        currencies = sorted({plan.currency for plan in op.policies.throttling.plans})
        if len(currencies) > 1:
            report(at, f"every plan is priced in one currency; found {', '.join(currencies)}")
    for app_id, app in scenario.traffic.applications.items():
        for operator in app.operators or {}:
            if operator not in operators:
                report(
                    ("traffic", "applications", app_id, "operators", operator),
                    f"unknown operator {operator!r}",
                )
        for op_id, op in operators.items():
            plans = {plan.name for plan in op.policies.throttling.plans}
            if op.policies.throttling.enabled and app.plan not in plans:
                report(
                    ("traffic", "applications", app_id, "plan"),
                    f"operator {op_id!r} has no plan {app.plan!r} "
                    f"(has: {', '.join(sorted(plans))})",
                )
    return problems


KNOWN_CALLING_CODES = {
    "AT": "+43", "BE": "+32", "BR": "+55", "CH": "+41", "DE": "+49", "DK": "+45",
    "ES": "+34", "FI": "+358", "FR": "+33", "GB": "+44", "GR": "+30", "IE": "+353",
    "IT": "+39", "MX": "+52", "NL": "+31", "NO": "+47", "PL": "+48", "PT": "+351",
    "SE": "+46", "US": "+1",
}  # fmt: skip
"""ITU calling codes known without a ``topology.countries`` entry."""


def _check_numbering(path: Path, node: yaml.Node | None, scenario: Scenario) -> list[str]:
    """Ports and, where the aggregator's Telco Finder is used, each country's numbering."""
    problems: list[str] = []
    topology = scenario.topology
    operators = topology.operators

    def report(loc: tuple[Any, ...], message: str) -> None:
        line = line_of(node, loc)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {'.'.join(str(p) for p in loc)}: {message}")

    for index, port in enumerate(topology.ports):
        ends = []
        for key in ("donor", "recipient"):
            name = getattr(port, key)
            if name not in operators:
                report(("topology", "ports", index, key), f"unknown operator {name!r}")
            else:
                ends.append(operators[name])
        if len(ends) < 2:
            continue
        donor, recipient = ends
        if port.donor == port.recipient:
            report(("topology", "ports", index, "recipient"), "a number cannot port to its donor")
        elif donor.country != recipient.country:
            report(
                ("topology", "ports", index, "recipient"),
                f"numbers port within a country ({donor.country} to {recipient.country})",
            )
        elif not (country := topology.countries.get(donor.country)) or not country.portability:
            report(
                ("topology", "ports", index),
                f"{donor.country} has no portability (set topology.countries."
                f"{donor.country}.portability: true)",
            )
    federated = bool(topology.ports) or any(
        app.via_aggregator for app in scenario.traffic.applications.values()
    )
    if not federated:
        return problems
    owners: list[tuple[str, str, int]] = []
    for op_id, op in operators.items():
        for position, prefix in enumerate(op.number_ranges):
            clash = next(
                (
                    (other, theirs)
                    for theirs, other, _ in owners
                    if other != op_id and (prefix.startswith(theirs) or theirs.startswith(prefix))
                ),
                None,
            )
            if clash is not None:
                report(
                    ("topology", "operators", op_id, "number_ranges", position),
                    f"{prefix} overlaps {clash[1]} of {clash[0]}: the aggregator's Telco Finder"
                    " needs each number to belong to one operator",
                )
            owners.append((prefix, op_id, position))
    networks: dict[tuple[str, str], str] = {}
    for op_id, op in operators.items():
        spec = topology.countries.get(op.country)
        code = spec.calling_code if spec else KNOWN_CALLING_CODES.get(op.country)
        if code is None:
            report(
                ("topology", "operators", op_id, "country"),
                f"no calling code known for {op.country} (add topology.countries.{op.country})",
            )
            continue
        for position, prefix in enumerate(op.number_ranges):
            if not prefix.startswith(code):
                report(
                    ("topology", "operators", op_id, "number_ranges", position),
                    f"{prefix} is not a {op.country} number ({code})",
                )
        network = (op.country, op.mcc + op.mnc)
        if network in networks:
            report(
                ("topology", "operators", op_id, "mnc"),
                f"{op_id} and {networks[network]} share the network {op.mcc}-{op.mnc}",
            )
        networks[network] = op_id
    return problems


def read_document(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[Path, yaml.Node | None, dict[str, Any]]:
    """The YAML mapping at ``path`` (with its node, for line numbers) and dotted ``overrides``
    applied; a ``--set`` that cannot apply is a :class:`ConfigFileError` naming it. Every
    scenario loader (capacity and business) starts here."""
    source = Path(path)
    node, data = read_yaml_mapping(source)
    for key, value in (overrides or {}).items():
        try:
            set_dotted(data, key, value, named=NAMED_ENTRIES)
        except (IndexError, ValueError, TypeError, AttributeError) as error:
            raise ConfigFileError(
                str(source), [f"{source}: --set {key}: cannot apply ({error})"]
            ) from error
    return source, node, data


def load_scenario(
    path: str | Path,
    *,
    duration: float | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[Scenario]:
    """Every variant of the scenario at ``path`` (one when it has none), validated.

    ``overrides`` are dotted keys (``traffic.applications.bank.client.timeout``) applied to
    the document before the variants' own overrides; ``duration`` and ``seed`` win over all.
    Raises :class:`ConfigFileError` listing ``file:line: field: message`` for each problem.
    """
    source, node, data = read_document(path, overrides)
    if duration is not None:
        data["duration"] = duration
    if seed is not None:
        data["seed"] = seed
    try:
        document = ScenarioFile.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError(str(source), field_problems(source, node, error)) from error
    variants = document.variants or {"default": VariantSpec()}
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for name, variant in variants.items():
        variant_data = copy.deepcopy(data)
        variant_data.pop("variants", None)
        for key, value in variant.set.items():
            try:
                set_dotted(variant_data, key, value, named=NAMED_ENTRIES)
            except (IndexError, ValueError, TypeError, AttributeError) as error:
                problems.append(f"{source}: variants.{name}.set.{key}: cannot apply ({error})")
                continue
        if duration is not None:
            variant_data["duration"] = duration
        if seed is not None:
            variant_data["seed"] = seed
        variant_data["variant"] = name
        if variant.description:
            variant_data["description"] = variant.description
        if variant.expectations is not None:
            variant_data["expectations"] = [
                e.model_dump(exclude_defaults=True) for e in variant.expectations
            ]
        try:
            scenario = Scenario.model_validate(variant_data)
        except ValidationError as error:
            overridden = _override_lines(node, name, variant.set)
            problems.extend(
                f"{line} (variant {name})"
                for line in field_problems(source, node, error, line_for=overridden)
            )
            continue
        at = ("expectations",) if variant.expectations is None else (
            "variants", name, "expectations"
        )
        problems.extend(_cross_check(source, node, scenario, at))
        scenarios.append(scenario)
    if problems:
        raise ConfigFileError(str(source), list(dict.fromkeys(problems)))
    return scenarios


def _override_lines(
    node: yaml.Node | None, variant: str, overrides: dict[str, Any]
) -> Callable[[tuple[Any, ...]], int | None]:
    """The line of the variant's ``set`` entry a field's value came from, if any: a bad value
    a variant set is its own line's fault, not the base document's."""

    def line_for(loc: tuple[Any, ...]) -> int | None:
        dotted = ".".join(str(part) for part in loc)
        for key in overrides:
            if dotted == key or dotted.startswith(key + "."):
                return line_of(node, ("variants", variant, "set", key))
        return None

    return line_for


def scenario_json_schema() -> str:
    """The JSON Schema of scenario files, for editors (``ogsim schema > scenario.json``)."""
    schema = ScenarioFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ogsim scenario"
    return json.dumps(schema, indent=2, sort_keys=True)
