# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""SIM Swap 2.1.0 (``/sim-swap/v2``): wire models of ``sim-swap.yaml``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .common import CamaraModel, PhoneNumber

__all__ = ["CheckSimSwapInfo", "CreateCheckSimSwap", "CreateSimSwapDate", "SimSwapInfo"]


class CreateCheckSimSwap(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    maxAge: int = Field(default=240, ge=1, le=2400, description="hours")


class CreateSimSwapDate(CamaraModel):
    phoneNumber: PhoneNumber | None = None


class SimSwapInfo(CamaraModel):
    latestSimChange: datetime | None
    monitoredPeriod: int | None = None

    def wire(self) -> dict[str, Any]:
        """``latestSimChange`` is required and nullable: it is sent even when null."""
        body = super().wire()
        body.setdefault("latestSimChange", None)
        return body


class CheckSimSwapInfo(CamaraModel):
    swapped: bool
