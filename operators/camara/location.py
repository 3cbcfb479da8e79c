# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Location Verification 3.0.0 and Location Retrieval 0.5.0: wire models."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from .common import CamaraModel, Circle, Device, DeviceResponse

__all__ = [
    "LocationArea",
    "RetrievalLocationRequest",
    "RetrievedLocation",
    "VerificationResult",
    "VerifyCircle",
    "VerifyLocationRequest",
    "VerifyLocationResponse",
]


class VerifyCircle(Circle):
    """Location verification v3 accepts only circles (its AreaType enum is ``[CIRCLE]``)."""

    areaType: Literal["CIRCLE"] = "CIRCLE"  # type: ignore[assignment]


class VerificationResult(StrEnum):
    TRUE = "TRUE"
    FALSE = "FALSE"
    PARTIAL = "PARTIAL"


class _RequestedCircle(VerifyCircle):
    """The circle of a request: the YAML's discriminator ``areaType`` is required on the wire."""

    areaType: Literal["CIRCLE"]


class VerifyLocationRequest(CamaraModel):
    device: Device | None = None
    area: _RequestedCircle
    maxAge: int | None = Field(default=None, ge=0, description="seconds; 0 asks for a fresh fix")


class VerifyLocationResponse(CamaraModel):
    device: DeviceResponse | None = None
    lastLocationTime: datetime
    verificationResult: VerificationResult
    matchRate: int | None = Field(default=None, ge=1, le=99)


class RetrievalLocationRequest(CamaraModel):
    device: Device | None = None
    maxAge: int | None = Field(default=None, ge=0)
    maxSurface: int | None = Field(default=None, ge=1, description="square metres")


class LocationArea(Circle):
    """The retrieved area: this network answers circles (the YAML allows polygons too)."""

    areaType: Literal["CIRCLE"] = "CIRCLE"  # type: ignore[assignment]


class RetrievedLocation(CamaraModel):
    lastLocationTime: datetime
    area: LocationArea
    device: DeviceResponse | None = None
