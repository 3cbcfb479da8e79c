"""The policy enforcement point: every CAMARA call passes the same chain, in this order.

threat protection → authentication → admission (the grant in real time, trust, scope,
purpose, then plan and throttle: :class:`~operators.gateway.admission.Admission`, the object
the simulation calls too) → the CAMARA service → metering. :meth:`Gateway.context` is what
each CAMARA route awaits before its service; :func:`run_policies` echoes ``x-correlator`` on
every answer and meters each billable call exactly once. The CAMARA operations run both as
one plain ASGI chain (:mod:`operators.gateway.chain`); :class:`GatewayMiddleware` runs the
policies for every other request inside FastAPI's stack.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from operators.analytics.usage_recorder import UsageRecorder
from operators.camara import CallContext, Operation, correlator_pattern, operation_at
from operators.camara.common import NOT_PARSED, parse_body
from operators.camara.correlator import (
    HEADER,
    IDEMPOTENCY_HEADER,
    correlator_for,
    idempotency_key,
    new_correlator,
    render_error,
)
from operators.camara.json_body import PARSED_BODY
from operators.camara.number_verification import NOT_BY_NETWORK
from operators.config import Plan
from operators.errors import CamaraError, unavailable
from operators.identity import IdentityServer
from operators.storage import Effect, apply_effects, held_effects
from operators.types import Clock

from .admission import Admission
from .authentication import BearerAuthenticator
from .call_statistics import CALLER, CallStatistics
from .metering import (
    CallSubjects,
    GroupCommit,
    StoredAnswer,
    UnbilledCall,
    UsageEvent,
    UsageLedger,
    is_billable,
    noted_subjects,
)
from .metrics import GatewayMetrics
from .threat_protection import BodyRefusedError, ThreatLimits, inspect_body, read_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
log = logging.getLogger("ogsim.gateway")


@dataclass(frozen=True, slots=True)
class MeteredCall:
    """What the gateway learned about a call that passed the chain, for metering."""

    context: CallContext
    operation: Operation
    plan: Plan
    key: str
    """The key the call is metered under: the client's ``Idempotency-Key``, else one the
    gateway chose (the correlator it made up, when the client sent none)."""
    digest: str | None = None
    """The request's fingerprint (see replay_of); SERVER_CHOSEN when the gateway chose the
    key."""
    admitted_at: float | None = None
    """When ``plan`` was taken (epoch): the usage event's time, so that rating, which picks
    the plan period holding it, prices the call under the plan it was admitted under even
    when the plan changed while it ran (None: when it is metered)."""

    @property
    def api(self) -> str:
        return self.operation.api


DELIVERY_FIELDS = frozenset({"sink", "sinkCredential"})
"""Where and how to notify: not what is asked. The hub gives each attempt of a relayed QoD
session its own sink and credential, and a retry must still find its first answer."""

SERVER_CHOSEN = ""
"""The fingerprint kept for a key the gateway chose: nothing replays under it."""


def request_digest(scope: Scope, document: Any, context: CallContext) -> str:
    """A fingerprint of what was asked: method, path (a session id in it), query, the parsed
    body (the number a two-legged call is about; keys in order, delivery fields left out),
    the subscriber of a three-legged token and the party it acts for. An idempotency key
    replays only the request it was first used for."""
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k not in DELIVERY_FIELDS}
    digest = hashlib.sha256()
    for part in (scope["method"], scope["path"], context.msisdn or "", context.consent_party):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(bytes(scope.get("query_string", b"")) + b"\x00")
    digest.update(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def replay_of(
    stored: StoredAnswer, operation: Operation, context: CallContext, digest: str
) -> Exception:
    """The stored answer to send again, or the refusal of an idempotency key reused for
    another request: another request's answer would be wrong (a QoD session's creation
    replayed to a deletion that then never ran, one number's SIM swap answered for another),
    and running the call would bill nothing, its key being taken. Answers stored before
    requests were fingerprinted are matched on the operation and the token's subscriber; one
    kept under a key the gateway chose (a correlator it made up and echoed, which the client
    may send back as its key) never replays."""
    if stored.digest == SERVER_CHOSEN:
        return CamaraError(
            400,
            "INVALID_ARGUMENT",
            "Idempotency-Key: this value is one the gateway chose for another call; send a key"
            " of your own.",
        )
    if stored.digest is not None:
        other = stored.digest != digest
    else:
        other_subject = context.msisdn is not None and stored.msisdn != context.msisdn
        other = stored.operation != operation.operation_id or other_subject
    if other:
        return CamaraError(
            400,
            "INVALID_ARGUMENT",
            "Idempotency-Key: this value was already used for another request; send a new one.",
        )
    if stored.body is None:
        return CamaraError(
            400,
            "INVALID_ARGUMENT",
            "Idempotency-Key: this value was already used for a call whose answer is no longer"
            " kept; send a new one.",
        )
    return ReplayedCall(stored.status, stored.body)


class ReplayedCall(Exception):  # noqa: N818 - a control-flow signal, not a failure
    """An idempotency key the client reused for a call already answered and billed: replay
    it."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def api_of(path: str) -> str:
    """The API a path belongs to: its first segment (``/sim-swap/v2/check`` → ``sim-swap``)."""
    return path.lstrip("/").split("/", 1)[0]


