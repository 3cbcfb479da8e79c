"""The developer portal: accounts, applications and keys, plans, usage and invoices (``/portal``).

Served by every operator and by the aggregator, each through a :class:`PortalHost` of its own
parts.
"""

from __future__ import annotations

from operators.portal.developers import (
    Application,
    ApplicationStatus,
    Developer,
    Environment,
    Organisation,
)
from operators.portal.host import PortalHost

__all__ = [
    "Application",
    "ApplicationStatus",
    "Developer",
    "Environment",
    "Organisation",
    "PortalHost",
]
