"""Protective policies: plain objects that take a clock, so live and simulated runs agree.

Their counters (throttle buckets, quotas) live in a counter store: in memory by default, in
Redis (:class:`RedisCounterStore`, via :func:`counter_store`) for replicas in several processes.
"""

from operators.policies.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    PolicyKind,
    ReplicaSample,
    ScaleDecision,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
)
from operators.policies.bulkhead import RequestBuffer, Ticket, TicketState
from operators.policies.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerMetrics,
    CircuitBreakerState,
    SlidingWindowType,
    StateTransition,
)
from operators.policies.counter_store import (
    CounterDecision,
    CounterStore,
    InMemoryCounterStore,
    Limits,
    counter_store,
)
from operators.policies.load_shedder import (
    AdmissionShedder,
    CoDelShedder,
    DequeueShedder,
    LoadShedder,
    NoShedding,
)
from operators.policies.quota import QuotaCounter, window_bounds, window_index
from operators.policies.redis_counters import RedisCounterStore
from operators.policies.retry import RetryBudget, RetryPolicy
from operators.policies.throttle import (
    QUOTA_EXCEEDED,
    TOO_MANY_REQUESTS,
    NoThrottle,
    Throttle,
    ThrottleDecision,
    ThrottlePolicy,
    gateway_throttle,
)
from operators.policies.token_bucket import TokenBucket

__all__ = [
    "QUOTA_EXCEEDED",
    "TOO_MANY_REQUESTS",
    "AdmissionShedder",
    "Autoscaler",
    "AutoscalerConfig",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerMetrics",
    "CircuitBreakerState",
    "CoDelShedder",
    "CounterDecision",
    "CounterStore",
    "DequeueShedder",
    "InMemoryCounterStore",
    "Limits",
    "LoadShedder",
    "NoShedding",
    "NoThrottle",
    "PolicyKind",
    "QuotaCounter",
    "RedisCounterStore",
    "ReplicaSample",
    "RequestBuffer",
    "RetryBudget",
    "RetryPolicy",
    "ScaleDecision",
    "ScalingPolicy",
    "ScalingRules",
    "SelectPolicy",
    "SlidingWindowType",
    "StateTransition",
    "Throttle",
    "ThrottleDecision",
    "ThrottlePolicy",
    "Ticket",
    "TicketState",
    "TokenBucket",
    "counter_store",
    "gateway_throttle",
    "window_bounds",
    "window_index",
]
