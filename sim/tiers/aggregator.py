"""The aggregator in virtual time: the federation's Telco Finder decides where a call goes.

The scenario's topology becomes a :class:`~federation.config.FederationConfig` (operators,
countries with their calling codes and portability, an aggregator, the ports the finder has
synced), each operator publishes its :func:`~federation.telco_routing.build_routing_table`,
and a country's :class:`~federation.network_id.NetworkIdService` answers ``DEEP`` searches
from the national :class:`~federation.portability.PortabilityDatabase`, which also holds the
ports the finder has not heard of. :class:`SimAggregator` then does what the live aggregator
does per call: search ``SHALLOW``; ask the operator found for a token about the subscriber
(404 when it no longer serves them); forward; and search again ``DEEP`` when
:func:`~federation.discovery_fallback.next_search` says so (the finder found nobody, the
token request or the API answered 404 for the number).

The finder is the live object; its lookups answer at once, so each search is run to its end
without an event loop. Its answers are memoised per number and mode: they depend only on
its tables, its records and the register, which change in a run only by its own ``DEEP``
searches (after which the number's ``SHALLOW`` answer is asked again). No cache lifetime is
set, so time does not enter its answers.

The hub's own work (the search, the operator's token, the forwarding) costs no time unless
the topology has an ``aggregator`` station (:class:`~sim.scenario.AggregatorSpec`): then
each hub call first holds one of its workers for a drawn service time, queueing in order
when all are busy, and is routed when that time is over.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import simpy

from federation import (
    FIRST_SEARCH,
    AggregatorConfig,
    CountryConfig,
    DataCentre,
    FederatedOperator,
    FederationConfig,
    NetworkId,
    NetworkIdService,
    PortabilityDatabase,
    SearchAnswer,
    SearchMode,
    SearchRequest,
    Stale,
    TelcoFinder,
    build_routing_table,
    next_search,
    stale_signal,
)
from operators import CamaraError
from sim.scenario import KNOWN_CALLING_CODES, AggregatorSpec, TopologySpec
from sim.tiers.operator import AGGREGATOR, Answer, Client, Line, Reply, SimOperator
from sim.tiers.station import Station
from sim.tiers.timers import Timer, call_later

__all__ = ["SimAggregator", "calling_code", "federation_config", "port_lines"]


def _run_value(timer: Timer) -> None:
    timer.value()


T = TypeVar("T")

NOT_FOUND = Answer(404, "IDENTIFIER_NOT_FOUND")
"""Nobody in the federation serves the number (the live aggregator's answer, too)."""


def calling_code(topology: TopologySpec, country: str) -> str | None:
    """The calling code of ``country``: the scenario's own entry, else the known table."""
    spec = topology.countries.get(country)
    return spec.calling_code if spec is not None else KNOWN_CALLING_CODES.get(country)


def port_lines(
    topology: TopologySpec, operators: dict[str, SimOperator], seed: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Which numbers each port moves: ``(synced, unsynced)``, both ``number -> recipient``.

    A port's share of the donor's lines is drawn from its own stream, and so is which of them
    the finder has synced, so the same seed ports the same numbers.
    """
    synced: dict[str, str] = {}
    unsynced: dict[str, str] = {}
    for index, port in enumerate(topology.ports):
        rng = random.Random(f"{seed}:ports:{index}")
        for line in operators[port.donor].lines:
            if line.number in synced or line.number in unsynced or rng.random() >= port.share:
                continue
            target = synced if rng.random() < port.synced else unsynced
            target[line.number] = port.recipient
    return synced, unsynced


def federation_config(
    topology: TopologySpec, operators: dict[str, SimOperator], synced: dict[str, str]
) -> FederationConfig:
    """The federation the scenario describes, with one aggregator serving every country."""
    countries = sorted({op.config.country for op in operators.values()})
    country_configs = []
    for code in countries:
        spec = topology.countries.get(code)
        portable = spec is not None and spec.portability
        prefix = calling_code(topology, code)
        assert prefix is not None, "the scenario's cross-check names countries without one"
        country_configs.append(
            CountryConfig(
                code=code,
                calling_code=prefix,
                portability=portable,
                # never dialled (the simulated finder asks the Network Id in process); .invalid
                # never resolves, and https passes the rule a live federation file is held to
                network_id_url=(f"https://network-id.{code.lower()}.sim.invalid"
                                if portable else None),
            )
        )
    members = tuple(
        FederatedOperator(
            **op.config.model_dump(),
            data_centres=tuple(
                DataCentre(name=name, weight=dc.weight) for name, dc in op.spec.data_centres.items()
            ),
            core=op.spec.core,
            protection=op.spec.policies.guard_settings(),
        )
        for op in operators.values()
    )
    return FederationConfig(
        name="scenario",
        operators=members,
        aggregators=(
            AggregatorConfig(
                id=AGGREGATOR,
                display_name="Aggregator",
                issuer="https://aggregator.ogsim.test/oauth",
                countries=tuple(countries),
            ),
        ),
        countries=tuple(country_configs),
        ports=synced,
    )


def _settle(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine whose awaits all answer at once, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("the Telco Finder waited for I/O inside the simulation")


def _network_id(
    service: NetworkIdService,
) -> Callable[[str], Coroutine[Any, Any, NetworkId | None]]:
    async def lookup(number: str) -> NetworkId | None:
        return service.resolve(number)

    return lookup


async def _no_second_level(url: str, request: SearchRequest) -> SearchAnswer | None:
    return None  # scenario operators have no brands, so no rule is dynamic


class SimAggregator:
    """Finds the serving operator with the live Telco Finder and forwards calls to it."""

    def __init__(
        self,
        env: simpy.Environment,
        federation: FederationConfig,
        register: PortabilityDatabase,
        operators: dict[str, SimOperator],
        partitioned: Callable[[str, str, bool], bool],
        station: AggregatorSpec | None = None,
        seed: str = "",
    ) -> None:
        self.env = env
        self.operators = operators
        self.partitioned = partitioned
        self.register = register
        tables = {op.id: build_routing_table(op, federation) for op in federation.operators}
        network_id = {
            country.code: _network_id(NetworkIdService(country.code, register))
            for country in federation.countries
            if country.portability
        }
        self.finder = TelcoFinder.for_federation(
            federation,
            tables,
            network_id=network_id,
            second_level=_no_second_level,
            clock=lambda: env.now,
        )
        self._answers: dict[tuple[str, SearchMode], str | None] = {}
        self.searches: Counter[str] = Counter()
        """Searches the finder ran, by mode, and forwards that found a number had moved."""
        self.station: Station | None = None
        """The hub's workers, when its processing costs time (None: it costs none)."""
        self._hub_waits: Callable[[], float] | None = None
        """Draws a hub call's waits outside the hub's loop (None: it has none)."""
        if station is not None:
            self.station = Station(env, station.replicas * station.workers)
            self._hub_time = partial(
                station.service_time.sampler(), random.Random(f"{seed}:aggregator:station")
            )
            if station.waits is not None:
                self._hub_waits = partial(
                    station.waits.sampler(), random.Random(f"{seed}:aggregator:waits")
                )

    def serving(self, number: str) -> str | None:
        """The operator serving ``number`` now, by the national register (for metrics keys)."""
        holder = self.register.current(number)
        return holder.party if holder is not None else None

    def find(self, number: str, mode: SearchMode) -> str | None:
        """The finder's answer for ``number`` (None: nobody in the federation serves it)."""
        key = (number, mode)
        if key in self._answers:
            return self._answers[key]
        self.searches[mode] += 1
        request = SearchRequest.model_validate(
            {"target": {"phoneNumber": number}, "portabilitySearchMode": mode}
        )
        try:
            found: str | None = _settle(self.finder.search(request)).operator_id
        except CamaraError:
            found = None
        self._answers[key] = found
        if mode == "DEEP":
            self._answers.pop((number, "SHALLOW"), None)  # the search refreshed its records
        return found

    def handle(self, client: Client, api: str, line: Line, reply: Reply) -> None:
        """One call of ``client`` through the aggregator, ``SHALLOW`` then maybe ``DEEP``:
        at once, or after its turn at the hub's workers and its service time there."""
        station = self.station
        if station is None:
            self._forward(client, api, line, reply, FIRST_SEARCH)
            return
        forward = partial(self._forward, client, api, line, reply, FIRST_SEARCH)
        if self._hub_waits is None:
            station.serve(self._hub_time(), forward)
        else:
            station.serve(self._hub_time(), partial(self._wait, forward))

    def _wait(self, forward: Callable[[], None]) -> None:
        """After the hub's work, the call's waits on the network; the worker is free."""
        assert self._hub_waits is not None
        call_later(self.env, self._hub_waits(), _run_value, forward)

    def _forward(
        self, client: Client, api: str, line: Line, reply: Reply, mode: SearchMode
    ) -> None:
        operator_id = self.find(line.number, mode)
        if operator_id is None:
            again = next_search(mode, stale_signal(Stale.FINDER, 404), phone_number=True)
            if again is not None:
                self._forward(client, api, line, reply, again)
            else:
                reply(NOT_FOUND)
            return
        if self.partitioned(AGGREGATOR, operator_id, False):
            return  # blackholed: the client's timeout answers
        operator = self.operators[operator_id]
        if not operator.knows(line.number):
            # The operator's token endpoint refuses a subscriber it does not serve (404).
            again = next_search(mode, stale_signal(Stale.TOKEN, 404), phone_number=True)
            if again is not None:
                self.searches["moved"] += 1
                self._forward(client, api, line, reply, again)
            else:
                reply(NOT_FOUND)
            return

        def answered(answer: Answer) -> None:
            signal = stale_signal(Stale.API, answer.status, answer.code)
            again = next_search(mode, signal, phone_number=True)
            if again is not None:
                self.searches["moved"] += 1
                self._forward(client, api, line, reply, again)
            else:
                reply(answer)

        operator.handle(client, api, line, True, answered)
