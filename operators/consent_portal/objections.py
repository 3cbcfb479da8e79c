"""The subscriber's objections to processing under legitimate interest (GDPR art. 21).

Consent is given and withdrawn per application (a consent record); legitimate interest is
the operator's own basis, so the subscriber's say is an objection per purpose. The objection
lives where the gateway reads it, the subscriber base's change log (``ChangeKind.OPT_OUT`` with
the purpose), so the next two-legged call for that purpose is refused. A subscriber who objected
to all of them at once (the change without a purpose) and now allows one keeps objecting to the
others, one by one.
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
        subscriber = self.subscribers.get(msisdn)
        with self.subscribers.db.transaction():
            if subscriber is not None and subscriber.legitimate_interest_opt_out and not objected:
                # The objection to everything becomes one per purpose, less this one.
                for other in self.purposes():
                    if other.purpose != policy.purpose:
                        self.record(msisdn, other.purpose, True)
                self.subscribers.record_change(msisdn, ChangeKind.OPT_OUT, {"opt_out": False})
            self.record(msisdn, policy.purpose, objected)

    def record(self, msisdn: str, purpose: str, objected: bool) -> None:
        self.subscribers.record_change(
            msisdn, ChangeKind.OPT_OUT, {"opt_out": objected, "purpose": purpose}
        )
