"""The operator's policy enforcement point: threat protection, authentication, admission
(grant, trust, scope, purpose, plan, throttle), metering, in that order (see
:mod:`operators.gateway.gateway`). :class:`Admission` and :func:`is_billable` are the decisions
the simulation calls too."""

from .admission import Admission, Admitted, objection, sandbox_refusal, throttle_key
from .authentication import BearerAuthenticator, unauthenticated
from .errors import install_camara_error_handlers
from .gateway import Gateway, GatewayMiddleware, MeteredCall
from .metering import GroupCommit, UsageEvent, UsageLedger, is_billable
from .metrics import LATENCY_BUCKETS
from .subscriptions import InMemoryPlans, PlanStore, PlanSubscriptions
from .threat_protection import (
    BodyRefusedError,
    ThreatLimits,
    openapi_body,
    parse_json,
    read_body,
    read_json,
    read_json_object,
    read_model,
    unencodable,
)

__all__ = [
    "LATENCY_BUCKETS",
    "Admission",
    "Admitted",
    "BearerAuthenticator",
    "BodyRefusedError",
    "Gateway",
    "GatewayMiddleware",
    "GroupCommit",
    "InMemoryPlans",
    "MeteredCall",
    "PlanStore",
    "PlanSubscriptions",
    "ThreatLimits",
    "UsageEvent",
    "UsageLedger",
    "install_camara_error_handlers",
    "is_billable",
    "objection",
    "openapi_body",
    "parse_json",
    "read_body",
    "read_json",
    "read_json_object",
    "read_model",
    "sandbox_refusal",
    "throttle_key",
    "unauthenticated",
    "unencodable",
]
