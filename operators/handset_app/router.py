"""Routes of the handset page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from operators.operator import Operator


def build_handset_router(operator: Operator) -> APIRouter:
    """The handset's pages under ``/handset``."""
    return APIRouter(prefix="/handset", include_in_schema=False)
