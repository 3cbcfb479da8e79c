"""The subscriber's consent portal (``/my``): sign-in, consents, access log, receipts, opt-outs."""

from __future__ import annotations

from operators.consent_portal.router import build_consent_portal_router

__all__ = ["build_consent_portal_router"]
