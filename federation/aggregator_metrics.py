"""Prometheus metrics of one aggregator (the hub), served at ``GET /metrics`` on its origin.

An operator's gateway reports how long its calls take; the hub adds hops of its own before
and after the operator's gateway (the Telco Finder, the operator's token, the forwarded call).
``ogsim calibrate`` fits the simulated aggregator to these series, so their names and labels
are an interface: keep them.

* ``ogsim_aggregator_request_seconds{api, operation}``: one hub CAMARA call, from the request
  entering the hub to its answer's head leaving it, refusals included;
* ``ogsim_aggregator_hop_seconds{stage, operator}``: one hop inside such a call, ``stage``
  one of :data:`STAGES`; ``operator`` the partner's id, empty for the finder.

The buckets are the gateway's (:data:`operators.gateway.LATENCY_BUCKETS`), so a percentile
read from either scrape has the same resolution.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operators.gateway import LATENCY_BUCKETS

FINDER = "finder"
"""One Telco Finder search (a call that searches SHALLOW then DEEP observes two)."""
TOKEN = "token"
"""Obtaining the serving operator's token for the call, from the hub's cache or not."""
FORWARD = "forward"
"""The call forwarded to the operator's gateway, until its answer is read."""
STAGES = (FINDER, TOKEN, FORWARD)

CALL = "ogsim.hub_call"
"""The scope key under which a hub CAMARA endpoint names its call: ``(api, operation)``."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus's text exposition format, as the operators' ``/metrics`` serves it."""


class AggregatorMetrics:
    """The hub's call and hop latencies, in a registry of its own (several hubs may share a
    process in tests and ``ogsim demo``; none may see another's series)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "ogsim_aggregator_request_seconds",
            "Hub CAMARA calls, hub in to hub out, by API and operation",
            ["api", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.hops = Histogram(
            "ogsim_aggregator_hop_seconds",
            "Hops inside a hub call by stage (finder, token, forward) and partner operator",
            ["stage", "operator"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # labelled children looked up once and kept: ``labels()`` takes a lock and builds a key
        self._requests: dict[tuple[str, str], Any] = {}
        self._hops: dict[tuple[str, str], Any] = {}

    def observe_request(self, api: str, operation: str, seconds: float) -> None:
        key = (api, operation)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(api, operation)
        child.observe(seconds)

    def observe_hop(self, stage: str, operator: str, seconds: float) -> None:
        key = (stage, operator)
        child = self._hops.get(key)
        if child is None:
            child = self._hops[key] = self.hops.labels(stage, operator)
        child.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def name_call(scope: Scope, api: str, operation: str) -> None:
    """Mark the request as a hub CAMARA call (its endpoint was found), so :class:`CallTiming`
    observes it however it ends: answered, refused by the hub, or failed."""
    scope[CALL] = (api, operation)


class CallTiming:
    """Pure ASGI: times each request an endpoint marked with :func:`name_call`, from entering
    the hub to its answer's head leaving (as an operator's gateway times its calls); an
    exception that escapes every handler ends the call there instead. Unmarked requests (the
    identity server, the Telco Finder, the portal) pass untimed."""

    def __init__(self, app: ASGIApp, metrics: AggregatorMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        timed = [False]

        def observe() -> None:
            call = scope.get(CALL)
            if call is not None and not timed[0]:
                timed[0] = True
                self.metrics.observe_request(call[0], call[1], time.perf_counter() - started)

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        except BaseException:
            observe()
            raise
