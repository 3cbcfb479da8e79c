"""The network functions' Prometheus timing: every call timed from its arrival at the function
to its answer, its service time alone, and counted by how it ended.

The driver and the function run on a virtual-time loop (their clock is the loop's), so times
are exact and a timeout takes no wall time; the operator's ``/metrics`` is read through a real
operator app on the fake clock the gateway tests use.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from operators.core import (
    ConstantServiceTime,
    CoreSpec,
    Faults,
    LiveNetworkFunction,
    NetworkFunctionKind,
    NetworkFunctionSpec,
)
from operators.core.backend_metrics import OUTCOMES, BackendMetrics
from operators.errors import CamaraError
from operators.gateway.metrics import LATENCY_BUCKETS
from operators.integrator import BackendCall, BackendGuard, Flow, GuardSettings, run_async
from operators.operator import Operator, create_operator_app
from tests.operators.gateway.conftest import (
    ADMIN,
    FRAUD,
    SCOPES,
    FakeClock,
    gateway_config,
    register_fraud_app,
)
from tests.sim.virtual_time import run_in_virtual_time

HLR = NetworkFunctionKind.SIM_DATA_REGISTER
FUNCTION = HLR.value


def lookup(request: str) -> Flow[str]:
    """The smallest flow: one call to the HLR, its record as the result."""
    record: str = yield BackendCall(HLR, request)
    return record


class Station:
    """One live HLR behind its guard on the running loop's clock, measured in its own registry."""

    def __init__(
        self,
        *,
        service: float,
        servers: int = 1,
        queue_limit: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        clock = asyncio.get_running_loop().time
        spec = NetworkFunctionSpec(
            name="hlr",
            kind=HLR,
            servers=servers,
            queue_limit=queue_limit,
            service_time=ConstantServiceTime(value=service),
        )
        self.function: LiveNetworkFunction[str, str] = LiveNetworkFunction(
            spec, str.upper, random.Random(1), clock=clock
        )
        self.guard = BackendGuard("hlr", clock, GuardSettings(call_timeout=timeout))
        self.registry = CollectorRegistry()
        metrics = BackendMetrics(self.registry, buckets=LATENCY_BUCKETS)
        self.meter = metrics.meter(FUNCTION)
        self.function.meter = self.meter

    async def call(self, request: str = "x") -> str:
        return await run_async(
            lookup(request), {HLR: self.function}, {HLR: self.guard}, {HLR: self.meter}
        )

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"function": FUNCTION, **labels})

    def outcomes(self) -> dict[str, float]:
        """Calls by outcome, only those that happened."""
        counts = {o: self.value("ogsim_backend_calls_total", outcome=o) for o in OUTCOMES}
        return {o: n for o, n in counts.items() if n}


def test_a_queued_call_is_timed_with_its_wait_and_its_service_alone() -> None:
    async def main() -> Station:
        station = Station(service=0.002)
        assert await asyncio.gather(station.call("a"), station.call("b")) == ["A", "B"]
        return station

    station = run_in_virtual_time(main())
    # the second call waited 2 ms for the one server, then held it for 2 ms
    assert station.value("ogsim_backend_seconds_count") == 2
    assert station.value("ogsim_backend_seconds_sum") == pytest.approx(0.006)
    assert station.value("ogsim_backend_seconds_bucket", le="0.002") == 1
    assert station.value("ogsim_backend_seconds_bucket", le="0.004") == 2
    assert station.value("ogsim_backend_service_seconds_count") == 2
    assert station.value("ogsim_backend_service_seconds_sum") == pytest.approx(0.004)
    assert station.outcomes() == {"ok": 2}


def test_a_timeout_is_timed_to_the_deadline_and_keeps_its_drawn_service() -> None:
    async def main() -> Station:
        station = Station(service=1.0, timeout=0.05)
        with pytest.raises(CamaraError) as refused:
            await station.call()
        assert refused.value.status == 504
        return station

    station = run_in_virtual_time(main())
    assert station.value("ogsim_backend_seconds_sum") == pytest.approx(0.05)
    assert station.value("ogsim_backend_service_seconds_sum") == 1.0
    assert station.outcomes() == {"timeout": 1}


def test_refused_failed_and_abandoned_calls_are_counted_by_outcome() -> None:
    async def main() -> Station:
        station = Station(service=1.0, queue_limit=0)
        holder = asyncio.create_task(station.call("held"))
        await asyncio.sleep(0)
        assert station.function.in_service == 1
        with pytest.raises(CamaraError):  # the one server busy, no waiting room
            await station.call()
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        await asyncio.sleep(1.0)  # the abandoned call holds its server for its service time
        station.function.set_faults(Faults(outage=True))
        with pytest.raises(CamaraError):
            await station.call()
        station.function.set_faults(Faults(error_rate=1.0))
        with pytest.raises(CamaraError):
            await station.call()
        return station

    station = run_in_virtual_time(main())
    assert station.outcomes() == {"busy": 1, "cancelled": 1, "outage": 1, "error": 1}
    assert station.value("ogsim_backend_seconds_count") == 4
    # only the abandoned call and the failed one got a server
    assert station.value("ogsim_backend_service_seconds_count") == 2


