# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""QoS Profiles 1.1.0 (``/qos-profiles/v1``): wire models and the profiles this operator offers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import CamaraModel, Device
from .quality_on_demand import QosProfileName

__all__ = [
    "Duration",
    "QosProfile",
    "QosProfileDeviceRequest",
    "QosProfileStatus",
    "Rate",
    "TimeUnit",
]


class QosProfileStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    DEPRECATED = "DEPRECATED"


class TimeUnit(StrEnum):
    DAYS = "Days"
    HOURS = "Hours"
    MINUTES = "Minutes"
    SECONDS = "Seconds"
    MILLISECONDS = "Milliseconds"
    MICROSECONDS = "Microseconds"
    NANOSECONDS = "Nanoseconds"


class RateUnit(StrEnum):
    BPS = "bps"
    KBPS = "kbps"
    MBPS = "Mbps"
    GBPS = "Gbps"
    TBPS = "Tbps"


class Duration(CamaraModel):
    value: int = Field(ge=1)
    unit: TimeUnit

    def seconds(self) -> float:
        scale = {
            TimeUnit.DAYS: 86400.0,
            TimeUnit.HOURS: 3600.0,
            TimeUnit.MINUTES: 60.0,
            TimeUnit.SECONDS: 1.0,
            TimeUnit.MILLISECONDS: 1e-3,
            TimeUnit.MICROSECONDS: 1e-6,
            TimeUnit.NANOSECONDS: 1e-9,
        }
        return self.value * scale[self.unit]


class Rate(CamaraModel):
    value: int = Field(ge=0, le=1024)
    unit: RateUnit


class CountryAvailability(CamaraModel):
    countryName: str = Field(pattern=r"^[A-Z]{2}$")
    networks: list[str] | None = None


class QosProfile(CamaraModel):
    name: QosProfileName
    description: str | None = None
    status: QosProfileStatus
    targetMinUpstreamRate: Rate | None = None
    maxUpstreamRate: Rate | None = None
    maxUpstreamBurstRate: Rate | None = None
    targetMinDownstreamRate: Rate | None = None
    maxDownstreamRate: Rate | None = None
    maxDownstreamBurstRate: Rate | None = None
    minDuration: Duration | None = None
    maxDuration: Duration | None = None
    priority: int | None = Field(default=None, ge=1, le=100)
    packetDelayBudget: Duration | None = None
    jitter: Duration | None = None
    packetErrorLossRate: int | None = Field(default=None, ge=1, le=10)
    l4sQueueType: str | None = None
    serviceClass: str | None = None
    countryAvailability: list[CountryAvailability] | None = None


class QosProfileDeviceRequest(CamaraModel):
    device: Device | None = None
    name: QosProfileName | None = None
    status: QosProfileStatus | None = None
