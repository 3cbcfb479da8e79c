"""Whether a token's grant still stands: one rule for the live gateway and the simulation.

A verified token is honoured only while what it was issued under holds: the token is one this
operator issued and has not revoked, its client is active, its purpose is still offered, the
consent behind a consent-based purpose is active, the subscriber is still here and has not
objected to a legitimate-interest purpose. The facts are plain values: live they are read from
the operator's database (:meth:`~operators.identity.tokens.AccessTokens.context`), in the
simulation built from its model; :func:`grant_refusal` decides from them alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LegalBasis, PurposePolicy
from ..subscriber import Subscriber
from .consent import Consent
from .errors import TokenContextError
from .purposes import objects_to
from .types import GrantType

__all__ = ["GrantFacts", "TokenContext", "grant_refusal"]


@dataclass(frozen=True, slots=True)
class TokenContext:
    """What a verified, still-honoured token lets its bearer do, for the gateway.

    ``msisdn`` is the subscriber behind a three-legged token and None for a two-legged one;
    ``scopes`` are the API scopes (no purpose, no ``openid``).
    """

    client_id: str
    msisdn: str | None
    purpose: str | None
    scopes: tuple[str, ...]
    jti: str
    sub: str
    grant_type: GrantType
    consent_id: str | None
    party: str | None = None
    """Whom the subscriber's consent is given to when not the client itself: an application
    an aggregator acts for (``hub/app``); None means the client."""
    by_network: bool = False
    """The subscriber was authenticated by the mobile network, with no user interaction: the
    authorization code flow from the device's own address, or a TS.43 ``operatortoken:``
    subject. Number Verification answers only such a token (a ``tel:`` hint is the
    application's word for the number, not a proof)."""

    @property
    def consent_party(self) -> str:
        return self.party or self.client_id

    @property
    def two_legged(self) -> bool:
        return self.msisdn is None


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """A token's grant as the operator's records show it now."""

    token: TokenContext
    issued_here: bool = True
    """A token row exists for the ``jti``, with the same client and ``sub``."""
    revoked: bool = False
    client_active: bool = True
    policy: PurposePolicy | None = None
    """The operator's policy for the token's purpose (None: no purpose, or no longer offered)."""
    consent: Consent | None = None
    """The consent record the token was issued under (consent-based purposes)."""
    subscriber: Subscriber | None = None
    """The subscriber behind a three-legged token, as the operator knows them now."""
    sandbox: bool = False
    """The client is a sandbox application: it may reach the documented test numbers only."""


def grant_refusal(facts: GrantFacts, now: float) -> TokenContextError | None:
    """Why the grant no longer stands at ``now`` (None: it stands), first reason first."""
    token = facts.token
    if not facts.issued_here:
        return TokenContextError("unknown_token", "token not issued by this operator")
    if facts.revoked:
        return TokenContextError("revoked", "token revoked")
    if not facts.client_active:
        return TokenContextError("client_disabled", "the client's access was withdrawn")
    policy = facts.policy
    if token.purpose and policy is None:
        return TokenContextError("purpose_withdrawn", "the purpose is no longer offered")
    if token.msisdn is None:
        return None
    if policy is not None and policy.legal_basis is LegalBasis.CONSENT:
        consent = facts.consent
        if consent is None or not consent.active(now):
            return TokenContextError("consent_revoked", "consent revoked or expired")
    if facts.subscriber is None:
        return TokenContextError("unknown_subscriber", "the subscriber left this operator")
    if objects_to(policy, facts.subscriber):
        return TokenContextError("opted_out", "the subscriber objected to processing")
    return None