def test_buckets_are_what_a_prometheus_histogram_gives_for_the_same_values() -> None:
    values = [0.0, 0.001, 0.0010001, 0.004, 0.0065, 0.03, 0.3, 2.5, 10.0, 11.0, *LATENCY_BUCKETS]
    registry = CollectorRegistry()
    reference = Histogram("reference", "", buckets=LATENCY_BUCKETS, registry=registry)
    meter = BackendMetrics(registry, buckets=LATENCY_BUCKETS).meter(FUNCTION)
    for value in values:
        reference.observe(value)
        meter.served(value)
    for le in (*(str(b) for b in LATENCY_BUCKETS), "+Inf"):
        expected = registry.get_sample_value("reference_bucket", {"le": le})
        found = registry.get_sample_value(
            "ogsim_backend_service_seconds_bucket", {"function": FUNCTION, "le": le}
        )
        assert found == expected, le
    assert registry.get_sample_value(
        "ogsim_backend_service_seconds_sum", {"function": FUNCTION}
    ) == pytest.approx(sum(values))


# --- a real operator's /metrics -------------------------------------------------------------

SERVICE = 0.002
"""The HLR's constant service time in the operator below (wall seconds: time scale 1)."""


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


class Served:
    def __init__(self, operator: Operator, http: httpx.AsyncClient, token: str) -> None:
        self.operator, self.http, self.token = operator, http, token

    async def check_sim_swap(self) -> httpx.Response:
        return await self.http.post(
            "/sim-swap/v2/check",
            json={"maxAge": 240, "phoneNumber": self.operator.subscribers.test_number("approves")},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def metrics(self) -> str:
        response = await self.http.get("/metrics")
        assert response.status_code == 200
        return response.text

    async def backend(self, function: str = FUNCTION) -> dict[str, Any]:
        text = await self.metrics()
        calls = {
            o: sample(text, "ogsim_backend_calls_total", function=function, outcome=o)
            for o in OUTCOMES
        }
        return {
            "seconds": sample(text, "ogsim_backend_seconds_count", function=function),
            "service": sample(text, "ogsim_backend_service_seconds_count", function=function),
            "service_sum": sample(text, "ogsim_backend_service_seconds_sum", function=function),
            "calls": {o: n for o, n in calls.items() if n},
        }


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = FakeClock()
    hlr = CoreSpec().sim_data_register.model_copy(
        update={"service_time": ConstantServiceTime(value=SERVICE)}
    )
    operator = Operator.from_config(
        gateway_config(),
        clock=clock,
        monotonic=clock,
        core=CoreSpec(sim_data_register=hlr),
    )
    app = create_operator_app(operator)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        client = await register_fraud_app(http, operator, clock, scope=SCOPES, purposes=[FRAUD])
        token = (await client.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
        yield Served(operator, http, str(token))
    operator.close()


async def test_metrics_show_every_function_from_the_start(served: Served) -> None:
    text = await served.metrics()
    for kind in NetworkFunctionKind:
        assert sample(text, "ogsim_backend_seconds_count", function=kind.value) == 0
        for outcome in OUTCOMES:
            labels = {"function": kind.value, "outcome": outcome}
            assert sample(text, "ogsim_backend_calls_total", **labels) == 0
            assert (
                f'ogsim_backend_calls_total{{function="{kind.value}",outcome="{outcome}"}}' in text
            )


async def test_a_sim_swap_check_is_one_hlr_call_in_each_series(served: Served) -> None:
    assert (await served.check_sim_swap()).status_code == 200
    assert await served.backend() == {
        "seconds": 1,
        "service": 1,
        "service_sum": SERVICE,
        "calls": {"ok": 1},
    }
    for other in NetworkFunctionKind:
        if other is not HLR:
            assert (await served.backend(other.value))["seconds"] == 0


async def test_an_outage_and_an_error_rate_count_their_outcomes(served: Served) -> None:
    down = await served.http.put(f"/admin/faults/{FUNCTION}", json={"outage": True}, headers=ADMIN)
    assert down.status_code == 200
    assert (await served.check_sim_swap()).status_code == 503
    assert await served.backend() == {
        "seconds": 1,
        "service": 0,
        "service_sum": 0,
        "calls": {"outage": 1},
    }
    failing = await served.http.put(
        f"/admin/faults/{FUNCTION}", json={"error_rate": 1.0}, headers=ADMIN
    )
    assert failing.status_code == 200
    assert (await served.check_sim_swap()).status_code == 503
    assert await served.backend() == {
        "seconds": 2,
        "service": 1,
        "service_sum": SERVICE,
        "calls": {"outage": 1, "error": 1},
    }
