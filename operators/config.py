"""The pydantic description of one operator; every app and store is built from it."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from operators.outbound_hosts import scheme_problem

if TYPE_CHECKING:
    from operators.analytics.settings import AnalyticsSettings

E164_PREFIX = re.compile(r"^\+[1-9][0-9]{0,13}$")


class LegalBasis(StrEnum):
    """Why an operator may process personal data for a purpose (GDPR art. 6)."""

    CONSENT = "consent"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"


class QuotaPeriod(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quota(_Strict):
    """At most ``limit`` calls per ``period``; sliding windows smooth the period edge."""

    limit: int = Field(gt=0)
    period: QuotaPeriod = QuotaPeriod.DAY
    window: Literal["fixed", "sliding"] = "fixed"


PRICE_DIGITS = 14
PRICE_PLACES = 6
"""A plan's price has at most 14 digits, 6 of them after the point (under 10^8), as the rate
card's Money: finite and small enough that every invoice line is a decimal the billing can
round (an infinite or 1e27 price ended invoicing in decimal.InvalidOperation)."""
MAX_PRICE = 10 ** (PRICE_DIGITS - PRICE_PLACES)


def _price_places(value: float) -> float:
    exact = Decimal(repr(value))  # as billing reads it (operators.billing.money.decimal_of)
    if exact != exact.quantize(Decimal(1).scaleb(-PRICE_PLACES)):
        raise ValueError(f"at most {PRICE_PLACES} digits after the decimal point (not {value!r})")
    return value


Price = Annotated[
    float, Field(ge=0, lt=MAX_PRICE, allow_inf_nan=False), AfterValidator(_price_places)
]
"""A float price (``price_per_call``, ``monthly_fee``) bounded as :data:`PRICE_DIGITS` says."""

Money = Annotated[
    Decimal, Field(ge=0, max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES)
]
"""A decimal price (a tier's), bounded as :data:`PRICE_DIGITS` says."""


class PriceTier(_Strict):
    """One band of a tiered price: calls up to and including ``up_to`` (open when null).

    Money is a :class:`~decimal.Decimal` (a YAML number or a string such as ``"0.0006"``), so
    no binary fraction creeps into an invoice.
    """

    up_to: int | None = Field(
        default=None, gt=0, description="last call of the band (counted from the first of the"
        " month or plan period); null for the open last band"
    )
    unit_price: Money = Field(default=Decimal(0), description="price of each call")
    flat_fee: Money = Field(default=Decimal(0), description="owed once for the band")


class TierMode(StrEnum):
    """How tiers price calls, as Stripe and Lago define it.

    ``graduated``: each call at the unit price of the band it falls in, plus the flat fee of
    every band reached. ``volume``: every call at the unit price of the band the total lands
    in, plus that band's flat fee.
    """

    GRADUATED = "graduated"
    VOLUME = "volume"


class Plan(_Strict):
    """A subscription tier: its throttling limits and its prices.

    Prices apply per API subscription (one application holding the plan for one API): a
    ``monthly_fee`` prorated to the second for the time held, and either ``price_per_call``
    or ``tiers`` (in ``tier_mode``) for the calls; :mod:`operators.billing` rates them.
    """

    name: str
    rate_per_second: float = Field(gt=0, description="sustained token-bucket rate")
    burst: int = Field(gt=0, description="token-bucket capacity")
    quota: Quota | None = None
    price_per_call: Price = Field(default=0.0, description="flat price of each call")
    monthly_fee: Price = Field(default=0.0, description="per API subscription and month")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    tiers: tuple[PriceTier, ...] = Field(
        default=(), description="tiered prices per call instead of price_per_call"
    )
    tier_mode: TierMode = TierMode.GRADUATED

    @field_validator("tiers")
    @classmethod
    def _ascending_and_open(cls, value: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        if not value:
            return value
        *bounded, last = value
        for index, tier in enumerate(bounded):
            if tier.up_to is None:
                raise ValueError(
                    f"tiers[{index}].up_to is null, but only the last tier may be open"
                )
            if index and tier.up_to <= (bounded[index - 1].up_to or 0):
                raise ValueError(
                    f"tiers[{index}].up_to ({tier.up_to}) must be greater than "
                    f"tiers[{index - 1}].up_to ({bounded[index - 1].up_to})"
                )
        if last.up_to is not None:
            raise ValueError(
                f"tiers[{len(value) - 1}].up_to must be null: the last tier is open"
                f" (it has up_to {last.up_to})"
            )
        return value

    @model_validator(mode="after")
    def _one_call_price(self) -> Plan:
        if self.tiers and self.price_per_call:
            raise ValueError(
                f"plan {self.name!r}: price_per_call and tiers both price calls; keep one"
            )
        return self


class PurposePolicy(_Strict):
    """The legal basis of one DPV purpose and which grants may carry it."""

    purpose: str
    legal_basis: LegalBasis
    two_legged: bool = Field(
        default=False,
        description="whether client_credentials may be used for this purpose",
    )

    @field_validator("purpose")
    @classmethod
    def _dpv(cls, value: str) -> str:
        if not value.startswith("dpv:"):
            raise ValueError("a purpose is a scope value starting with 'dpv:'")
        return value


def default_plans() -> tuple[Plan, ...]:
    return (
        Plan(name="free", rate_per_second=2, burst=5, quota=Quota(limit=1000)),
        Plan(
            name="pay-as-you-go",
            rate_per_second=50,
            burst=100,
            quota=Quota(limit=100_000, period=QuotaPeriod.MONTH),
            price_per_call=0.01,
        ),
        Plan(
            name="enterprise",
            rate_per_second=500,
            burst=1000,
            price_per_call=0.004,
            monthly_fee=2000.0,
        ),
    )


def default_purposes() -> tuple[PurposePolicy, ...]:
    return (
        PurposePolicy(
            purpose="dpv:FraudPreventionAndDetection",
            legal_basis=LegalBasis.LEGITIMATE_INTEREST,
            two_legged=True,
        ),
        PurposePolicy(
            purpose="dpv:RequestedServiceProvision",
            legal_basis=LegalBasis.CONTRACT,
            two_legged=True,
        ),
        PurposePolicy(purpose="dpv:IdentityVerification", legal_basis=LegalBasis.CONSENT),
        PurposePolicy(purpose="dpv:ServiceProvision", legal_basis=LegalBasis.CONSENT),
        PurposePolicy(purpose="dpv:Marketing", legal_basis=LegalBasis.CONSENT),
    )


class TokenLifetimes(_Strict):
    access_token: int = Field(default=3600, gt=0)
    authorization_code: int = Field(default=60, gt=0, le=600)
    ciba_request: int = Field(default=120, gt=0)
    ciba_interval: int = Field(default=2, ge=0)
    client_assertion_max: int = Field(default=300, gt=0)
    clock_skew: int = Field(default=10, ge=0)


class ClientRateLimit(_Strict):
    """A per-client token bucket at an identity endpoint: ``burst`` at once, then ``rate``/s."""

    rate_per_second: float = Field(default=500.0, gt=0)
    burst: int = Field(default=1000, gt=0)


class DetectorConfig(_Strict):
    """The anomaly detectors' settings (``operators.analytics.settings.DetectorSettings``)."""

    season_buckets: int | None = Field(
        default=168, gt=0, description="buckets in a season (168: hour of week with hourly"
        " buckets); null: the baseline is the last recent_buckets buckets"
    )
    recent_buckets: int = Field(default=24, gt=0, description="non-seasonal baseline window")
    min_history: int = Field(default=24, ge=1, description="buckets of history before a key"
                             " is scored")
    threshold: float = Field(default=5.0, gt=0, description="robust score that raises an alert")
    record_floor: float = Field(default=2.0, ge=0, description="scores kept for sweeps")
    enumeration_min_subscribers: int = Field(
        default=50, ge=1, description="distinct subscribers in a bucket below which"
        " enumeration is never flagged"
    )
    min_calls: int = Field(default=20, ge=1, description="calls in a bucket below which volume"
                           " and error spikes are never flagged")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="per alert kind, a threshold of its own instead of"
        " threshold (quota_farming's scores are not on the spikes' scale)"
    )
    alert_cooldown_buckets: int = Field(
        default=6, ge=0, description="one alert per application, API and kind within this"
        " many buckets"
    )
    alert_cooldown_days: int = Field(
        default=7, ge=0, description="one quota-farming alert per developer and API within"
        " this many days"
    )

    def replayed_buckets(self, history_buckets: int | None = None) -> int:
        """The buckets a monitor replays at start: ``history_buckets``, else enough for these
        detectors (a season's baselines, the recent window, the minimum history)."""
        return history_buckets or replayed_buckets(
            self.season_buckets, self.recent_buckets, self.min_history
        )


_DAY = 86_400.0
SEASONS_REPLAYED = 4
"""Seasons of buckets a monitor replays at start when no ``history_buckets`` is configured."""


def replayed_buckets(season_buckets: int | None, recent_buckets: int, min_history: int) -> int:
    """The buckets the detectors need at start: :data:`SEASONS_REPLAYED` seasons, the recent
    window, the minimum history, whichever is longest."""
    return max(min_history, recent_buckets, (season_buckets or 0) * SEASONS_REPLAYED, 1)


class AnalyticsConfig(_Strict):
    """Live product analytics: usage buckets, the monitor that scores them, its alerts."""

    enabled: bool = Field(default=True, description="run the anomaly monitor in the operator")
    bucket_seconds: float = Field(
        default=3600.0, gt=0, le=7 * 86_400, description="length of a usage bucket (the"
        " detectors' season is counted in buckets)"
    )
    flush_seconds: float = Field(
        default=2.0, gt=0, description="how often usage buckets and activities are written"
    )
    grace_seconds: float = Field(
        default=5.0, ge=0, description="wait after a bucket ends before scoring it, so every"
        " replica's part of it is written"
    )
    history_buckets: int | None = Field(
        default=None, gt=0, description="buckets replayed at start; null: enough for the"
        " detectors (a season, or the recent window, and the minimum history)"
    )
    webhook_url: str | None = Field(
        default=None, description="alerts are POSTed here with a signed body; null: none sent"
    )
    webhook_secret: str | None = Field(
        default=None, min_length=16, description="HMAC key signing the webhook's bodies"
    )
    subscriber_key: str | None = Field(
        default=None, min_length=16, description="HMAC key the usage buckets hash subscribers'"
        " numbers with (the same in every replica); null: one drawn and kept in the"
        " operator's database, so a copy of the file carries it"
    )
    retention_days: float = Field(
        default=98.0, gt=0, description="usage buckets and alerts older than this are purged"
        " (the admin pages replay 13 weeks; the default keeps a week more)"
    )
    detectors: DetectorConfig = Field(default_factory=DetectorConfig)

    def settings(self) -> AnalyticsSettings:
        """The engine's settings this section describes (a ValueError when it refuses them)."""
        from operators.analytics.settings import AnalyticsSettings, DetectorSettings

        own = {"alert_cooldown_buckets", "alert_cooldown_days"}
        return AnalyticsSettings(
            detectors=DetectorSettings(
                bucket_seconds=self.bucket_seconds, **self.detectors.model_dump(exclude=own)
            ),
            alert_cooldown_buckets=self.detectors.alert_cooldown_buckets,
            alert_cooldown_days=self.detectors.alert_cooldown_days,
        )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"webhook_url {value!r} is not an http(s) URL")
        if value is not None and not urlsplit(value).netloc:
            raise ValueError(f"webhook_url {value!r} names no host")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnalyticsConfig:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret: required when webhook_url is set (bodies are"
                             " signed)")
        if self.grace_seconds >= self.bucket_seconds:
            raise ValueError(f"grace_seconds ({self.grace_seconds}) must be shorter than"
                             f" bucket_seconds ({self.bucket_seconds})")
        if self.flush_seconds > self.grace_seconds and self.enabled:
            raise ValueError(f"flush_seconds ({self.flush_seconds}) must not exceed"
                             f" grace_seconds ({self.grace_seconds}): a bucket is scored"
                             " once its last part is written")
        replayed = self.detectors.replayed_buckets(self.history_buckets) * self.bucket_seconds
        if self.retention_days * _DAY < replayed + self.bucket_seconds + self.grace_seconds:
            raise _refused_at(("retention_days",), self.retention_days, (
                f"must cover the {replayed / _DAY:g} days the monitor replays at start (and a"
                " bucket more): an alert purged sooner would be raised again"))
        return self

    @model_validator(mode="after")
    def _engine_accepts(self) -> AnalyticsConfig:
        try:
            self.settings()
        except ValueError as error:
            raise _refused_at_its_field(self, str(error)) from None
        return self


