"""Whether an application may process a subscriber's data now, and if not, why.

CAMARA Consent Info asks this per API before the application calls it. The answer follows
from the same facts the grant rule reads (:mod:`operators.identity.grant_standing`): the legal
basis of the purpose, the subscriber's objection, the consent records. What only this question
needs on top is *why not*: consent never asked (``PENDING``), asked and not answered yet
(``REQUESTED``), refused or withdrawn (``DENIED``), run out (``EXPIRED``), objected to
(``OBJECTED``); the latest thing that happened decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..config import LegalBasis, PurposePolicy
from ..subscriber import Subscriber
from .consent import Consent
from .purposes import objects_to

__all__ = ["Capture", "ProcessingStatus", "StatusReason", "group_by_api", "processing_status"]


class StatusReason(StrEnum):
    PENDING = "PENDING"
    REQUESTED = "REQUESTED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    OBJECTED = "OBJECTED"


CAPTURABLE = frozenset({StatusReason.PENDING, StatusReason.REQUESTED, StatusReason.EXPIRED})
"""Reasons a consent capture page can change (the others are the subscriber's own choice)."""


@dataclass(frozen=True, slots=True)
class Capture:
    """A consent capture the operator offered the subscriber, as far as the status needs it."""

    scopes: tuple[str, ...]
    created_at: float
    expires_at: float
    decided_at: float | None
    granted: bool | None
    """True approved, False refused, None not decided."""


@dataclass(frozen=True, slots=True)
class ProcessingStatus:
    scopes: tuple[str, ...]
    purpose: str
    valid: bool
    reason: StatusReason | None = None
    expires_at: float | None = None
    """When a valid consent runs out, or when an expired one ran out."""


def group_by_api(scopes: Iterable[str]) -> list[tuple[str, ...]]:
    """The requested scopes, one group per API (``sim-swap:check`` belongs to ``sim-swap``),
    in the order first asked: Consent Info answers one status per group."""
    groups: dict[str, list[str]] = {}
    for scope in scopes:
        groups.setdefault(scope.split(":", 1)[0], []).append(scope)
    return [tuple(dict.fromkeys(group)) for group in groups.values()]


def processing_status(
    policy: PurposePolicy,
    subscriber: Subscriber,
    scopes: tuple[str, ...],
    consents: Sequence[Consent],
    captures: Sequence[Capture],
    now: float,
) -> ProcessingStatus:
    """The status of processing for ``scopes`` under ``policy``; ``consents`` and ``captures``
    are this subscriber's for the asking client and this purpose, in any order."""
    purpose = policy.purpose
    if policy.legal_basis is LegalBasis.CONTRACT:
        return ProcessingStatus(scopes, purpose, True)
    if policy.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        if objects_to(policy, subscriber):
            return ProcessingStatus(scopes, purpose, False, StatusReason.OBJECTED)
        return ProcessingStatus(scopes, purpose, True)
    wanted = set(scopes)
    covering = [c for c in consents if wanted <= set(c.scopes)]
    active = [c for c in covering if c.active(now)]
    if active:
        newest = max(active, key=lambda c: c.granted_at)
        return ProcessingStatus(scopes, purpose, True, expires_at=newest.expires_at)
    events: list[tuple[float, StatusReason, float | None]] = []
    for consent in covering:
        if consent.revoked_at is not None:
            events.append((consent.revoked_at, StatusReason.DENIED, None))
        elif consent.expires_at is not None:
            events.append((consent.expires_at, StatusReason.EXPIRED, consent.expires_at))
    for capture in captures:
        if not wanted <= set(capture.scopes):
            continue
        if capture.granted is False and capture.decided_at is not None:
            events.append((capture.decided_at, StatusReason.DENIED, None))
        elif capture.granted is None and now < capture.expires_at:
            events.append((capture.created_at, StatusReason.REQUESTED, None))
    if not events:
        return ProcessingStatus(scopes, purpose, False, StatusReason.PENDING)
    _, reason, expired_at = max(events, key=lambda event: event[0])
    return ProcessingStatus(scopes, purpose, False, reason, expired_at)
