"""The fault timeline: each scenario fault switched on at its time and off at its end.

Backend faults go through the network core's own
:class:`~sim.tiers.fault_change.FaultChange` timeline, so a function's faults change
exactly as the core tests exercise them. A trust revocation is
the federation's own :meth:`~federation.trust.TrustGraph.revoke` (and ``reinstate`` at its
end); each operator then asks the graph again whether it trusts the aggregator. The other
faults flip state on the simulated operator (a data centre's power, the identity server) or
on the world (partitions between two parties).

A consent revocation wave is planned at once on each operator it names
(:meth:`~sim.tiers.consent.ConsentReplicas.schedule`): the lines ranked below the wave's
share, the same lines every time, are revoked in one data centre and replicated to the others
after the wave's lag; the gateway of each data centre refuses by its own view.

A replica failure kills gateway replicas of a data centre at its time; the data centre's
:class:`~sim.tiers.gateway_pool.GatewayPool` heals them (nothing switches back at an end).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from operators.core import NetworkFunctionKind
from sim.scenario import (
    BackendFault,
    ConsentRevocation,
    DataCentreDown,
    FaultSpec,
    IdentityOutage,
    Partition,
    ReplicaFailure,
    TrustRevocation,
)
from sim.tiers.fault_change import FaultChange
from sim.tiers.gateway_pool import GatewayPool
from sim.tiers.operator import SimOperator

__all__ = ["Partitions", "schedule_faults"]


class Partitions:
    """Which pairs of parties cannot reach each other right now."""

    def __init__(self) -> None:
        self._cut: dict[frozenset[str], int] = {}

    def cut(self, a: str, b: str, on: bool) -> None:
        """Start (``on``) or end one partition between ``a`` and ``b`` (they may overlap)."""
        pair = frozenset((a, b))
        count = self._cut.get(pair, 0) + (1 if on else -1)
        if count > 0:
            self._cut[pair] = count
        else:
            self._cut.pop(pair, None)

    def __call__(self, application: str, operator: str, via_aggregator: bool) -> bool:
        """Whether a call from ``application`` to ``operator`` is blackholed."""
        if not self._cut:
            return False
        cut = self._cut
        if via_aggregator:
            return (
                frozenset((application, "aggregator")) in cut
                or frozenset(("aggregator", operator)) in cut
            )
        return frozenset((application, operator)) in cut


def _toggle(
    env: simpy.Environment, fault: FaultSpec, switch: Callable[[bool], None]
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(fault.at)
    switch(True)
    if fault.duration is not None:
        yield env.timeout(fault.duration)
        switch(False)


def _kill(
    env: simpy.Environment, at: float, pool: GatewayPool, count: int
) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(at)
    pool.fail(count)


def schedule_faults(
    env: simpy.Environment,
    faults: tuple[FaultSpec, ...],
    operators: dict[str, SimOperator],
    partitions: Partitions,
) -> None:
    """Start one process per fault (backend faults: the core's own timeline)."""
    for index, fault in enumerate(faults):
        switch: Callable[[bool], None]
        if isinstance(fault, BackendFault):
            nf = operators[fault.operator].core[NetworkFunctionKind(fault.function)]
            changes = [FaultChange(at=fault.at, faults=fault.faults)]
            if fault.duration is not None:
                changes.append(FaultChange(at=fault.end, faults=nf.spec.faults))
            nf.schedule_faults(changes)
            continue
        if isinstance(fault, DataCentreDown):
            dc = operators[fault.operator].data_centres[fault.data_centre]

            def switch(on: bool, dc: Any = dc) -> None:
                dc.up = not on

        elif isinstance(fault, IdentityOutage):
            op = operators[fault.operator]

            def switch(on: bool, op: SimOperator = op) -> None:
                op.identity_down = on

        elif isinstance(fault, TrustRevocation):
            op = operators[fault.operator]

            def switch(on: bool, op: SimOperator = op, issuer: str = fault.issuer) -> None:
                if on:
                    op.trust.revoke(op.id, issuer)
                else:
                    op.trust.reinstate(op.id, issuer)
                op.refresh_trust()

        elif isinstance(fault, ConsentRevocation):
            targets = [operators[fault.operator]] if fault.operator else list(operators.values())
            for op in targets:
                op.consent.schedule(
                    fault.name or f"fault{index}",
                    [(line.number, line.rank) for line in op.lines],
                    share=fault.share,
                    at=fault.at,
                    spread=fault.spread,
                    replication_lag=fault.replication_lag,
                    end=fault.end,
                    data_centre=fault.data_centre,
                )
            continue
        elif isinstance(fault, ReplicaFailure):
            pool = operators[fault.operator].data_centres[fault.data_centre].pool
            env.process(_kill(env, fault.at, pool, fault.replicas))
            continue
        elif isinstance(fault, Partition):
            a, b = fault.between

            def switch(on: bool, a: str = a, b: str = b) -> None:
                partitions.cut(a, b, on)

        else:  # pragma: no cover - the union is exhaustive
            raise TypeError(f"unknown fault {fault!r}")
        env.process(_toggle(env, fault, switch))
