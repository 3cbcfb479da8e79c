"""The federation's own objects decide in the simulation: balancer, Telco Finder, trust.

Each simulated decision is recorded with its virtual time and replayed on a fresh live
object driven by a hand-moved clock (the global load balancer), or compared with the live
finder run on its event loop (operator discovery), or read off the trust graph itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from federation.config import DataCentre
from federation.global_load_balancer import GlobalLoadBalancer, HealthPolicy, HealthTracker
from federation.telco_finder import SearchRequest, TelcoFinder
from federation.telco_routing import build_routing_table
from operators.config_file import ConfigFileError
from sim.engine import World
from sim.report import settlement
from sim.scenario import load_scenario

from ...builds import skip_if_compiled
from .conftest import SCENARIOS


class HandClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_global_load_balancer_decides_the_same_in_the_simulation_and_live() -> None:
    (scenario,) = load_scenario(
        SCENARIOS / "dc_failover.yaml",
        duration=60,
        overrides={"faults.0.at": 20, "faults.0.duration": 20},
    )
    world = World(scenario)
    balancer = world.operators["telco-es"].balancer
    skip_if_compiled(GlobalLoadBalancer, "pick")
    log: list[tuple[float, str, Any, Any]] = []
    for name in ("pick", "record_check"):
        real = getattr(balancer, name)

        def wrapper(*args: Any, _real: Any = real, _name: str = name) -> Any:
            answer = _real(*args)
            log.append((world.env.now, _name, args, answer))
            return answer

        setattr(balancer, name, wrapper)
    result = world.run()
    assert [(dc, up) for _, _, dc, up in result.balancer_changes] == [
        ("mad-1", False),
        ("mad-1", True),
    ]

    clock = HandClock()
    check = scenario.topology.operators["telco-es"].health_check
    live = GlobalLoadBalancer(
        "telco-es",
        HealthTracker(
            [DataCentre(name="mad-1"), DataCentre(name="bcn-1")],
            clock=clock,
            policy=HealthPolicy(check.interval, check.unhealthy_threshold, check.healthy_threshold),
        ),
    )
    picks = 0
    for at, name, args, answer in log:
        clock.now = at
        assert getattr(live, name)(*args) == answer, (at, name)
        picks += name == "pick"
    assert picks > 1000
    assert live.health.transitions == balancer.health.transitions


CROSS = SCENARIOS / "research" / "cross_operator.yaml"
TRUST = 1
"""The index of the trust revocation among the scenario's faults (the partition is 0)."""


def test_aggregator_routes_as_the_live_telco_finder() -> None:
    (scenario,) = load_scenario(CROSS, duration=5)
    world = World(scenario)
    aggregator = world.aggregator
    assert aggregator is not None
    federation = aggregator.finder.plan.federation
    register = aggregator.register

    async def network_id(number: str) -> str | None:
        holder = register.current(number)
        return holder.network if holder else None

    async def no_brands(url: str, request: SearchRequest) -> None:
        return None

    live = TelcoFinder.for_federation(
        federation,
        {op.id: build_routing_table(op, federation) for op in federation.operators},
        network_id={"ES": network_id},
        second_level=no_brands,
    )

    async def search(number: str, mode: str) -> str:
        request = SearchRequest.model_validate(
            {"target": {"phoneNumber": number}, "portabilitySearchMode": mode}
        )
        return (await live.search(request)).operator_id

    lines = [line for op in world.operators.values() for line in op.lines]
    ported = list(register.ported())
    # A tenth of telco-es's numbers are on movil-es now, a twentieth of movil-es's on telco-es.
    assert {aggregator.serving(number) for number in ported} == {"movil-es", "telco-es"}
    for line in lines:
        shallow = asyncio.run(search(line.number, "SHALLOW"))
        assert aggregator.find(line.number, "SHALLOW") == shallow, line.number
    for number in ported:
        deep = asyncio.run(search(number, "DEEP"))
        assert deep == aggregator.serving(number)
        assert aggregator.find(number, "DEEP") == deep
        # The DEEP search refreshed both finders' records: SHALLOW now finds it too.
        assert aggregator.find(number, "SHALLOW") == asyncio.run(search(number, "SHALLOW"))


CONTRACT = {
    "traffic.applications.marketplace.purpose": "dpv:RequestedServiceProvision",
    "traffic.applications.bank.purpose": "dpv:RequestedServiceProvision",
}
"""Calls under contract: no subscriber's objection refuses a call, so every refusal is the
fault's (with the scenario's fraud-prevention purpose, 3 % of subscribers object)."""