def _refused_at_its_field(config: AnalyticsConfig, message: str) -> ValidationError:
    """The engine's complaint about ``config`` as a validation error at the field it names
    (the first one the section gives, else the first named), so a file shows its line."""
    kind = re.search(r"\bthresholds\.(\w+)", message)
    if kind is not None:
        loc: tuple[str, ...] = ("detectors", "thresholds", kind.group(1))
        value: object = config.detectors.thresholds.get(kind.group(1))
    else:
        given: list[tuple[str, ...]] = [
            ("detectors", n) for n in sorted(config.detectors.model_fields_set)
        ]
        given += [(n,) for n in sorted(config.model_fields_set) if n != "detectors"]
        every: list[tuple[str, ...]] = [("detectors", n) for n in DetectorConfig.model_fields]
        every += [(n,) for n in AnalyticsConfig.model_fields if n != "detectors"]
        loc = _first_named(given, message) or _first_named(every, message) or ("detectors",)
        value = config
        for part in loc:
            value = getattr(value, part)
    return _refused_at(loc, value, message)


def _refused_at(loc: tuple[str, ...], value: object, message: str) -> ValidationError:
    """A validation error of the analytics section at ``loc`` (a file names its line)."""
    error = PydanticCustomError("value_error", "{reason}", {"reason": message})
    return ValidationError.from_exception_data(
        "AnalyticsConfig", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def _first_named(locs: list[tuple[str, ...]], message: str) -> tuple[str, ...] | None:
    found = [(m.start(), loc) for loc in locs if (m := re.search(rf"\b{loc[-1]}\b", message))]
    return min(found)[1] if found else None


class OperatorConfig(_Strict):
    """Everything that makes one operator distinct: identity, numbers, seed, storage, plans."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    display_name: str
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    mcc: str = Field(pattern=r"^[0-9]{3}$")
    mnc: str = Field(pattern=r"^[0-9]{2,3}$")
    number_ranges: tuple[str, ...] = Field(min_length=1)
    number_digits: int = Field(default=11, ge=8, le=15, description="digits after the '+'")
    ipv4_ranges: tuple[str, ...] = ("10.0.0.0/16",)
    seed: int = 0
    subscribers: int = Field(default=200, ge=0, le=1_000_000)
    storage: str = Field(default=":memory:", description="SQLite file path or ':memory:'")
    redis_url: str | None = Field(
        default=None,
        description="Redis for the gateway's throttle counters (redis://host:port/db), shared by"
        " its replicas in several processes and kept across restarts; in memory if unset",
    )
    issuer: str | None = Field(default=None, description="issuer URL; derived from id if unset")
    admin_secret: str = Field(default="admin-secret", min_length=8)
    signing_alg: Literal["ES256", "RS256", "PS256"] = "ES256"
    plans: tuple[Plan, ...] = Field(default_factory=default_plans)
    default_plan: str = Field(
        default="pay-as-you-go", description="plan of an application not subscribed to an API"
    )
    purposes: tuple[PurposePolicy, ...] = Field(default_factory=default_purposes)
    consent_captures_per_hour: int = Field(
        default=5,
        ge=1,
        description="consent capture URLs Consent Info offers one application about one "
        "subscriber per hour (then CONSENT_INFO.CAPTURE_FREQUENCY_EXCEEDED)",
    )
    lifetimes: TokenLifetimes = Field(default_factory=TokenLifetimes)
    token_rate_limit: ClientRateLimit = Field(
        default_factory=ClientRateLimit,
        description="per authenticated client at the token endpoint (429 beyond it)",
    )
    ciba_rate_limit: ClientRateLimit = Field(
        default_factory=lambda: ClientRateLimit(rate_per_second=200.0, burst=400),
        description="per authenticated client at the backchannel authentication endpoint",
    )
    operator_token_rate_limit: ClientRateLimit = Field(
        default_factory=lambda: ClientRateLimit(rate_per_second=1.0, burst=10),
        description="per device asking for its own TS.43 operator token (the operator"
        " administrator is not limited)",
    )
    core_time_scale: float = Field(
        default=1.0, gt=0, description="live mode: wall seconds per modelled second"
    )
    housekeeping_interval: float = Field(
        default=60.0, gt=0, description="live mode: wall seconds between purges of expired rows"
    )
    analytics: AnalyticsConfig = Field(
        default_factory=AnalyticsConfig,
        description="live product analytics: usage buckets, anomaly monitor, alert webhook",
    )
    corporate_idp_hosts: tuple[str, ...] | None = Field(
        default=None,
        description="hosts (a name or address, or host:port, an IPv6 one in brackets) the"
        " operator fetches from on an organisation's word: the issuer it names on the portal's"
        " trust page and the token endpoint and keys URL its discovery document names (and"
        " where its authorization endpoint sends browsers); null"
        " allows any host but link-local, multicast, reserved, unspecified and shared (CGNAT)"
        " addresses and the clouds' metadata addresses",
    )
    interactive_handsets: tuple[str, ...] = Field(
        default=(),
        description="numbers whose handset waits for a person to press Approve or Deny on the"
        " handset page instead of answering by script (an admin change can still set it)",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        """Applications and partners fetch the keys and post credentials there: https, plain
        http only on a loopback host (:func:`~operators.outbound_hosts.scheme_problem`)."""
        refused = None if value is None else scheme_problem(value)
        if refused is not None:
            raise ValueError(f"{value}: {refused}")
        return value

    @field_validator("number_ranges")
    @classmethod
    def _e164_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not E164_PREFIX.match(prefix):
                raise ValueError(f"number range {prefix!r} is not an E.164 prefix like '+3460'")
        return value

    @model_validator(mode="after")
    def _room_for_subscribers(self) -> OperatorConfig:
        for prefix in self.number_ranges:
            if len(prefix) - 1 > self.number_digits - 4:
                raise ValueError(
                    f"number range {prefix!r} leaves fewer than 4 digits in a "
                    f"{self.number_digits}-digit number"
                )
        return self

    @field_validator("ipv4_ranges")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.IPv4Network(cidr)
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> OperatorConfig:
        names = [plan.name for plan in self.plans]
        if len(names) != len(set(names)):
            raise ValueError("plan names must be unique")
        if self.default_plan not in names:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        currencies = sorted({plan.currency for plan in self.plans})
        if len(currencies) > 1:
            raise ValueError(
                f"plans: every plan is priced in one currency (an invoice has one); found "
                f"{', '.join(currencies)}"
            )
        purposes = [p.purpose for p in self.purposes]
        if len(purposes) != len(set(purposes)):
            raise ValueError("purposes must be unique")
        return self

    @property
    def network(self) -> str:
        """MCC+MNC, the network id used by Telco Routing rules."""
        return self.mcc + self.mnc

    @property
    def issuer_url(self) -> str:
        return self.issuer or f"https://{self.id}.ogsim.test/oauth"

    def owns(self, number: str) -> bool:
        return any(number.startswith(prefix) for prefix in self.number_ranges)

    def purpose(self, purpose: str) -> PurposePolicy | None:
        return next((p for p in self.purposes if p.purpose == purpose), None)

    def plan(self, name: str) -> Plan | None:
        return next((p for p in self.plans if p.name == name), None)


def example_operator(
    operator_id: str = "telco-es", *, seed: int = 7, storage: str = ":memory:"
) -> OperatorConfig:
    """The operator that ``ogsim demo`` and the tests start when given no config file."""
    return OperatorConfig(
        id=operator_id,
        display_name="Telco España",
        country="ES",
        mcc="214",
        mnc="07",
        number_ranges=("+3460", "+3461"),
        ipv4_ranges=("10.34.0.0/16",),
        seed=seed,
        storage=storage,
    )
