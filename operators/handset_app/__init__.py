"""The simulated handset a person can hold: CIBA prompts, one-time codes, notifications."""

from __future__ import annotations

from pathlib import Path

from operators.handset_app.inbox import HandsetInbox, Message
from operators.handset_app.pairing import phone_link
from operators.handset_app.router import build_handset_router
from operators.web.pages import add_template_dir

add_template_dir(Path(__file__).parent / "templates")

__all__ = ["HandsetInbox", "Message", "build_handset_router", "phone_link"]