def test_ported_numbers_are_served_by_their_new_operator() -> None:
    (scenario,) = load_scenario(
        CROSS, duration=60, overrides={**CONTRACT, "faults": [], "expectations": []}
    )
    world = World(scenario)
    result = world.run()
    aggregator = world.aggregator
    assert aggregator is not None
    synced = aggregator.finder.plan.federation.ports
    unsynced = [number for number in aggregator.register.ported() if number not in synced]
    assert unsynced
    # Each number the finder had not synced cost one wrong hop and one DEEP search, once.
    assert result.discovery["moved"] == result.discovery["DEEP"] <= len(unsynced)
    assert result.discovery["DEEP"] > 0
    movil = sum(
        s.offered
        for (op, _, app), s in result.keys.items()
        if op == "movil-es" and app == "marketplace"
    )
    telco = sum(
        s.offered
        for (op, _, app), s in result.keys.items()
        if op == "telco-es" and app == "marketplace"
    )
    # movil-es: 0.25 + 0.05 ported in - 0.0125 ported out; telco-es: 0.5 - 0.05 + 0.0125.
    assert 0.5 < movil / telco < 0.75
    assert result.totals()["availability"] > 0.999


def test_trust_revocation_goes_through_the_trust_graph() -> None:
    (scenario,) = load_scenario(
        CROSS,
        duration=40,
        overrides={
            **CONTRACT,
            f"faults.{TRUST}.at": 10,
            f"faults.{TRUST}.duration": 15,
            "expectations": [],
        },
    )
    world = World(scenario)
    seen: list[tuple[float, bool]] = []

    def probe() -> Any:
        while True:
            seen.append((world.env.now, world.trust.trusts("movil-es", "aggregator")))
            yield world.env.timeout(5)

    world.env.process(probe())
    result = world.run()
    assert [trusted for at, trusted in seen if 10 < at < 25] == [False, False]
    assert all(trusted for at, trusted in seen if at < 10 or at > 25)
    # A valid token of a party no longer trusted: 403 PERMISSION_DENIED, as live.
    refused = [row["t"] for row in result.rows if row.get("errors.PERMISSION_DENIED", 0)]
    assert refused and min(refused) > 10 and max(refused) <= 26
    assert world.operators["telco-es"].trusts_aggregator


def test_ports_are_checked_against_the_topology(tmp_path: Path) -> None:
    text = CROSS.read_text(encoding="utf-8").replace(
        "- {donor: telco-es, recipient: movil-es", "- {donor: telco-es, recipient: telco-pt"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as caught:
        load_scenario(path)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "recipient: telco-pt" in row)
    assert f"{path}:{line}: topology.ports.0.recipient: numbers port within a country" in str(
        caught.value
    )


def test_ported_share_is_routed_and_settled_per_operator_pair() -> None:
    (scenario,) = load_scenario(
        CROSS, duration=60, overrides={**CONTRACT, "faults": [], "expectations": []}
    )
    world = World(scenario)
    result = world.run()
    aggregator = world.aggregator
    assert aggregator is not None
    home = {line.number: op.id for op in world.operators.values() for line in op.lines}
    moved = {number: aggregator.serving(number) for number in aggregator.register.ported()}
    # Every ported number's calls count for the operator serving it now, and are settled
    # home -> serving besides aggregator -> serving.
    pairs = {(home[number], serving) for number, serving in moved.items()}
    assert (
        {(h, s) for h, s, _ in result.ported}
        == pairs
        == {
            ("telco-es", "movil-es"),
            ("movil-es", "telco-es"),
        }
    )
    records = settlement(result)
    ported = {(r["from"], r["to"]): r for r in records if r["kind"] == "ported"}
    via = {r["to"]: r for r in records if r["kind"] == "aggregator"}
    assert set(ported) == pairs
    assert set(via) == {"telco-es", "movil-es", "telco-pt"}
    for (_donor, recipient), record in ported.items():
        assert 0 < record["billable_calls"] <= record["operations"]
        assert record["operations"] < via[recipient]["operations"]
        assert record["application"] == "marketplace"
    # No fault: every operation succeeded, so every one is billable, ported or not.
    assert all(r["billable_calls"] == r["operations"] for r in records)
    # The ported operations are about the ported share of the donor's numbers.
    es_to_movil = ported["telco-es", "movil-es"]["operations"]
    marketplace = sum(r["operations"] for r in via.values())
    share = sum(1 for n, s in moved.items() if s == "movil-es") / len(
        world.operators["telco-es"].lines
    )
    assert es_to_movil == pytest.approx(marketplace * 0.5 * share, rel=0.15)
