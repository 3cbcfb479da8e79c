"""Across operators, live: trust, operator discovery, the aggregator and settlement, the global
load balancer, the launcher and the demo.

``federation`` imports ``operators`` and nothing else of ogsim. This face names what ``sim``,
``loadtests`` and the CLI may use; names are imported on first use, so reading a federation
config does not start uvicorn's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators import lazy_face

if TYPE_CHECKING:
    from federation.balancer_errors import NoHealthyDataCentreError
    from federation.client import (
        INVALID_RESPONSE,
        ApplicationClient,
        Endpoints,
        OAuthClientError,
        fetch_access_token,
        fetch_operator_token,
        load_client_key,
        new_client_key,
    )
    from federation.config import (
        PORTED_NUMBER,
        AggregatorConfig,
        CountryConfig,
        DataCentre,
        FederatedOperator,
        FederationConfig,
        default_federation,
        load_federation,
    )
    from federation.corporate_idp import (
        CorporateIdp,
        CorporateUser,
        create_corporate_idp_app,
        example_corporate_idp,
    )
    from federation.demo import Interactive, run_demo
    from federation.discovery_fallback import FIRST_SEARCH, Stale, next_search, stale_signal
    from federation.federation import Federation, quick_consent, running_federation
    from federation.global_load_balancer import GlobalLoadBalancer, HealthPolicy, HealthTracker
    from federation.launcher import (
        NO_AGGREGATOR,
        FederationProcesses,
        PartyStartError,
        descriptor,
    )
    from federation.network_id import NetworkIdService
    from federation.portability import PortabilityDatabase
    from federation.ports import free_port_block
    from federation.rate_card import RateCard, WholesaleRate
    from federation.replica_pool import POOL_AUTOSCALER, PoolPolicy, ReplicaPool
    from federation.settlement import (
        Month,
        Statement,
        StatementCheck,
        StatementError,
        months_between,
        reconcile_statements,
    )
    from federation.telco_finder import SearchAnswer, SearchMode, SearchRequest, TelcoFinder
    from federation.telco_routing import build_routing_table
    from federation.trust import NodeKind, TrustGraph
    from federation.types import NetworkId

__all__ = [
    "FIRST_SEARCH",
    "INVALID_RESPONSE",
    "NO_AGGREGATOR",
    "POOL_AUTOSCALER",
    "PORTED_NUMBER",
    "AggregatorConfig",
    "ApplicationClient",
    "CorporateIdp",
    "CorporateUser",
    "CountryConfig",
    "DataCentre",
    "Endpoints",
    "FederatedOperator",
    "Federation",
    "FederationConfig",
    "FederationProcesses",
    "GlobalLoadBalancer",
    "HealthPolicy",
    "HealthTracker",
    "Interactive",
    "Month",
    "NetworkId",
    "NetworkIdService",
    "NoHealthyDataCentreError",
    "NodeKind",
    "OAuthClientError",
    "PartyStartError",
    "PoolPolicy",
    "PortabilityDatabase",
    "RateCard",
    "ReplicaPool",
    "SearchAnswer",
    "SearchMode",
    "SearchRequest",
    "Stale",
    "Statement",
    "StatementCheck",
    "StatementError",
    "TelcoFinder",
    "TrustGraph",
    "WholesaleRate",
    "build_routing_table",
    "create_corporate_idp_app",
    "default_federation",
    "descriptor",
    "example_corporate_idp",
    "fetch_access_token",
    "fetch_operator_token",
    "free_port_block",
    "load_client_key",
    "load_federation",
    "months_between",
    "new_client_key",
    "next_search",
    "quick_consent",
    "reconcile_statements",
    "run_demo",
    "running_federation",
    "stale_signal",
]

_HOMES = {
    "ApplicationClient": "federation.client",
    "Endpoints": "federation.client",
    "OAuthClientError": "federation.client",
    "INVALID_RESPONSE": "federation.client",
    "fetch_access_token": "federation.client",
    "fetch_operator_token": "federation.client",
    "load_client_key": "federation.client",
    "new_client_key": "federation.client",
    "PORTED_NUMBER": "federation.config",
    "AggregatorConfig": "federation.config",
    "CountryConfig": "federation.config",
    "DataCentre": "federation.config",
    "FederatedOperator": "federation.config",
    "FederationConfig": "federation.config",
    "default_federation": "federation.config",
    "load_federation": "federation.config",
    "CorporateIdp": "federation.corporate_idp",
    "CorporateUser": "federation.corporate_idp",
    "create_corporate_idp_app": "federation.corporate_idp",
    "example_corporate_idp": "federation.corporate_idp",
    "Interactive": "federation.demo",
    "run_demo": "federation.demo",
    "FIRST_SEARCH": "federation.discovery_fallback",
    "Stale": "federation.discovery_fallback",
    "next_search": "federation.discovery_fallback",
    "stale_signal": "federation.discovery_fallback",
    "Federation": "federation.federation",
    "quick_consent": "federation.federation",
    "running_federation": "federation.federation",
    "GlobalLoadBalancer": "federation.global_load_balancer",
    "HealthPolicy": "federation.global_load_balancer",
    "HealthTracker": "federation.global_load_balancer",
    "NoHealthyDataCentreError": "federation.balancer_errors",
    "FederationProcesses": "federation.launcher",
    "PartyStartError": "federation.launcher",
    "NO_AGGREGATOR": "federation.launcher",
    "descriptor": "federation.launcher",
    "free_port_block": "federation.ports",
    "NetworkIdService": "federation.network_id",
    "PortabilityDatabase": "federation.portability",
    "POOL_AUTOSCALER": "federation.replica_pool",
    "PoolPolicy": "federation.replica_pool",
    "ReplicaPool": "federation.replica_pool",
    "RateCard": "federation.rate_card",
    "WholesaleRate": "federation.rate_card",
    "Month": "federation.settlement",
    "Statement": "federation.settlement",
    "StatementCheck": "federation.settlement",
    "StatementError": "federation.settlement",
    "months_between": "federation.settlement",
    "reconcile_statements": "federation.settlement",
    "SearchAnswer": "federation.telco_finder",
    "SearchMode": "federation.telco_finder",
    "SearchRequest": "federation.telco_finder",
    "TelcoFinder": "federation.telco_finder",
    "build_routing_table": "federation.telco_routing",
    "NodeKind": "federation.trust",
    "TrustGraph": "federation.trust",
    "NetworkId": "federation.types",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
