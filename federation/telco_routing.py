"""Telco Routing (GSMA OPG.10): the routing table each operator publishes about itself.

A rule says which subscribers an operator serves — ``ipv4`` / ``ipv6`` CIDR ranges,
``msisdnPrefix`` (countries without portability) or ``network`` MCC+MNC (countries with it,
where a Network Id service maps a number to its current network) — and what to do about
them: ``static`` (here is the operator, its API root and its auth provider) or ``dynamic``
(ask this second-level Telco Finder: several brands share one range). The operator serves
its table at ``GET /telco-routing/v1/routing``; the aggregator's Telco Finder collects them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from operators import E164_PREFIX

from .config import FederatedOperator, FederationConfig
from .protection import Protection


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StaticAction(_Wire):
    """The operator that serves the matched subscribers, and where to reach it."""

    operator_id: str = Field(alias="operatorId", min_length=1)
    api_root: str = Field(alias="apiRoot", min_length=1)
    auth_provider_configuration: str = Field(alias="authProviderConfiguration", min_length=1)


class DynamicAction(_Wire):
    """Ask a second-level Telco Finder; the auth provider is the parent's, shared by brands."""

    auth_provider_configuration: str = Field(alias="authProviderConfiguration", min_length=1)
    telco_finder_url: str = Field(alias="telcoFinderUrl", min_length=1)


class RoutingRule(_Wire):
    """Conditions (any may match) and exactly one action."""

    ipv4: tuple[str, ...] | None = None
    ipv6: tuple[str, ...] | None = None
    msisdn_prefix: tuple[str, ...] | None = Field(default=None, alias="msisdnPrefix")
    network: tuple[str, ...] | None = None
    static: StaticAction | None = None
    dynamic: DynamicAction | None = None

    @model_validator(mode="after")
    def _shape(self) -> RoutingRule:
        if not any((self.ipv4, self.ipv6, self.msisdn_prefix, self.network)):
            raise ValueError("a rule needs at least one non-empty condition list")
        if (self.static is None) == (self.dynamic is None):
            raise ValueError("a rule has exactly one action: static or dynamic")
        for cidr in self.ipv4 or ():
            ipaddress.IPv4Network(cidr)
        for cidr in self.ipv6 or ():
            ipaddress.IPv6Network(cidr)
        for prefix in self.msisdn_prefix or ():
            if not E164_PREFIX.match(prefix):
                raise ValueError(f"msisdnPrefix {prefix!r} is not an E.164 prefix")
        for network in self.network or ():
            if not (network.isascii() and network.isdigit() and len(network) in (5, 6)):
                raise ValueError(f"network {network!r} is not MCC+MNC")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    # -- matching (most specific match wins; the finder compares specificities) -------------

    def prefix_match(self, number: str) -> int:
        """Length of the longest ``msisdnPrefix`` that starts ``number``; 0 when none."""
        return max((len(p) for p in self.msisdn_prefix or () if number.startswith(p)), default=0)

    def network_match(self, network: str) -> bool:
        return network in (self.network or ())

    def address_match(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
        """Prefix length of the narrowest range holding ``address``; -1 when none."""
        ranges = self.ipv4 if address.version == 4 else self.ipv6
        lengths = [net.prefixlen for net in map(ipaddress.ip_network, ranges or ())
                   if address in net]
        return max(lengths, default=-1)

    @property
    def operator_hint(self) -> str | None:
        return self.static.operator_id if self.static else None


RoutingTable = list[RoutingRule]
_TABLE = TypeAdapter(list[RoutingRule])


def second_level_finder_url(operator: FederatedOperator) -> str:
    return operator.api_root + "/telco-finder/v1/search"


def build_routing_table(operator: FederatedOperator, federation: FederationConfig) -> RoutingTable:
    """The table ``operator`` publishes: one rule for its numbers, one for its addresses.

    Numbers are matched by ``network`` where the operator's country has portability, by
    ``msisdnPrefix`` elsewhere. An operator with brands answers ``dynamic``, pointing at its
    own second-level finder; otherwise ``static``.
    """
    auth = operator.auth_provider_configuration
    action: dict[str, Any]
    if operator.brands:
        action = {"dynamic": DynamicAction(authProviderConfiguration=auth,
                                           telcoFinderUrl=second_level_finder_url(operator))}
    else:
        action = {"static": StaticAction(operatorId=operator.id, apiRoot=operator.api_root,
                                         authProviderConfiguration=auth)}
    rules: RoutingTable = []
    if federation.country(operator.country).portability:
        rules.append(RoutingRule(network=(operator.network,), **action))
    else:
        rules.append(RoutingRule(msisdnPrefix=operator.number_ranges, **action))
    if operator.ipv4_ranges or operator.ipv6_ranges:
        rules.append(RoutingRule(ipv4=operator.ipv4_ranges or None,
                                 ipv6=operator.ipv6_ranges or None, **action))
    return rules


def parse_routing_table(document: Any) -> RoutingTable:
    """Validate a table fetched from a partner; raises ``ValueError`` naming the bad rule."""
    try:
        return _TABLE.validate_python(document)
    except ValidationError as error:
        raise ValueError(f"invalid routing table: {error.errors()[0]['msg']}") from error


async def fetch_routing_table(
    http: httpx.AsyncClient, url: str, access_token: str | None = None
) -> RoutingTable:
    """``GET`` a partner's routing table (with the token its authorization server issued)."""
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    response = await http.get(url, headers=headers)
    response.raise_for_status()
    return parse_routing_table(response.json())


def build_telco_routing_router(table: RoutingTable, protection: Protection) -> APIRouter:
    """``GET /telco-routing/v1/routing``; mount it in an app with CAMARA error handlers."""
    router = APIRouter(tags=["telco-routing"])
    body = [rule.wire() for rule in table]

    @router.get("/telco-routing/v1/routing")
    async def routing(_: Any = Depends(protection)) -> JSONResponse:
        return JSONResponse(body)

    return router
