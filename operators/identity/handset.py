"""The simulated handset: when and how a subscriber answers a consent prompt.

One function decides for both kinds of handset, so the live CIBA poll and anything else that
asks (the simulation, a test) get the same answer: a scripted handset answers by its behaviour
after its delay; an interactive one answers only with the button a person pressed.
"""

from __future__ import annotations

from enum import StrEnum

from ..subscriber import HandsetAnswer, HandsetBehaviour, HandsetMode


class Verdict(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


def verdict(
    behaviour: HandsetBehaviour, asked_at: float, now: float, pressed: Verdict | None = None
) -> Verdict:
    """The handset's answer at ``now`` to a prompt shown at ``asked_at`` (both on one clock).

    ``pressed`` is the button pressed on an interactive handset (None: not yet); a scripted
    handset ignores it, so a stray press never changes what the script (and the simulation
    that models it) decides.
    """
    if behaviour.mode is HandsetMode.INTERACTIVE:
        return pressed if pressed is not None else Verdict.PENDING
    if behaviour.answer is HandsetAnswer.NEVER or now < asked_at + behaviour.delay:
        return Verdict.PENDING
    return Verdict.APPROVED if behaviour.answer is HandsetAnswer.APPROVE else Verdict.DENIED
