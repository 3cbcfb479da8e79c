"""Consent receipts: each grant and each withdrawal as a record the subscriber can keep.

The fields follow the Kantara Consent Receipt Specification v1.1 and ISO/IEC TS 27560:2023
(its successor): receipt id, version, timestamp, controller, principal, purposes with their
DPV terms, data categories, collection method, policy URL and the consent's state. The
operator signs the receipt as a compact JWS with its own signing key, so anyone holding the
operator's published JWKS can check that the operator issued it and nobody changed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..identity import AuditEntry, Consent, IdentityServer
from ..types import Clock
from .sessions import PortalSecret
from .vocabulary import collection_method, data_categories, purpose_words

TYP = "consent-receipt+jwt"
VERSION = "KI-CR-v1.1.0"
SCHEMA = "ISO/IEC TS 27560:2023"
RECEIPT_EVENTS = {"granted": "active", "revoked": "withdrawn"}
"""Audit actions that get a receipt, with the state the consent entered."""


@dataclass(frozen=True)
class ReceiptIssuer:
    """Builds and signs receipts for one operator."""

    identity: IdentityServer
    secret: PortalSecret
    controller_name: str
    policy_url: str
    clock: Clock

    def principal_id(self, msisdn: str) -> str:
        """A pseudonym of the subscriber, stable per operator, that reveals no number."""
        return "pp-" + self.secret.mac("principal", msisdn)[:22]

    def receipt_id(self, entry: AuditEntry) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.identity.issuer}/receipts/{entry.id}"))

    def claims(self, consent: Consent, entry: AuditEntry) -> dict[str, Any]:
        """The receipt of one grant or withdrawal (``entry``) of ``consent``."""
        client = self.identity.clients.get(consent.client_id)
        categories = data_categories(consent.scopes)
        receipt_id = self.receipt_id(entry)
        return {
            "iss": self.identity.issuer,
            "iat": int(self.clock()),
            "jti": receipt_id,
            "version": VERSION,
            "schema": SCHEMA,
            "receiptId": receipt_id,
            "receiptTimestamp": int(entry.at),
            "language": "en",
            "controller": {
                "name": self.controller_name,
                "url": self.identity.issuer,
                "jwks_uri": self.identity.url("/jwks"),
            },
            "principal": {"id": self.principal_id(consent.msisdn), "idType": "pseudonym"},
            "policyUrl": self.policy_url,
            "recipient": {
                "clientId": consent.client_id,
                "name": client.name if client is not None else consent.client_id,
            },
            "purposes": [{
                "purpose": consent.purpose,
                "purposeWords": purpose_words(consent.purpose),
                "legalBasis": "dpv:Consent",
                "consentType": "EXPRESSED",
                "primaryPurpose": True,
                "termination": (
                    "expires at " + str(int(consent.expires_at))
                    if consent.expires_at is not None else "until withdrawn"
                ),
            }],
            "dataCategories": [{"category": c.dpv, "words": c.words} for c in categories],
            "scopes": list(consent.scopes),
            "sensitive": False,
            "collectionMethod": collection_method(entry.actor),
            "consent": {
                "id": consent.id,
                "event": entry.action,
                "state": RECEIPT_EVENTS[entry.action],
                "at": int(entry.at),
                "grantedAt": int(consent.granted_at),
                "expiresAt": None if consent.expires_at is None else int(consent.expires_at),
            },
        }

    def sign(self, consent: Consent, entry: AuditEntry) -> str:
        """The receipt as a compact JWS by the operator's active signing key."""
        return self.identity.keys.sign(self.claims(consent, entry), typ=TYP)
