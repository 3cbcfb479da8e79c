"""The trust graph: direct trust, trust through a named anchor, no accidental transitivity,
revocation at run time."""

from __future__ import annotations

import pytest

from federation.config import FederationConfig, TrustStatement
from federation.trust import NodeKind, TrustGraph, UnknownPartyError


@pytest.fixture
def trust(federation: FederationConfig) -> TrustGraph:
    return TrustGraph.from_config(federation)


def test_direct_statement(trust: TrustGraph) -> None:
    assert trust.trusts("telco-es", "hub")
    verdict = trust.explain("telco-es", "hub")
    assert verdict.path == ("telco-es", "hub")
    assert "directly" in verdict.reason
    assert not trust.trusts("hub", "telco-es"), "trust is directed"


def test_via_named_anchor(trust: TrustGraph) -> None:
    assert trust.trusts("telco-gb", "hub")
    assert trust.trusts("telco-gb", "telco-es")
    assert trust.explain("telco-gb", "hub").path == ("telco-gb", "open-gateway", "hub")
    assert not trust.trusts("telco-gb", "telco-fr"), "the anchor does not endorse telco-fr"
    assert trust.trusted_by("telco-gb") == ["hub", "telco-es"]


def test_not_transitive_beyond_the_statement(trust: TrustGraph) -> None:
    # xx trusts fr, fr trusts es and the hub: xx trusts neither of them
    trust.add_party("telco-xx", NodeKind.OPERATOR, issuer="https://xx.example/oauth")
    trust.state("telco-xx", "telco-fr")
    assert trust.trusts("telco-xx", "telco-fr")
    assert not trust.trusts("telco-xx", "telco-es"), "fr's trust in es does not leak to xx"
    assert not trust.trusts("telco-xx", "hub")
    # an anchor endorsement is one hop: es (endorsed) trusting hub adds nothing for gb's path
    assert trust.explain("telco-gb", "hub").path == ("telco-gb", "open-gateway", "hub")


def test_transitive_only_when_the_statement_says_so(federation: FederationConfig) -> None:
    config = federation.model_copy(update={"trust": (
        *federation.trust, TrustStatement(party="hub", trusts="telco-fr", transitive=True))})
    trust = TrustGraph.from_config(config)
    # hub → fr (transitive) → es: hub trusts es through fr's own statement
    assert trust.explain("hub", "telco-es").path == ("hub", "telco-fr", "telco-es")
    assert trust.paths("hub", "telco-es") == [("hub", "telco-fr", "telco-es")]
    assert not trust.trusts("hub", "telco-gb")


def test_revocation_at_run_time(trust: TrustGraph) -> None:
    trust.revoke("telco-gb", "hub")
    assert not trust.trusts("telco-gb", "hub"), "a revocation beats the anchor path"
    assert "revoked" in trust.explain("telco-gb", "hub").reason
    assert trust.trusts("telco-es", "hub"), "others keep trusting the hub"
    assert trust.trusts("telco-gb", "telco-es"), "and gb keeps trusting everyone else"
    trust.reinstate("telco-gb", "hub")
    assert trust.trusts("telco-gb", "hub")


def test_revoking_a_party_for_everyone(trust: TrustGraph) -> None:
    trust.revoke_party("hub")
    assert [p for p in ("telco-es", "telco-fr", "telco-gb") if trust.trusts(p, "hub")] == []
    assert trust.trusts("telco-fr", "telco-es")


def test_revoking_the_anchor_cuts_its_endorsements(trust: TrustGraph) -> None:
    trust.revoke("telco-gb", "open-gateway")
    assert not trust.trusts("telco-gb", "hub")
    assert not trust.trusts("telco-gb", "telco-es")


def test_issuer_lookup_and_unknowns(trust: TrustGraph) -> None:
    assert trust.party_for_issuer("https://hub.ogsim.test/oauth/") == "hub"
    assert trust.party_for_issuer("hub") == "hub"
    assert trust.party_for_issuer("open-gateway") is None, "anchors issue nothing"
    assert trust.party_for_issuer("https://evil.example") is None
    assert not trust.trusts("telco-es", "nobody")
    assert not trust.trusts("telco-gb", "open-gateway")
    with pytest.raises(UnknownPartyError):
        trust.revoke("telco-es", "nobody")
