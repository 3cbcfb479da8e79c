"""The operator's policy enforcement point: threat protection, authentication, admission
(grant, trust, scope, purpose, plan, throttle), metering, in that order (see
:mod:`operators.gateway.gateway`). :class:`Admission` and :func:`is_billable` are the decisions
the simulation calls too."""

from .admission import Admission, Admitted, objection, throttle_key
from .authentication import BearerAuthenticator, unauthenticated
from .errors import install_camara_error_handlers
from .gateway import Gateway, GatewayMiddleware, MeteredCall
from .metering import GroupCommit, UsageEvent, UsageLedger, is_billable
from .subscriptions import InMemoryPlans, PlanStore, PlanSubscriptions

__all__ = [
    "Admission",
    "Admitted",
    "BearerAuthenticator",
    "Gateway",
    "GatewayMiddleware",
    "GroupCommit",
    "InMemoryPlans",
    "MeteredCall",
    "PlanStore",
    "PlanSubscriptions",
    "UsageEvent",
    "UsageLedger",
    "install_camara_error_handlers",
    "is_billable",
    "objection",
    "throttle_key",
    "unauthenticated",
]
