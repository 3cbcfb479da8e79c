"""Admin API over the subscriber base: read a subscriber, apply or schedule a change."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from .admin_auth import admin_guard
from .errors import CamaraError
from .request_body import ThreatLimits, openapi_body, read_model
from .subscriber import Subscriber
from .subscriber_base import ChangeKind, SubscriberBase

PHONE_NUMBER = re.compile(r"^\+[1-9][0-9]{4,14}$")
ADMIN_LIMITS = ThreatLimits()
"""Admin JSON bodies: 16 KiB read within 10 s, 12 levels, 512 keys, strict UTF-8 JSON."""


class ChangeRequest(BaseModel):
    kind: ChangeKind
    payload: dict[str, Any] = Field(default_factory=dict)
    at: float | None = Field(
        default=None, ge=0, le=32503680000, description="epoch seconds (until 3000); absent: now"
    )


class ChangeView(BaseModel):
    phoneNumber: str  # noqa: N815 - CAMARA field style
    kind: ChangeKind
    payload: dict[str, Any]
    effectiveAt: float  # noqa: N815


class TestNumberView(BaseModel):
    phoneNumber: str  # noqa: N815
    role: str
    description: str


def build_subscriber_admin_router(base: SubscriberBase, admin_secret: str) -> APIRouter:
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(admin_secret))]
    )

    def lookup(phone_number: str) -> Subscriber:
        if not PHONE_NUMBER.match(phone_number):
            raise CamaraError(400, "INVALID_ARGUMENT", "phoneNumber must be E.164 with a leading +")
        subscriber = base.get(phone_number)
        if subscriber is None:
            raise CamaraError(
                404, "IDENTIFIER_NOT_FOUND", "This operator does not serve that number."
            )
        return subscriber

    @router.get("/test-numbers", response_model=list[TestNumberView])
    def test_numbers() -> list[TestNumberView]:
        return [
            TestNumberView(phoneNumber=n, role=t.role, description=t.description)
            for t, n in base.test_numbers()
        ]

    @router.get("/subscribers/{phone_number}", response_model=Subscriber)
    def read_subscriber(phone_number: str) -> Subscriber:
        return lookup(phone_number)

    @router.get("/subscribers/{phone_number}/changes", response_model=list[ChangeView])
    def list_changes(phone_number: str) -> list[ChangeView]:
        return [
            ChangeView(
                phoneNumber=c.msisdn, kind=c.kind, payload=c.payload, effectiveAt=c.effective_at
            )
            for c in base.changes(phone_number, include_scheduled=True)
        ]

    @router.post(
        "/subscribers/{phone_number}/changes",
        status_code=201,
        response_model=ChangeView,
        openapi_extra=openapi_body(ChangeRequest),
    )
    async def apply_change(phone_number: str, request: Request) -> ChangeView:
        change = await read_model(request, ChangeRequest, ADMIN_LIMITS)
        if change.kind is not ChangeKind.PORT_IN:
            lookup(phone_number)
        elif not PHONE_NUMBER.match(phone_number):
            raise CamaraError(400, "INVALID_ARGUMENT", "phoneNumber must be E.164 with a leading +")
        try:
            recorded = base.record_change(phone_number, change.kind, change.payload, change.at)
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
            raise CamaraError(
                400, "INVALID_ARGUMENT", f"payload for {change.kind.value}: {error}"
            ) from error
        return ChangeView(
            phoneNumber=recorded.msisdn,
            kind=recorded.kind,
            payload=recorded.payload,
            effectiveAt=recorded.effective_at,
        )

    return router
