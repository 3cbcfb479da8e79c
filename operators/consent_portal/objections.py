"""The subscriber's objections to processing under legitimate interest (GDPR art. 21).

Consent is given and withdrawn per application (a consent record); legitimate interest is
the operator's own basis, so the subscriber's say is an objection per purpose. The objection
lives where the gateway reads it, the subscriber base's change log (``ChangeKind.OPT_OUT``),
so the next two-legged call for that purpose is refused. The subscriber base keeps one
objection covering every legitimate-interest purpose; the page says so when there are several.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LegalBasis, OperatorConfig, PurposePolicy
from ..identity import objects_to
from ..subscriber_base import ChangeKind, SubscriberBase
from .vocabulary import purpose_words


@dataclass(frozen=True)
class PurposeStanding:
    """One legitimate-interest purpose and whether the subscriber objects to it now."""

    purpose: str
    words: str
    objected: bool


class Objections:
    """Reads and records a subscriber's objections."""

    def __init__(self, config: OperatorConfig, subscribers: SubscriberBase) -> None:
        self.config = config
        self.subscribers = subscribers

    def purposes(self) -> list[PurposePolicy]:
        """The purposes a subscriber may object to: those under legitimate interest."""
        return [p for p in self.config.purposes
                if p.legal_basis is LegalBasis.LEGITIMATE_INTEREST]

    def policy(self, purpose: str) -> PurposePolicy | None:
        return next((p for p in self.purposes() if p.purpose == purpose), None)

    def standing(self, msisdn: str) -> list[PurposeStanding]:
        subscriber = self.subscribers.get(msisdn)
        return [
            PurposeStanding(p.purpose, purpose_words(p.purpose),
                            subscriber is not None and objects_to(p, subscriber))
            for p in self.purposes()
        ]

    def set(self, msisdn: str, policy: PurposePolicy, objected: bool) -> None:
        """Object to (or withdraw the objection to) ``policy``'s purpose, from now on."""
        self.subscribers.record_change(msisdn, ChangeKind.OPT_OUT, {"opt_out": objected})
