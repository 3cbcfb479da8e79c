"""Who the developer portal serves: organisations, their developers and their applications.

These are the portal's records, kept in the serving party's database beside its client
registry. An application here is the portal's view of a registered OAuth client: which
organisation owns it, which developer created it, whether it is a sandbox or a production
application and whether it is suspended. The client registry stays the authority on keys and
grants; the gateway reads the client's ``environment`` and ``disabled`` flags from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Environment(StrEnum):
    """Where an application may call: the sandbox reaches only the documented test numbers."""

    SANDBOX = "sandbox"
    PRODUCTION = "production"


class ApplicationStatus(StrEnum):
    ACTIVE = "active"
    PENDING_PRODUCTION = "pending-production"
    """A sandbox application whose owner asked for production; it keeps working in the sandbox
    until an operator admin approves or refuses."""
    SUSPENDED = "suspended"
    """Cut off by the kill switch (its developer was deprovisioned) or by an admin."""
    DISABLED = "disabled"
    """Turned off by its own organisation."""


@dataclass(frozen=True)
class Organisation:
    org_id: str
    name: str
    created_at: float
    idp_issuer: str | None = None
    """The corporate OIDC provider its developers sign in with, when it federates sign-in."""


@dataclass(frozen=True)
class Developer:
    developer_id: str
    org_id: str
    email: str
    name: str
    active: bool
    created_at: float
    last_seen_at: float
    external_subject: str | None = None
    """The ``sub`` (and SCIM user id) at the organisation's identity provider, if federated."""
    deactivated_at: float | None = None
    external_issuer: str | None = None
    """The provider that gave ``external_subject``: a member linked at a provider the
    organisation has since left is no longer known to its current one."""
    email_confirmed: bool = True
    """Whether the address is known to be theirs: confirmed by the link mailed to it, or
    vouched for by the organisation's identity provider."""


@dataclass(frozen=True)
class Application:
    client_id: str
    org_id: str
    developer_id: str
    name: str
    environment: Environment
    status: ApplicationStatus
    created_at: float
    ended_at: float | None = None
    """When it was disabled or suspended: it has held no plan, and paid no fee, since."""