IDENTITY_ENDPOINTS = frozenset(
    {"token", "bc-authorize", "authorize", "par", "introspect", "revoke", "userinfo", "jwks"}
)
"""The identity server's endpoints named in the metrics' ``operation`` label (a token grant
apart from a CIBA request or a key fetch); any other path's operation is ``-``."""


def unrouted_labels(path: str, matched: bool) -> tuple[str, str]:
    """The ``(api, operation)`` labels of an answer no CAMARA operation gave.

    A path no route matched is labelled ``("-", "-")`` whatever the answer: its first
    segment is whatever the caller typed, and a label per typo would let anyone grow the
    metrics without bound. The identity server's endpoints keep their last segment as the
    operation.
    """
    if not matched:
        return "-", "-"
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return api_of(path), last if last in IDENTITY_ENDPOINTS else "-"


_heap = {"settled": False}
YOUNG_COLLECTION = 10_000


def settle_heap() -> None:
    """Move what start-up built (modules, the app, the models, the caches' first fill) out of
    the garbage collector's sight, once per process.

    Measured on the benchmark: without it each full collection walks ~120,000 long-lived
    objects (~130 ms of CPU, one every ~1,000 calls): that pause is the p99. ``gc.freeze``
    is CPython's documented way to leave them alone; collecting first keeps frozen garbage
    out. Once per process, so a test process starting many apps freezes only the first.

    The youngest generation is collected after :data:`YOUNG_COLLECTION` net allocations
    instead of CPython's 700: each call leaves a few dozen objects in reference cycles (the
    framework's exception and coroutine frames), and at 700 a collection ran every ~12 calls,
    each walking the objects of every call in flight again (~5 % of the server's time).
    """
    if _heap["settled"]:
        return
    _heap["settled"] = True
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_COLLECTION), middle, old)


