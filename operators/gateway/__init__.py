"""The operator's policy enforcement point: threat protection, authentication, authorization,
throttling, metering, in that order (see :mod:`operators.gateway.gateway`)."""

from .gateway import Gateway, GatewayMiddleware, MeteredCall
from .metering import GroupCommit, UsageEvent, UsageLedger

__all__ = [
    "Gateway",
    "GatewayMiddleware",
    "GroupCommit",
    "MeteredCall",
    "UsageEvent",
    "UsageLedger",
]
