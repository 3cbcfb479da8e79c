# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Device Reachability Status 1.0.0 and Device Roaming Status 1.0.0: wire models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from .common import CamaraModel, Device

__all__ = [
    "ConnectivityType",
    "ReachabilityStatusResponse",
    "RequestReachabilityStatus",
    "RoamingStatusRequest",
    "RoamingStatusResponse",
]


class ConnectivityType(StrEnum):
    DATA = "DATA"
    SMS = "SMS"


class RequestReachabilityStatus(CamaraModel):
    device: Device | None = None


class ReachabilityStatusResponse(CamaraModel):
    lastStatusTime: datetime | None = None
    reachable: bool
    connectivity: list[ConnectivityType] | None = None


class RoamingStatusRequest(CamaraModel):
    device: Device | None = None


class RoamingStatusResponse(CamaraModel):
    lastStatusTime: datetime | None = None
    roaming: bool
    countryCode: int | None = None
    countryName: list[str] | None = None
