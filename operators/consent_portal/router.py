"""Routes of the consent portal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from operators.operator import Operator


def build_consent_portal_router(operator: Operator) -> APIRouter:
    """The portal's pages under ``/my``."""
    return APIRouter(prefix="/my", include_in_schema=False)
