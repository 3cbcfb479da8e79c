"""The Telco Finder resolver as a plain object: cache lifetime, missing Network Id service."""

from __future__ import annotations

import pytest

from federation.config import PORTED_NUMBER, FederationConfig
from federation.telco_finder import SearchAnswer, SearchRequest, TelcoFinder
from federation.telco_routing import build_routing_table
from operators.errors import CamaraError

from .conftest import FakeClock


def finder(
    federation: FederationConfig, clock: FakeClock, cache_ttl: float | None = None
) -> TelcoFinder:
    tables = {o.id: build_routing_table(o, federation) for o in federation.operators}

    async def second_level(url: str, request: SearchRequest) -> SearchAnswer | None:
        return SearchAnswer("telco-gb")

    return TelcoFinder.for_federation(federation, tables, network_id={},
                                      second_level=second_level, clock=clock,
                                      cache_ttl=cache_ttl)


def search(number: str, mode: str = "SHALLOW") -> SearchRequest:
    return SearchRequest.model_validate(
        {"target": {"phoneNumber": number}, "portabilitySearchMode": mode})


async def test_cached_port_expires_after_the_ttl(
    federation: FederationConfig, clock: FakeClock
) -> None:
    tf = finder(federation, clock, cache_ttl=3600)
    assert (await tf.search(search(PORTED_NUMBER))).operator_id == "telco-es"
    clock.advance(3601)
    with pytest.raises(CamaraError) as raised:  # back to the range holder: Red Azul
        await tf.search(search(PORTED_NUMBER))
    assert raised.value.status == 404


async def test_deep_without_a_network_id_service_is_unavailable(
    federation: FederationConfig, clock: FakeClock
) -> None:
    tf = finder(federation, clock)
    with pytest.raises(CamaraError) as raised:
        await tf.search(search(PORTED_NUMBER, "DEEP"))
    assert (raised.value.status, raised.value.code) == (503, "UNAVAILABLE")
