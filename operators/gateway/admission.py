"""Admission: the gateway's decisions for one call, made by one pure object in both modes.

In order: the grant behind the token still stands (:func:`~operators.identity.grant_refusal`:
revocation, client, consent, the subscriber's objection), the party it was issued to is still
trusted, the token holds the operation's scope and names a purpose, then the application's
plan for the API and the throttle under that plan. Its inputs are plain values: the live
gateway reads them from the request and the operator's database, the simulation's gateway
tier builds them from its model; neither codes a step of its own. No I/O happens here except
through the stores it is given (plans, the throttle's counters), which are protocols with a
database-backed implementation live and an in-memory one in the simulation.

A refusal is a :class:`~operators.errors.CamaraError` carrying the status and code the client
sees; the caller renders it (live) or records it (simulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from operators.camara import CallContext, Operation, scopes_satisfied
from operators.camara.number_verification import not_authenticated_by_network
from operators.config import Plan, PurposePolicy
from operators.errors import CamaraError
from operators.identity import GrantFacts, grant_refusal, objects_to
from operators.policies import (
    QUOTA_EXCEEDED,
    TOO_MANY_REQUESTS,
    ThrottleDecision,
    ThrottlePolicy,
)
from operators.subscriber import Subscriber
from operators.types import Clock

from .authentication import unauthenticated
from .subscriptions import PlanStore

__all__ = [
    "Admission",
    "Admitted",
    "objection",
    "sandbox_refusal",
    "throttle_key",
]


def throttle_key(client_id: str, api: str) -> str:
    """Throttling is per application and API: each API subscription has its own limits."""
    return f"{client_id}|{api}"


def objection(policy: PurposePolicy | None, subscriber: Subscriber | None) -> CamaraError | None:
    """The refusal a call gets when it names a device whose subscriber bars its purpose.

    Three-legged tokens carry this check in their grant; a two-legged call names its device
    in the body, so the integrator asks here once it has resolved the device (after
    throttling, live and simulated alike). Only legitimate interest gives way to an opt-out;
    a subscriber who is gone has nothing to process.
    """
    if subscriber is None or objects_to(policy, subscriber):
        return CamaraError(
            403, "PERMISSION_DENIED", "The subscriber objected to processing for this purpose."
        )
    return None


def sandbox_refusal(sandbox: bool, test_number: bool) -> CamaraError | None:
    """The refusal a sandbox application gets for a device that is not a documented test number.

    Asked once the device is resolved (the token or the body names it), before the
    subscriber's objection: a sandbox key must never touch a real subscriber's data, whatever
    the purpose, so a leaked sandbox key is worth nothing against the network.
    """
    if sandbox and not test_number:
        return CamaraError(
            403,
            "PERMISSION_DENIED",
            "A sandbox application may only reach the operator's documented test numbers.",
        )
    return None


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call the gateway let through: who calls about whom, and the plan it is billed on."""

    context: CallContext
    plan: Plan


_RETRY_AFTER = tuple(str(max(1, seconds)) for seconds in range(3601))
"""``Retry-After`` values for waits up to an hour, made once: every refused call sends one."""


def _retry_after(seconds: float) -> str:
    """Whole seconds, at least 1, as the ``Retry-After`` header gives them."""
    whole = math.ceil(seconds)
    if 0 <= whole <= 3600:
        return _RETRY_AFTER[whole]
    return str(max(1, whole))


def _throttled(decision: ThrottleDecision) -> CamaraError:
    """The 429 for a throttle's refusal, with its code and ``Retry-After``."""
    code = decision.code or TOO_MANY_REQUESTS
    message = "Out of resource quota." if code == QUOTA_EXCEEDED else "Rate limit reached."
    return CamaraError(
        429, code, message, headers={"Retry-After": _retry_after(decision.retry_after)}
    )


class _Granted:
    """What :meth:`Admission.authorize` found for one (frozen) facts object and operation.

    Held by the memo so that the next call with the very same facts and operation skips the
    checks that depend on neither the clock nor the stores (scope, purpose), and the throttle
    key and ``Admitted`` are not built again. Holding ``facts`` keeps its id from being reused
    while the entry lives.
    """

    __slots__ = ("admitted", "context", "correlator", "facts", "key", "operation")

    def __init__(
        self,
        facts: GrantFacts,
        operation: Operation | None,
        correlator: str | None,
        context: CallContext,
    ) -> None:
        self.facts = facts
        self.operation = operation
        self.correlator = correlator
        self.context = context
        self.key: str | None = None  # the throttle key, made by the first admit()
        self.admitted: Admitted | None = None


