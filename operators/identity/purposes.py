"""Scope requests and purposes: exactly one ``dpv:`` purpose, and what its legal basis needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import LegalBasis, OperatorConfig, PurposePolicy
from ..errors import OAuthError
from ..subscriber import Subscriber
from .clients import Client
from .types import OPENID, PURPOSE_PREFIX

PURPOSE_WORDS = {
    "dpv:FraudPreventionAndDetection": "Fraud prevention and detection",
    "dpv:RequestedServiceProvision": "Providing a service you asked for",
    "dpv:ServiceProvision": "Providing a service",
    "dpv:IdentityVerification": "Verifying your identity",
    "dpv:Marketing": "Marketing",
}
"""Purposes of the DPV vocabulary in words a subscriber reads (others are split from their
camel case: ``dpv:PersonalisedAdvertising`` reads "Personalised advertising")."""


def describe_purpose(purpose: str) -> str:
    """A purpose in words, for pages a subscriber reads."""
    if purpose in PURPOSE_WORDS:
        return PURPOSE_WORDS[purpose]
    name = purpose.removeprefix(PURPOSE_PREFIX)
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]?[a-z0-9]+|[A-Z]+", name)
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:] if text else purpose


def objects_to(policy: PurposePolicy | None, subscriber: Subscriber) -> bool:
    """Whether the subscriber's objection bars this purpose: legitimate interest gives way to
    an opt-out; consent and contract are decided elsewhere (a consent record, nothing)."""
    return (
        policy is not None
        and policy.legal_basis is LegalBasis.LEGITIMATE_INTEREST
        and (
            subscriber.legitimate_interest_opt_out
            or policy.purpose in subscriber.purpose_opt_outs
        )
    )


@dataclass(frozen=True)
class ScopeRequest:
    """A requested scope split into its purpose, its API scopes and ``openid``."""

    purpose: PurposePolicy | None
    api_scopes: tuple[str, ...]
    openid: bool

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every granted scope value, purpose included, in a stable order."""
        values = ([OPENID] if self.openid else []) + sorted(self.api_scopes)
        return (*values, self.purpose.purpose) if self.purpose else tuple(values)

    @property
    def needs_consent(self) -> bool:
        return self.purpose is not None and self.purpose.legal_basis is LegalBasis.CONSENT

    @property
    def legitimate_interest(self) -> bool:
        return (
            self.purpose is not None and self.purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST
        )


def parse_scope(
    config: OperatorConfig, client: Client, raw: str | None, *, purpose_required: bool
) -> ScopeRequest:
    """Validate a ``scope`` value for ``client``: one known purpose, scopes it may ask for."""
    values = (raw or "").split()
    if len(values) != len(set(values)):
        raise OAuthError("invalid_scope", "a scope value is repeated")
    purposes = [v for v in values if v.startswith(PURPOSE_PREFIX)]
    if len(purposes) > 1:
        raise OAuthError("invalid_scope", "exactly one dpv: purpose per request")
    if purpose_required and not purposes:
        raise OAuthError("invalid_scope", "personal-data requests must name one dpv: purpose")
    policy: PurposePolicy | None = None
    if purposes:
        policy = config.purpose(purposes[0])
        if policy is None:
            raise OAuthError("invalid_scope", f"unknown purpose {purposes[0]!r}")
        if policy.purpose not in client.purposes:
            raise OAuthError("invalid_scope", f"client may not use purpose {policy.purpose!r}")
    api = tuple(v for v in values if not v.startswith(PURPOSE_PREFIX) and v != OPENID)
    if not api and not policy:
        raise OAuthError("invalid_scope", "scope is required")
    refused = [s for s in api if s not in client.scopes]
    if refused:
        raise OAuthError("invalid_scope", f"client may not ask for {' '.join(refused)}")
    return ScopeRequest(policy, api, OPENID in values)
