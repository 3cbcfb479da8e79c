"""Who trusts whom: a directed graph of explicit trust statements, revocable at run time.

Nodes are parties (operators, aggregators) and trust anchors. A ``trusts`` edge X → Y is a
statement by X; an ``endorses`` edge A → P says anchor A vouches for P. A relying party trusts
an issuer only when its own statements say so — directly, or through an anchor it names (one
hop: the anchor's endorsements, not the endorsed parties' own trust), or through a statement
marked ``transitive``. Trust never leaks further on its own: that A trusts B and B trusts C
says nothing about A and C. Revocations override every path, so a compromised party is cut
off on the next check without editing the statements. Pure object, no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import networkx as nx

from .config import FederationConfig


class NodeKind(StrEnum):
    OPERATOR = "operator"
    AGGREGATOR = "aggregator"
    ANCHOR = "anchor"


class EdgeKind(StrEnum):
    TRUSTS = "trusts"
    ENDORSES = "endorses"


@dataclass(frozen=True)
class TrustVerdict:
    """Whether ``relying_party`` trusts ``issuer`` now, the path that says so, and why."""

    relying_party: str
    issuer: str
    trusted: bool
    path: tuple[str, ...]
    reason: str


class UnknownPartyError(KeyError):
    """A party or anchor that is not in the graph."""


class TrustGraph:
    """Trust statements between parties and anchors, with run-time revocation."""

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        self._revoked_pairs: set[tuple[str, str]] = set()
        self._revoked_parties: set[str] = set()

    @classmethod
    def from_config(cls, federation: FederationConfig) -> TrustGraph:
        graph = cls()
        for operator in federation.operators:
            graph.add_party(operator.id, NodeKind.OPERATOR, issuer=operator.issuer_url)
        for aggregator in federation.aggregators:
            graph.add_party(aggregator.id, NodeKind.AGGREGATOR, issuer=aggregator.issuer)
        for anchor in federation.anchors:
            graph.add_party(anchor.id, NodeKind.ANCHOR)
        for anchor in federation.anchors:
            for member in anchor.endorses:
                graph.endorse(anchor.id, member)
        for statement in federation.trust:
            graph.state(statement.party, statement.trusts, transitive=statement.transitive)
        return graph

    # -- building -----------------------------------------------------------------------------

    def add_party(self, party: str, kind: NodeKind, *, issuer: str | None = None) -> None:
        self.graph.add_node(party, kind=kind, issuer=issuer.rstrip("/") if issuer else None)

    def state(self, party: str, trusted: str, *, transitive: bool = False) -> None:
        """Record ``party``'s statement that it trusts ``trusted`` (a party or an anchor)."""
        self._require(party, trusted)
        if self.kind(party) is NodeKind.ANCHOR:
            raise ValueError("anchors endorse; they do not state trust")
        self.graph.add_edge(party, trusted, kind=EdgeKind.TRUSTS, transitive=transitive)

    def endorse(self, anchor: str, member: str) -> None:
        self._require(anchor, member)
        if self.kind(anchor) is not NodeKind.ANCHOR:
            raise ValueError(f"{anchor} is not a trust anchor")
        self.graph.add_edge(anchor, member, kind=EdgeKind.ENDORSES, transitive=False)

    # -- revocation at run time ----------------------------------------------------------------

    def revoke(self, relying_party: str, issuer: str) -> None:
        """``relying_party`` stops trusting ``issuer`` by every path, from the next check."""
        self._require(relying_party, issuer)
        self._revoked_pairs.add((relying_party, issuer))

    def revoke_party(self, issuer: str) -> None:
        """Nobody trusts ``issuer`` any more (its keys leaked, it left the federation)."""
        self._require(issuer)
        self._revoked_parties.add(issuer)

    def reinstate(self, relying_party: str | None, issuer: str) -> None:
        """Undo :meth:`revoke` (with a relying party) or :meth:`revoke_party` (without)."""
        if relying_party is None:
            self._revoked_parties.discard(issuer)
        else:
            self._revoked_pairs.discard((relying_party, issuer))

    def set_revoked(self, relying_party: str, issuers: Iterable[str]) -> None:
        """Make ``issuers`` exactly those ``relying_party`` has revoked (as another process
        holding the same revocations says); unknown parties are left out."""
        known = set(self.graph)
        self._revoked_pairs = {pair for pair in self._revoked_pairs if pair[0] != relying_party}
        self._revoked_pairs |= {(relying_party, issuer) for issuer in issuers if issuer in known}

    def is_revoked(self, relying_party: str, issuer: str) -> bool:
        return issuer in self._revoked_parties or (relying_party, issuer) in self._revoked_pairs

    # -- questions -----------------------------------------------------------------------------

    def kind(self, node: str) -> NodeKind:
        self._require(node)
        return NodeKind(self.graph.nodes[node]["kind"])

    def issuer_url(self, party: str) -> str | None:
        self._require(party)
        value = self.graph.nodes[party].get("issuer")
        return str(value) if value else None

    def party_for_issuer(self, iss: str) -> str | None:
        """The party an assertion's ``iss`` names: its party id or its issuer URL."""
        if iss in self.graph and self.kind(iss) is not NodeKind.ANCHOR:
            return iss
        wanted = iss.rstrip("/")
        for node, data in self.graph.nodes(data=True):
            if data.get("issuer") == wanted:
                return str(node)
        return None

    def parties(self) -> list[str]:
        return [n for n, d in self.graph.nodes(data=True) if d["kind"] is not NodeKind.ANCHOR]

    def trusts(self, relying_party: str, issuer: str) -> bool:
        return self.explain(relying_party, issuer).trusted

    def trusted_by(self, relying_party: str) -> list[str]:
        """Every party ``relying_party`` trusts now, sorted."""
        return sorted(p for p in self.parties()
                      if p != relying_party and self.trusts(relying_party, p))

    def explain(self, relying_party: str, issuer: str) -> TrustVerdict:
        """The verdict with the path behind it, for logs and the demo."""
        if relying_party not in self.graph or issuer not in self.graph:
            return TrustVerdict(relying_party, issuer, False, (), "unknown party")
        if self.kind(issuer) is NodeKind.ANCHOR:
            return TrustVerdict(relying_party, issuer, False, (), "an anchor issues nothing")
        if issuer in self._revoked_parties:
            return TrustVerdict(relying_party, issuer, False, (),
                                f"{issuer} is revoked for the whole federation")
        if (relying_party, issuer) in self._revoked_pairs:
            return TrustVerdict(relying_party, issuer, False, (),
                                f"{relying_party} revoked its trust in {issuer}")
        path = self._find(relying_party, issuer, visited=frozenset({relying_party}))
        if path is None:
            return TrustVerdict(relying_party, issuer, False, (),
                                f"no trust statement of {relying_party} leads to {issuer}")
        return TrustVerdict(relying_party, issuer, True, path, _describe(path, self))

    def paths(self, relying_party: str, issuer: str) -> list[tuple[str, ...]]:
        """Every statement path that would make ``relying_party`` trust ``issuer``."""
        found: list[tuple[str, ...]] = []
        self._collect(relying_party, issuer, (relying_party,), found)
        return found

    # -- private -------------------------------------------------------------------------------

    def _find(self, party: str, issuer: str, visited: frozenset[str]) -> tuple[str, ...] | None:
        found: list[tuple[str, ...]] = []
        self._collect(party, issuer, (party,), found, visited=visited, first=True)
        return found[0] if found else None

    def _collect(
        self,
        party: str,
        issuer: str,
        prefix: tuple[str, ...],
        found: list[tuple[str, ...]],
        *,
        visited: frozenset[str] | None = None,
        first: bool = False,
    ) -> None:
        """Depth-first over ``party``'s own statements; ``first`` stops at the first path."""
        seen = visited if visited is not None else frozenset(prefix)
        for _, target, data in self._statements(party):
            if first and found:
                return
            if target == issuer:
                found.append((*prefix, target))
                continue
            if (self.kind(target) is NodeKind.ANCHOR and self.graph.has_edge(target, issuer)
                    and not self._revoked_hop(party, target)):
                found.append((*prefix, target, issuer))
                continue
            if data["transitive"] and target not in seen and not self._revoked_hop(party, target):
                self._collect(target, issuer, (*prefix, target), found,
                              visited=seen | {target}, first=first)

    def _revoked_hop(self, party: str, target: str) -> bool:
        return self.is_revoked(party, target)

    def _statements(self, party: str) -> Iterable[tuple[str, str, dict[str, object]]]:
        return [(u, v, d) for u, v, d in self.graph.out_edges(party, data=True)
                if d["kind"] is EdgeKind.TRUSTS]

    def _require(self, *nodes: str) -> None:
        for node in nodes:
            if node not in self.graph:
                raise UnknownPartyError(node)


def _describe(path: tuple[str, ...], graph: TrustGraph) -> str:
    if len(path) == 2:
        return f"{path[0]} trusts {path[1]} directly"
    steps = []
    for node in path[1:-1]:
        steps.append(f"anchor {node}" if graph.kind(node) is NodeKind.ANCHOR
                     else f"{node} (transitive)")
    return f"{path[0]} trusts {path[-1]} via " + ", ".join(steps)