class Gateway:
    """One operator's chain of policies, built once per operator from replaceable parts.

    ``party_trusted(client_id)`` is the federation's trust gate (always True alone).
    """

    def __init__(
        self,
        authenticator: BearerAuthenticator,
        identity: IdentityServer,
        admission: Admission,
        ledger: UsageLedger,
        metrics: GatewayMetrics,
        *,
        party_trusted: Callable[[str], bool] | None = None,
        limits: ThreatLimits | None = None,
        calendar: Clock = time.time,
        statistics: CallStatistics | None = None,
        usage: UsageRecorder | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.identity = identity
        self.admission = admission
        self.ledger = ledger
        self.commits = GroupCommit(ledger)
        self.metrics = metrics
        self.party_trusted = party_trusted
        self.limits = limits or ThreatLimits()
        self.calendar = calendar
        self.statistics = statistics or CallStatistics(ledger.db, calendar)
        self.usage = usage or UsageRecorder(ledger.db, calendar)
        """The analytics' usage buckets: every identified call, with its subscriber and source."""

    async def start(self) -> None:
        """Begin serving: settle the heap (:func:`settle_heap`), start the writers of the
        statistics and the usage buckets."""
        settle_heap()
        await self.statistics.start()
        await self.usage.start()

    async def stop(self) -> None:
        """Write every call statistic and usage bucket still waiting."""
        await self.statistics.stop()
        await self.usage.stop()

    async def context(self, request: Request) -> CallContext:
        """The chain up to the CAMARA service, awaited by each CAMARA route before it runs."""
        scope = request.scope
        state = scope.setdefault("state", {})
        headers = request.headers
        method = scope["method"]
        correlator = state.get("correlator") or correlator_for(
            headers.get(HEADER), correlator_pattern(scope["path"])
        )
        key = idempotency_key(headers.get(IDEMPOTENCY_HEADER))
        body = b""
        if method in _BODY_METHODS:
            try:  # bounded in size (by the declared length before reading) and in time
                body = await read_body(request, self.limits)
            except BodyRefusedError as refusal:
                if refusal.status != 413:
                    raise
                # CAMARA defines no 413: an oversized body is the gateway's 400 as always
                raise CamaraError(400, "INVALID_ARGUMENT", refusal.message) from refusal
            # parsed once, strictly; the endpoint checks only what this parser lets through
            state[PARSED_BODY] = inspect_body(headers.get("content-type"), body, self.limits)
        claims = self.authenticator.authenticate(headers.get("authorization"))
        operation = operation_at(method, scope["route"].path)
        # an identified application's call from here on: counted for its usage pages
        state[CALLER] = (claims.client_id, operation.api if operation else api_of(scope["path"]))
        facts = self.identity.grant_facts(claims)
        if operation is not None:  # who the call is about, for the subscriber's access log
            state["about"] = (facts.token, operation)
        trusted = self.party_trusted is None or self.party_trusted(facts.token.client_id)
        try:
            context = self.admission.authorize(
                facts, operation, party_trusted=trusted, correlator=correlator
            )
        except CamaraError as refusal:
            if refusal.code == NOT_BY_NETWORK and operation is not None:
                _malformed_body_first(operation, state, body)
            raise
        assert operation is not None  # authorize refuses a route outside the table
        digest = SERVER_CHOSEN
        if key is not None:
            # The client asked for at most once: if it already paid for this very request
            # under this key, it gets that answer again; the call is neither run nor billed a
            # second time.
            digest = request_digest(scope, state.get(PARSED_BODY), context)
            stored = self.ledger.replay(context.client_id, key)
            if stored is not None:
                raise replay_of(stored, operation, context, digest)
        else:  # a correlator the gateway made up is unique already (and echoed to the client)
            key = new_correlator() if headers.get(HEADER) else correlator
        try:
            plan = self.admission.rate(context.client_id, operation.api)
        except CamaraError as refusal:
            self.metrics.throttled.labels(context.client_id, refusal.code).inc()
            raise
        state["call"] = MeteredCall(context, operation, plan, key, digest, self.calendar())
        return context

    async def meter(
        self,
        call: MeteredCall,
        status: int,
        body: bytes = b"",
        effects: list[Effect] | None = None,
        *,
        subject: str | None = None,
    ) -> bool:
        """Record one usage event for a successful call, with its answer for replays and in
        the same transaction as the call's held effects; ``subject`` is the subscriber a
        two-legged call turned out to be about."""
        context = call.context
        return await self.commits.record(
            UsageEvent(
                client_id=context.client_id,
                correlator=call.key,
                api=call.api,
                operation=call.operation.operation_id,
                plan=call.plan.name,
                price=call.plan.price_per_call,
                currency=call.plan.currency,
                status=status,
                at=self.calendar() if call.admitted_at is None else call.admitted_at,
                msisdn=context.msisdn or subject,
                purpose=context.purpose,
                request_digest=call.digest,
                party=_beneficiary(context.client_id, context.party),
            ),
            body,
            effects,
        )


class GatewayMiddleware:
    """Pure ASGI: correlator on every answer, metering and metrics once the status is known.

    The usage event is committed before the response head leaves, so a client never holds a
    2xx that was not metered; a crash before that point loses the answer, not the event.
    The CAMARA operations take the same policies without FastAPI's stack in between
    (:class:`~operators.gateway.chain.GatewayApp`); every other request passes here. Under
    ``oauth_path`` (the identity server's mount) and at its RFC 8414 metadata location on the
    origin, a malformed correlator is refused in OAuth's own error format (RFC 6749 §5.2),
    which is what an OAuth client reads there.
    """

    def __init__(self, app: ASGIApp, gateway: Gateway, oauth_path: str | None = None) -> None:
        self.app = app
        self.gateway = gateway
        self.oauth_prefix = None if oauth_path is None else oauth_path.rstrip("/") + "/"
        self.oauth_metadata = (None if oauth_path is None else
                               "/.well-known/oauth-authorization-server" + oauth_path.rstrip("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.oauth_prefix is not None and (
            path.startswith(self.oauth_prefix) or path == self.oauth_metadata
        ):
            try:
                correlator_for(_header(scope, b"x-correlator"))
            except CamaraError as error:
                await _send_oauth_refusal(send, error.message)
                return
        await run_policies(self.gateway, self.app, scope, receive, send)


async def run_policies(
    gateway: Gateway, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for one HTTP request under the gateway's answer policies: the correlator
    (refused when malformed, echoed on every answer), the call statistics, the metrics, and a
    billable answer held until its usage event (with the call's held effects) is committed."""
    raw = _header(scope, b"x-correlator")
    try:
        correlator = correlator_for(raw, correlator_pattern(scope["path"]))
    except CamaraError as error:
        await _send_error(send, error)
        return
    state = scope.setdefault("state", {})
    state["correlator"] = correlator
    started = time.perf_counter()
    send = gateway.statistics.observe(send, state, started)

    held: list[Message] = []  # a metered answer waits here until its body is complete
    answered = [0]  # the status that left, for the usage buckets

    async def send_with_policies(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = answered[0] = int(message["status"])
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-correlator" for name, _ in headers):
                headers.append((b"x-correlator", correlator.encode()))
                message["headers"] = headers
            call = state.get("call")
            if isinstance(call, MeteredCall):
                gateway.metrics.observe(
                    call.api, call.operation.operation_id, status, time.perf_counter() - started
                )
                if is_billable(call.operation, status):
                    held.append(message)
                    return
            else:
                # the router names the endpoint it matched in the scope it was handed
                api, operation = unrouted_labels(scope.get("path", ""), "endpoint" in scope)
                gateway.metrics.observe(api, operation, status, time.perf_counter() - started)
            _log_unbilled(gateway, state, subjects, status)
            await send(message)
            return
        if not held:
            await send(message)
            return
        held.append(message)
        if message.get("more_body", False):
            return
        call = state["call"]
        start, *chunks = held
        body = b"".join(bytes(chunk.get("body", b"")) for chunk in chunks)
        try:
            counted = await gateway.meter(
                call,
                int(start["status"]),
                body,
                list(effects),
                subject=subjects[0] if subjects else None,
            )
            effects.clear()
        except Exception:
            log.exception("metering failed; the call is answered 503")
            answered[0] = 503
            await _send_error(send, unavailable("The call could not be metered."), correlator)
            return
        if not counted:
            # Another call took this key while this one ran (the same idempotency key sent
            # twice at once): its writes were undone with the unrecorded event, and it gets
            # what a reuse gets, the first call's answer or a refusal, never an unbilled
            # success.
            answered[0] = await _send_taken_key(gateway, call, send, correlator)
            return
        await send(start)
        await send({"type": "http.response.body", "body": body})

    with held_effects() as effects, noted_subjects() as subjects:
        await app(scope, receive, send_with_policies)
        if effects and not held:  # an answer that is not metered: its writes stand alone
            apply_effects(effects)
    caller = state.get(CALLER)
    if caller is not None and answered[0]:
        _fold_usage(gateway.usage, caller, answered[0], state, subjects, scope)


def _fold_usage(
    usage: UsageRecorder,
    caller: tuple[str, str],
    status: int,
    state: Any,
    subjects: list[str],
    scope: Scope,
) -> None:
    """Fold an identified application's answered call into its usage bucket: about the
    token's subscriber, else the first a two-legged call named; from the caller's address."""
    about = state.get("about")
    subscriber = about[0].msisdn if about is not None else None
    if subscriber is None and subjects:
        subscriber = subjects[0]
    client = scope.get("client")
    usage.record(
        caller[0],
        caller[1],
        status,
        subscriber=subscriber,
        host=client[0] if client else None,
    )


def _beneficiary(client_id: str, party: str | None) -> str | None:
    """The application a call was made for, when not the calling client (an aggregator's
    application), as the usage records keep it."""
    return party if party and party != client_id else None


def _log_unbilled(gateway: Gateway, state: Any, subjects: CallSubjects, status: int) -> None:
    """Keep a CAMARA call about a known subscriber that was not billed, for their access log:
    a free operation's answer or any answer once the network answered about them (their data
    was processed: a location too old for ``maxAge`` is a 422 that read it), or a refusal on
    their account (the
    grant no longer stands: a withdrawn consent, an untrusted party, a missing scope; or their
    objection to a two-legged call's purpose). Malformed requests and throttled calls are the
    application's business and leave nothing, as any other refusal."""
    about = state.get("about")
    if about is None:
        return
    token, operation = about
    msisdn = token.msisdn or (subjects[0] if subjects else None)
    if msisdn is None:
        return
    admitted = isinstance(state.get("call"), MeteredCall)
    refused_for_subscriber = status == 403 and (not admitted or token.msisdn is None)
    if not (200 <= status < 300 or refused_for_subscriber or (subjects.read and status < 500)):
        return
    try:
        gateway.ledger.record_unbilled(
            UnbilledCall(
                token.client_id,
                msisdn,
                operation.api,
                operation.operation_id,
                token.purpose,
                status,
                gateway.calendar(),
                _beneficiary(token.client_id, token.party),
            )
        )
    except Exception:  # the answer matters more than its trace in the access log
        log.exception("an unbilled call could not be kept in the access log")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _send_taken_key(gateway: Gateway, call: MeteredCall, send: Send,
                          correlator: str) -> int:
    """Answer a call whose usage key another call took first; the status sent."""
    context = call.context
    stored = gateway.ledger.replay(context.client_id, call.key)
    outcome = (replay_of(stored, call.operation, context, call.digest or SERVER_CHOSEN)
               if stored is not None
               else CamaraError(409, "CONFLICT", "Idempotency-Key: another request under"
                                " this value is in progress; retry it later."))
    if isinstance(outcome, ReplayedCall) and outcome.body is not None:
        headers = [(b"content-type", b"application/json"), (b"idempotent-replayed", b"true"),
                   (b"x-correlator", correlator.encode()),
                   (b"content-length", str(len(outcome.body)).encode())]
        await send({"type": "http.response.start", "status": outcome.status,
                    "headers": headers})
        await send({"type": "http.response.body", "body": outcome.body})
        return outcome.status
    assert isinstance(outcome, CamaraError)
    await _send_error(send, outcome, correlator)
    return outcome.status


async def _send_oauth_refusal(send: Send, description: str) -> None:
    body = json.dumps({"error": "invalid_request", "error_description": description}).encode()
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: CamaraError, correlator: str | None = None) -> None:
    """Answer with a CAMARA error from inside the ASGI chain (rendered by ``render_error``)."""
    response = render_error(error, correlator)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _malformed_body_first(
    operation: Operation, state: MutableMapping[str, Any], body: bytes
) -> None:
    """Raise the 400 a malformed body gets, if it is one: CAMARA's Number Verification
    scenario C02.01 ranks it above the token's "not authenticated by the mobile network"
    (admission's refusal, which stands for a well-formed body)."""
    if operation.request is not None:
        parse_body(operation.request, body, out_of_range=operation.out_of_range,
                   parsed=state.get(PARSED_BODY, NOT_PARSED))
