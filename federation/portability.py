"""Who serves a number now: national numbering plans and the ports that override them.

:class:`NumberingPlan` is what every party may know without asking anyone: which network each
number range was given to. :class:`PortabilityDatabase` is the national register of ports
(the source a Network Id service answers from): a number ported to another network of the
same country is served by that network from the moment the port is recorded.
:func:`apply_ports` tells the operators' subscriber bases, so the receiving operator knows
its new subscriber and the donor knows it left. Pure objects apart from that last function.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from operators import ChangeKind, Operator

from .config import FederationConfig
from .types import Clock, NetworkId


@dataclass(frozen=True)
class Holder:
    """A network (member operator or not) and its MCC+MNC."""

    party: str
    network: NetworkId
    country: str


class NumberingPlan:
    """Number ranges to networks, per country, from the federation config (ports ignored)."""

    def __init__(self, federation: FederationConfig) -> None:
        self.federation = federation
        self._ranges: list[tuple[str, Holder]] = sorted(
            ((prefix, Holder(party, network, country.code))
             for country in federation.countries
             for party, network, ranges in federation.networks_of(country.code)
             for prefix in ranges),
            key=lambda row: -len(row[0]),
        )

    def holder(self, number: str) -> Holder | None:
        """The network a number's range belongs to (longest prefix)."""
        return next((h for prefix, h in self._ranges if number.startswith(prefix)), None)

    def country_of(self, number: str) -> str | None:
        """The country by calling code (longest), even for a number in no known range."""
        codes = sorted(self.federation.countries, key=lambda c: -len(c.calling_code))
        return next((c.code for c in codes if number.startswith(c.calling_code)), None)

    def portable(self, number: str) -> bool:
        country = self.country_of(number)
        return country is not None and self.federation.country(country).portability


class PortError(ValueError):
    """A port the numbering rules forbid (another country, no portability, unknown network)."""


class PortabilityDatabase:
    """The register of ported numbers, seeded from the config, changed by ports at run time."""

    def __init__(self, federation: FederationConfig, *, clock: Clock = time.time) -> None:
        self.plan = NumberingPlan(federation)
        self.federation = federation
        self.clock = clock
        self._ports: dict[str, tuple[Holder, float]] = {}
        for number, party in federation.ports.items():
            self._ports[number] = (self._holder_of(party), clock())

    def _holder_of(self, party: str) -> Holder:
        network = self.federation.network_of_party(party)
        country = self.federation.country_of_party(party)
        if network is None or country is None:
            raise PortError(f"{party!r} is not a network of the federation's countries")
        return Holder(party, network, country)

    def port(self, number: str, to_party: str) -> Holder:
        """Record that ``number`` is now served by ``to_party``; effective at once."""
        donor = self.current(number)
        if donor is None:
            raise PortError(f"{number} is in no known number range")
        target = self._holder_of(to_party)
        if target.country != donor.country:
            raise PortError(f"{number} cannot port from {donor.country} to {target.country}")
        if not self.federation.country(target.country).portability:
            raise PortError(f"{target.country} has no number portability")
        self._ports[number] = (target, self.clock())
        return target

    def current(self, number: str) -> Holder | None:
        """The network serving ``number`` now: the last port, else the range holder."""
        ported = self._ports.get(number)
        return ported[0] if ported else self.plan.holder(number)

    def ported(self) -> dict[str, str]:
        return {number: holder.party for number, (holder, _) in self._ports.items()}


def record_port(
    number: str, donor: str | None, target: str, operators: Mapping[str, Operator]
) -> None:
    """Tell the member operators a port concerns: ``PORT_OUT`` at the donor, ``PORT_IN`` at
    the receiver (it now has that subscriber). Non-members are not told."""
    if donor == target:
        return
    if donor is not None and donor in operators:
        operators[donor].subscribers.record_change(
            number, ChangeKind.PORT_OUT, {"operator": target})
    if target in operators:
        operators[target].subscribers.record_change(
            number, ChangeKind.PORT_IN, {"from": donor or "unknown"})


def apply_ports(
    ports: Mapping[str, str], federation: FederationConfig, operators: Mapping[str, Operator]
) -> None:
    """Record the configured ports (from each number's range holder) at the operators."""
    plan = NumberingPlan(federation)
    for number, target in ports.items():
        holder = plan.holder(number)
        record_port(number, holder.party if holder else None, target, operators)


def port_number(
    database: PortabilityDatabase, number: str, to_party: str,
    operators: Mapping[str, Operator],
) -> Holder:
    """A port at run time: the national register first, then the operators concerned."""
    before = database.current(number)
    target = database.port(number, to_party)
    record_port(number, before.party if before else None, to_party, operators)
    return target
