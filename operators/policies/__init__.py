"""Protective policies: plain objects that take a clock, so live and simulated runs agree."""

from operators.policies.bulkhead import RequestBuffer, Ticket, TicketState
from operators.policies.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerMetrics,
    CircuitBreakerState,
    SlidingWindowType,
    StateTransition,
)
from operators.policies.load_shedder import (
    AdmissionShedder,
    CoDelShedder,
    DequeueShedder,
    LoadShedder,
    NoShedding,
)
from operators.policies.quota import QuotaCounter
from operators.policies.retry import RetryBudget, RetryPolicy
from operators.policies.throttle import (
    QUOTA_EXCEEDED,
    TOO_MANY_REQUESTS,
    NoThrottle,
    Throttle,
    ThrottleDecision,
    ThrottlePolicy,
)
from operators.policies.token_bucket import TokenBucket

__all__ = [
    "QUOTA_EXCEEDED",
    "TOO_MANY_REQUESTS",
    "AdmissionShedder",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerMetrics",
    "CircuitBreakerState",
    "CoDelShedder",
    "DequeueShedder",
    "LoadShedder",
    "NoShedding",
    "NoThrottle",
    "QuotaCounter",
    "RequestBuffer",
    "RetryBudget",
    "RetryPolicy",
    "SlidingWindowType",
    "StateTransition",
    "Throttle",
    "ThrottleDecision",
    "ThrottlePolicy",
    "Ticket",
    "TicketState",
    "TokenBucket",
]
