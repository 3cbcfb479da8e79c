"""Prometheus metrics of one gateway, in a registry of its own so operators never share series."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0065,
    0.008,
    0.01,
    0.0125,
    0.015,
    0.0175,
    0.02,
    0.025,
    0.03,
    0.035,
    0.04,
    0.05,
    0.06,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Bounds about a fifth apart where calls are (a few to a hundred milliseconds), so a
percentile read from a scrape (linear within its bucket) is off by a few percent at most:
``ogsim calibrate`` compares the simulation's p50 and p95 with these."""


class _CallbackCollector(Collector):
    """Reads gauges (breaker states, queue lengths) at scrape time instead of on every change."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: list[str],
        read: Callable[[], dict[tuple[str, ...], float]],
    ) -> None:
        self._name, self._doc, self._labels, self._read = name, doc, labels, read

    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily(self._name, self._doc, labels=self._labels)
        for labels, value in self._read().items():
            family.add_metric(list(labels), value)
        yield family


class GatewayMetrics:
    """Request counts and latencies by API and status, throttles, and live backend gauges."""

    def __init__(self, operator_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operator_id = operator_id
        self.requests = Counter(
            "ogsim_gateway_requests",
            "Requests by API, operation and status",
            ["api", "operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ogsim_gateway_request_seconds",
            "Request latency by API",
            ["api", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.throttled = Counter(
            "ogsim_gateway_throttled",
            "Calls refused by throttling, by code",
            ["client_id", "code"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "ogsim_gateway_in_flight", "Requests inside the gateway now", registry=self.registry
        )
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, api: str, operation: str, status: int, seconds: float) -> None:
        """Count one answer and its latency. The labelled children are looked up once per
        (api, operation, status) and kept: ``labels()`` takes a lock and builds keys each time."""
        key = (api, operation, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(api, operation, str(status)),
                self.latency.labels(api, operation),
            )
        series[0].inc()
        series[1].observe(seconds)

    def add_gauge(
        self,
        name: str,
        doc: str,
        labels: list[str],
        read: Callable[[], dict[tuple[str, ...], float]],
    ) -> None:
        """Expose a value read at scrape time, e.g. breaker state per backend."""
        self.registry.register(_CallbackCollector(name, doc, labels, read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
