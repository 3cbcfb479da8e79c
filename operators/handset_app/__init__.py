"""The simulated handset a person can hold: CIBA prompts, one-time codes, notifications."""

from __future__ import annotations

from operators.handset_app.inbox import HandsetInbox, Message
from operators.handset_app.router import build_handset_router

__all__ = ["HandsetInbox", "Message", "build_handset_router"]