class Admission:
    """Decides whether one call of one operation may reach the CAMARA service, and on what plan.

    ``clock`` is the operator's calendar (epoch seconds): consent expiry is a date.
    """

    __slots__ = ("_granted", "clock", "plans", "throttle")

    _GRANTED_BOUND = 4096
    """Entries of the granted-context memo before it is cleared."""

    def __init__(self, plans: PlanStore, throttle: ThrottlePolicy, clock: Clock) -> None:
        self.plans = plans
        self.throttle = throttle
        self.clock = clock
        # id(facts) -> what was granted to these facts and operation: the checks that depend
        # on neither the clock nor the stores (scope, purpose) passed for these very (frozen)
        # facts and operation, so their context is handed out again. Only contexts without a
        # correlator are kept: one that names a correlator belongs to one call and is never
        # asked for again (each live request brings its own), while the simulation reuses its
        # facts objects and sends none.
        self._granted: dict[int, _Granted] = {}

    def authorize(
        self,
        facts: GrantFacts,
        operation: Operation | None,
        *,
        party_trusted: bool = True,
        correlator: str | None = None,
    ) -> CallContext:
        """The grant, the trust gate, scope and purpose; the call's context, or a refusal."""
        return self._authorize(facts, operation, party_trusted, correlator).context

    def _authorize(
        self,
        facts: GrantFacts,
        operation: Operation | None,
        party_trusted: bool,
        correlator: str | None,
    ) -> _Granted:
        """:meth:`authorize`, answering its memo entry."""
        refusal = grant_refusal(facts, self.clock())
        if refusal is not None:
            if refusal.status == 401:
                raise unauthenticated(f"The access token is no longer valid: {refusal.kind}.")
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                f"The grant behind this token no longer stands: {refusal.kind}.",
            )
        if not party_trusted:
            # A valid token of a party whose trust was withdrawn: authenticated, not permitted
            # (CAMARA_common's Generic403 PERMISSION_DENIED, not a 401 asking to log in again).
            raise CamaraError(
                403, "PERMISSION_DENIED", "The party this token was issued to is no longer trusted."
            )
        granted = self._granted.get(id(facts))
        if (
            granted is not None
            and granted.facts is facts
            and granted.operation is operation
            and granted.correlator == correlator
        ):
            return granted
        token = facts.token
        if not scopes_satisfied(operation, token.scopes):
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                "The access token lacks the scope this operation requires.",
            )
        if token.purpose is None:
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                "The access token names no purpose for processing personal data.",
            )
        assert operation is not None  # scopes_satisfied refuses an unknown operation
        if operation.network_authenticated and not token.by_network:
            # a tel: hint is the application's word for the number: verifying it would say
            # true for any number it claims (number-verification.yaml, the authentication)
            raise not_authenticated_by_network()
        context = CallContext(
            client_id=token.client_id,
            msisdn=token.msisdn,
            scopes=frozenset(token.scopes),
            purpose=token.purpose,
            correlator=correlator,
            party=token.party,
            sandbox=facts.sandbox,
        )
        granted = _Granted(facts, operation, correlator, context)
        if correlator is None:
            if len(self._granted) >= self._GRANTED_BOUND:
                self._granted.clear()
            self._granted[id(facts)] = granted
        return granted

    def rate(self, client_id: str, api: str) -> Plan:
        """The application's plan for ``api``, if its throttle lets one more call through."""
        return self._rated(client_id, api, throttle_key(client_id, api))

    def _rated(self, client_id: str, api: str, key: str) -> Plan:
        """:meth:`rate`, the throttle key given (:meth:`admit` keeps it in its memo)."""
        plan = self.plans.plan_for(client_id, api)
        decision = self.throttle.check(key, plan)
        if not decision.allowed:
            raise _throttled(decision)
        return plan

    def admit(
        self,
        facts: GrantFacts,
        operation: Operation,
        *,
        party_trusted: bool = True,
        correlator: str | None = None,
    ) -> Admitted:
        """Every step in order (the live gateway checks an idempotent replay in between)."""
        granted = self._authorize(facts, operation, party_trusted, correlator)
        context = granted.context
        client_id, api = context.client_id, operation.api
        key = granted.key
        if key is None:
            key = granted.key = throttle_key(client_id, api)
        plan = self._rated(client_id, api, key)
        admitted = granted.admitted
        if admitted is not None and admitted.plan is plan:
            return admitted
        admitted = granted.admitted = Admitted(context, plan)
        return admitted
