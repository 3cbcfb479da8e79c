"""The developer portal: accounts, applications and keys, plans, usage and invoices (``/portal``).

Served by every operator and by the aggregator, each through a :class:`PortalHost` of its own
parts: ``install_developer_portal(app, host)`` mounts the pages and their error handlers.
Page modules of their own build routers from ``(host, accounts, guard)`` (see
:data:`operators.portal.router.PageRouterFactory`). Names other than the records are imported
on first use, so reading a record type never loads the identity server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.faces import lazy_face
from operators.portal.developers import (
    Application,
    ApplicationStatus,
    Developer,
    Environment,
    Organisation,
)
from operators.portal.host import PortalHost

if TYPE_CHECKING:
    from operators.portal.accounts import AccountError, DeveloperAccounts, application_terms
    from operators.portal.developer_portal import DeveloperPortal
    from operators.portal.guard import AdminRequired, FormRefused, PortalGuard, SignInRequired
    from operators.portal.login_throttle import LoginThrottle
    from operators.portal.router import (
        PageRouterFactory,
        build_developer_portal_router,
        close_developer_portal,
        install_developer_portal,
        install_portal_handlers,
    )

__all__ = [
    "AccountError",
    "AdminRequired",
    "Application",
    "ApplicationStatus",
    "Developer",
    "DeveloperAccounts",
    "DeveloperPortal",
    "Environment",
    "FormRefused",
    "LoginThrottle",
    "Organisation",
    "PageRouterFactory",
    "PortalGuard",
    "PortalHost",
    "SignInRequired",
    "application_terms",
    "build_developer_portal_router",
    "close_developer_portal",
    "install_developer_portal",
    "install_portal_handlers",
]

_HOMES = {
    "AccountError": "operators.portal.accounts",
    "DeveloperAccounts": "operators.portal.accounts",
    "application_terms": "operators.portal.accounts",
    "AdminRequired": "operators.portal.guard",
    "FormRefused": "operators.portal.guard",
    "PortalGuard": "operators.portal.guard",
    "SignInRequired": "operators.portal.guard",
    "LoginThrottle": "operators.portal.login_throttle",
    "DeveloperPortal": "operators.portal.developer_portal",
    "PageRouterFactory": "operators.portal.router",
    "build_developer_portal_router": "operators.portal.router",
    "close_developer_portal": "operators.portal.router",
    "install_developer_portal": "operators.portal.router",
    "install_portal_handlers": "operators.portal.router",
}
"""Where each lazily imported public name lives (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
