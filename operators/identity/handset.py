"""The simulated handset: when and how a subscriber answers a consent prompt."""

from __future__ import annotations

from enum import StrEnum

from ..subscriber import HandsetAnswer, HandsetBehaviour


class Verdict(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


def verdict(behaviour: HandsetBehaviour, asked_at: float, now: float) -> Verdict:
    """The handset's answer at ``now`` to a prompt shown at ``asked_at`` (both on one clock)."""
    if behaviour.answer is HandsetAnswer.NEVER or now < asked_at + behaviour.delay:
        return Verdict.PENDING
    return Verdict.APPROVED if behaviour.answer is HandsetAnswer.APPROVE else Verdict.DENIED
