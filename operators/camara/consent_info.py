# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Consent Info 0.2.0 (``/consent-info/v0.2``): wire models of ``consent-info.yaml``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from operators.identity.consent_info import ConsentInfoAnswer
from operators.identity.consent_status import ProcessingStatus

from .common import CamaraModel, PhoneNumber

__all__ = [
    "RetrieveStatusRequestBody",
    "RetrieveStatusResponseBody",
    "StatusInfo",
    "retrieve_status_answer",
    "status_info",
]

Purpose = Annotated[str, StringConstraints(pattern=r"^dpv:[a-zA-Z0-9]+$")]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
                                       max_length=2048)]


class RetrieveStatusRequestBody(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    scopes: list[Scope] = Field(min_length=1, max_length=64)
    purpose: Purpose
    requestCaptureUrl: bool
    callbackUrl: Url | None = None


class StatusInfo(CamaraModel):
    scopes: list[str]
    purpose: str
    statusValidForProcessing: bool
    statusReason: Literal["PENDING", "REQUESTED", "DENIED", "EXPIRED", "OBJECTED"] | None = None
    expirationDate: datetime | None = None


class RetrieveStatusResponseBody(CamaraModel):
    statusInfo: list[StatusInfo]
    captureUrl: str | None = None


def status_info(status: ProcessingStatus) -> StatusInfo:
    """One ``statusInfo`` item: the expiry only where the definition allows it (a valid
    status that will expire, or an ``EXPIRED`` one)."""
    expires = status.expires_at
    show_expiry = expires is not None and (status.valid or status.reason == "EXPIRED")
    return StatusInfo(
        scopes=list(status.scopes),
        purpose=status.purpose,
        statusValidForProcessing=status.valid,
        statusReason=None if status.valid or status.reason is None else status.reason.value,
        expirationDate=_date(expires) if show_expiry and expires else None,
    )


def _date(timestamp: float) -> datetime | None:
    """The expiry as a date; None for one no date can hold (a consent stored with a lifetime
    of centuries, before grants were capped at ten years), rather than a 500."""
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def retrieve_status_answer(answer: ConsentInfoAnswer, capture_url: str | None
                           ) -> RetrieveStatusResponseBody:
    return RetrieveStatusResponseBody(
        statusInfo=[status_info(s) for s in answer.statuses], captureUrl=capture_url
    )
