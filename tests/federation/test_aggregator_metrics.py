"""The hub's own metrics at ``GET /metrics``: every hub CAMARA call and each hop it passed.

``ogsim calibrate`` scrapes exactly these names and labels, so the tests read them from the
real aggregator app's exposition, as a scraper would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from federation.config import BRAND_NUMBER, FederationConfig
from federation.federation import Federation, quick_consent, start_federation

FRAUD = "dpv:FraudPreventionAndDetection"
REQUEST = "ogsim_aggregator_request_seconds"
HOP = "ogsim_aggregator_hop_seconds"


@dataclass
class Hub:
    fed: Federation
    token: str

    @property
    def url(self) -> str:
        return self.fed.aggregator.api_root

    async def check(self, number: str, token: str | None = None) -> httpx.Response:
        return await self.fed.http.post(
            f"{self.url}/sim-swap/v2/check",
            json={"phoneNumber": number, "maxAge": 24},
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    async def counts(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Each histogram series' observation count, read from an unauthenticated scrape."""
        response = await self.fed.http.get(f"{self.url}/metrics")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    labels = tuple(sorted(sample.labels.items()))
                    found[(sample.name.removesuffix("_count"), labels)] = sample.value
        return found


def call(api: str, operation: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (REQUEST, (("api", api), ("operation", operation)))


def hop(stage: str, operator: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (HOP, (("operator", operator), ("stage", stage)))


@pytest.fixture
async def hub(federation: FederationConfig, tmp_path: Path) -> AsyncIterator[Hub]:
    fed = await start_federation(quick_consent(federation), tmp_path, probes=False)
    app = await fed.register_application("app", "sim-swap:check", [FRAUD])
    token = (await app.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    yield Hub(fed, token)
    await fed.stop()


async def test_a_served_call_is_one_observation_in_each_series_it_passed(hub: Hub) -> None:
    assert await hub.counts() == {}  # nothing observed before the first call
    number = hub.fed.operator("telco-fr").subscribers.test_number("approves")
    response = await hub.check(number)
    assert response.status_code == 200, response.text
    assert await hub.counts() == {
        call("sim-swap", "checkSimSwap"): 1,
        hop("finder", ""): 1,
        hop("token", "telco-fr"): 1,
        hop("forward", "telco-fr"): 1,
    }
    assert (await hub.check(number)).status_code == 200  # the operator's token now cached
    counts = await hub.counts()
    assert counts[call("sim-swap", "checkSimSwap")] == 2
    assert counts[hop("token", "telco-fr")] == 2  # a cached token is still the token stage
    assert counts[hop("forward", "telco-fr")] == 2


async def test_a_brand_found_at_the_second_level_is_one_finder_search(hub: Hub) -> None:
    """The search at telco-gb's second-level finder is inside the hub's one search."""
    assert (await hub.check(BRAND_NUMBER)).status_code == 200
    counts = await hub.counts()
    assert counts[hop("finder", "")] == 1
    assert counts[hop("forward", "telco-gb")] == 1


async def test_refused_calls_are_observed_with_the_hops_they_passed(hub: Hub) -> None:
    # the identity server, the portal and the scrape itself are not hub CAMARA calls
    await hub.fed.http.get(f"{hub.url}/health")
    await hub.fed.http.get(f"{hub.url}/metrics")
    await hub.fed.http.get(f"{hub.url}/no-such-api/v1/thing")
    assert await hub.counts() == {}
    refused = await hub.check("+34600000001", token="not-a-token")
    assert refused.status_code == 401
    assert await hub.counts() == {call("sim-swap", "checkSimSwap"): 1}  # refused at the door
    unserved = await hub.check("+99900000001")
    assert unserved.status_code == 404, unserved.text
    counts = await hub.counts()
    assert counts[call("sim-swap", "checkSimSwap")] == 2
    assert counts[hop("finder", "")] >= 1  # SHALLOW, and DEEP where the country ports
    assert not any(key[1][0] == ("operator", "telco-es") for key in counts)


async def test_metrics_answers_other_methods_with_a_camara_405(hub: Hub) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = await hub.fed.http.request(method, f"{hub.url}/metrics", content=b"garbage")
        assert response.status_code == 405, (method, response.text)
        assert response.json()["status"] == 405
