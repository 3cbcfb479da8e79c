"""Placeholder while the pages are written."""

from __future__ import annotations

from fastapi import APIRouter

from .developer_portal import DeveloperPortal


def build_admin_router(portal: DeveloperPortal) -> APIRouter:
    return APIRouter(prefix="/portal", include_in_schema=False)
