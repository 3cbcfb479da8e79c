"""Telco Finder (GSMA OPG.10): which operator serves a phone number or a device address.

The aggregator's :class:`TelcoFinder` resolves a target against the routing tables it
collected from its partners: ``msisdnPrefix`` rules by longest prefix, ``ipv4``/``ipv6`` by
narrowest range, and — in countries with portability — ``network`` rules against the number's
current network. ``portabilitySearchMode`` decides where that network comes from: ``SHALLOW``
uses the finder's own records (its cache of earlier answers, else the numbering plan), cheap
but possibly stale right after a port; ``DEEP`` asks the country's Network Id service and
refreshes the cache. A ``dynamic`` rule hands the search to the operator's second-level
finder (:class:`BrandFinder`), which tells its brands apart.

Both finders are plain objects with injected lookups (no I/O of their own);
:func:`build_telco_finder_router` serves either at ``POST /telco-finder/v1/search``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator

from operators import CamaraError
from operators.gateway import ThreatLimits, read_json

from .config import FederatedOperator, FederationConfig
from .network_id import E164_PATTERN
from .partner_answers import PARTNER_FAILURES, partner_json, partner_unavailable
from .portability import NumberingPlan
from .protection import Protection
from .telco_routing import RoutingRule, RoutingTable
from .types import Clock, NetworkId

PATH = "/telco-finder/v1/search"
SearchMode = Literal["SHALLOW", "DEEP"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Ipv4Target(_Wire):
    public_address: ipaddress.IPv4Address = Field(alias="publicAddress")
    public_port: int | None = Field(default=None, alias="publicPort", ge=0, le=65535)


class Target(_Wire):
    """Exactly one of a phone number, an IPv4 address (with port) or an IPv6 address."""

    phone_number: str | None = Field(default=None, alias="phoneNumber", pattern=E164_PATTERN)
    ipv4_address: Ipv4Target | None = Field(default=None, alias="ipv4Address")
    ipv6_address: ipaddress.IPv6Address | None = Field(default=None, alias="ipv6Address")

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [v for v in (self.phone_number, self.ipv4_address, self.ipv6_address)
                 if v is not None]
        if len(given) != 1:
            raise ValueError("target names exactly one of phoneNumber, ipv4Address, ipv6Address")
        return self

    def describe(self) -> str:
        if self.phone_number is not None:
            return self.phone_number
        if self.ipv4_address is not None:
            return str(self.ipv4_address.public_address)
        return str(self.ipv6_address)


class SearchRequest(_Wire):
    target: Target
    include_api_root: StrictBool = Field(default=False, alias="includeApiRoot")
    include_auth_provider_configuration: StrictBool = Field(
        default=False, alias="includeAuthProviderConfiguration")
    portability_search_mode: SearchMode = Field(default="SHALLOW",
                                                alias="portabilitySearchMode")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


@dataclass(frozen=True)
class SearchAnswer:
    """The operator found, with everything known about it; the wire form filters fields."""

    operator_id: str
    api_root: str | None = None
    auth_provider_configuration: str | None = None

    def wire(self, request: SearchRequest) -> dict[str, str]:
        body = {"operatorId": self.operator_id}
        if request.include_api_root and self.api_root:
            body["apiRoot"] = self.api_root
        if request.include_auth_provider_configuration and self.auth_provider_configuration:
            body["authProviderConfiguration"] = self.auth_provider_configuration
        return body


class Finder(Protocol):
    """Anything that answers a Telco Finder search (first or second level)."""

    async def search(self, request: SearchRequest) -> SearchAnswer: ...


NetworkLookup = Callable[[str], Awaitable[NetworkId | None]]
"""A country's Network Id service: number → MCC+MNC now, None when unknown."""
SecondLevelLookup = Callable[[str, SearchRequest], Awaitable[SearchAnswer | None]]
"""Ask the second-level finder at a URL; None when it serves no such subscriber."""


def not_found(target: Target) -> CamaraError:
    if target.phone_number is not None:
        return CamaraError(404, "NOT_FOUND",
                           "No operator of the federation serves this phone number.")
    return CamaraError(404, "NOT_FOUND", "No operator of the federation serves this address.")


@dataclass
class _Cached:
    network: NetworkId
    stored_at: float


class TelcoFinder:
    """The aggregator's first-level finder over the partners' routing tables."""

    def __init__(
        self,
        tables: Mapping[str, RoutingTable],
        plan: NumberingPlan,
        *,
        network_id: Mapping[str, NetworkLookup],
        second_level: SecondLevelLookup,
        clock: Clock = time.monotonic,
        cache_ttl: float | None = None,
        cached: Mapping[str, NetworkId] | None = None,
    ) -> None:
        self.tables: dict[str, RoutingTable] = dict(tables)
        self.plan = plan
        self.network_id = network_id
        self.second_level = second_level
        self.clock = clock
        self.cache_ttl = cache_ttl
        self._cache: dict[str, _Cached] = {
            number: _Cached(network, clock()) for number, network in (cached or {}).items()}

    @classmethod
    def for_federation(
        cls,
        federation: FederationConfig,
        tables: Mapping[str, RoutingTable],
        *,
        network_id: Mapping[str, NetworkLookup],
        second_level: SecondLevelLookup,
        clock: Clock = time.monotonic,
        cache_ttl: float | None = None,
    ) -> TelcoFinder:
        """A finder whose cache starts as the federation's configured ports (its last sync)."""
        cached = {number: network for number, party in federation.ports.items()
                  if (network := federation.network_of_party(party)) is not None}
        return cls(tables, NumberingPlan(federation), network_id=network_id,
                   second_level=second_level, clock=clock, cache_ttl=cache_ttl, cached=cached)

    def update_table(self, operator_id: str, table: RoutingTable) -> None:
        """Replace one partner's table (after a fresh ``GET /telco-routing/v1/routing``)."""
        self.tables[operator_id] = list(table)

    def rules(self) -> list[RoutingRule]:
        return [rule for table in self.tables.values() for rule in table]

    def cached_network(self, number: str) -> NetworkId | None:
        entry = self._cache.get(number)
        if entry is None:
            return None
        if self.cache_ttl is not None and self.clock() - entry.stored_at > self.cache_ttl:
            del self._cache[number]
            return None
        return entry.network

    async def current_network(self, number: str, mode: SearchMode) -> NetworkId | None:
        """SHALLOW: own records (cache, else the range holder). DEEP: the Network Id service."""
        if mode == "DEEP":
            country = self.plan.country_of(number)
            lookup = self.network_id.get(country) if country else None
            if lookup is None:
                raise CamaraError(503, "UNAVAILABLE",
                                  "No Network Id service is known for this number's country.")
            network = await lookup(number)
            holder = self.plan.holder(number)
            if network is None or (holder is not None and network == holder.network):
                # what SHALLOW answers without a record: keeping one for every number asked
                # would grow the cache with the numbers (a client asking at random), not
                # with the ports
                self._cache.pop(number, None)
            else:
                self._cache[number] = _Cached(network, self.clock())
            return network
        cached = self.cached_network(number)
        if cached is not None:
            return cached
        holder = self.plan.holder(number)
        return holder.network if holder else None

    async def search(self, request: SearchRequest) -> SearchAnswer:
        rule = await self._match(request)
        if rule is None:
            raise not_found(request.target)
        return await self._act(rule, request)

    async def _match(self, request: SearchRequest) -> RoutingRule | None:
        target = request.target
        rules = self.rules()
        if target.phone_number is not None:
            number = target.phone_number
            if self.plan.portable(number):
                network = await self.current_network(number, request.portability_search_mode)
                matched = [r for r in rules if network and r.network_match(network)]
                if matched:
                    return matched[0]
            best = max(rules, key=lambda r: r.prefix_match(number), default=None)
            return best if best is not None and best.prefix_match(number) else None
        address: ipaddress.IPv4Address | ipaddress.IPv6Address
        if target.ipv4_address is not None:
            address = target.ipv4_address.public_address
        else:
            assert target.ipv6_address is not None
            address = target.ipv6_address
        best = max(rules, key=lambda r: r.address_match(address), default=None)
        return best if best is not None and best.address_match(address) >= 0 else None

    async def _act(self, rule: RoutingRule, request: SearchRequest) -> SearchAnswer:
        if rule.static is not None:
            return SearchAnswer(rule.static.operator_id, rule.static.api_root,
                                rule.static.auth_provider_configuration)
        assert rule.dynamic is not None
        deeper = request.model_copy(update={"include_api_root": True,
                                            "include_auth_provider_configuration": True})
        answer = await self.second_level(rule.dynamic.telco_finder_url, deeper)
        if answer is None:
            raise not_found(request.target)
        return SearchAnswer(
            answer.operator_id, answer.api_root,
            answer.auth_provider_configuration or rule.dynamic.auth_provider_configuration)


class BrandFinder:
    """An operator's second-level finder: the parent or one of its brands, per subscriber.

    ``serves(number)`` says whether the parent network serves the number now (its subscriber
    base, ports included); ``number_at(address)`` maps a device address to its number.
    """

    def __init__(
        self,
        operator: FederatedOperator,
        *,
        serves: Callable[[str], bool],
        number_at: Callable[[str], str | None],
    ) -> None:
        self.operator = operator
        self.serves = serves
        self.number_at = number_at

    async def search(self, request: SearchRequest) -> SearchAnswer:
        target = request.target
        number = target.phone_number
        if number is None and target.ipv4_address is not None:
            number = self.number_at(str(target.ipv4_address.public_address))
            if number is None:
                raise not_found(target)
        if number is not None and not self.serves(number):
            raise not_found(target)
        brand = self.operator.brand_of(number) if number is not None else None
        operator = self.operator
        if brand is None:
            return SearchAnswer(operator.id, operator.api_root,
                                operator.auth_provider_configuration)
        return SearchAnswer(brand.id, brand.api_root or operator.api_root,
                            operator.auth_provider_configuration)


BODY_LIMITS = ThreatLimits(max_body_bytes=4096)
"""A search is a target and two flags: 4 KiB, read through the operator's threat protection."""


async def _search_request(request: Request) -> SearchRequest:
    payload = await read_json(request, BODY_LIMITS)
    try:
        return SearchRequest.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise CamaraError(400, "INVALID_ARGUMENT", f"{where}: {first['msg']}") from error


def build_telco_finder_router(finder: Finder, protection: Protection) -> APIRouter:
    """``POST /telco-finder/v1/search``; mount it in an app with CAMARA error handlers."""
    router = APIRouter(tags=["telco-finder"])

    @router.post(PATH)
    async def search(request: Request, _: Any = Depends(protection)) -> JSONResponse:
        body = await _search_request(request)
        answer = await finder.search(body)
        return JSONResponse(answer.wire(body))

    return router


class HttpSecondLevelFinder:
    """The first-level finder's way to ask an operator's second-level finder over HTTP."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        access_token: Callable[[str], Awaitable[str | None]] | None = None,
        forget_token: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self.access_token = access_token
        self.forget_token = forget_token
        """Drops a cached token the finder refused (401), so one retry gets a fresh one."""

    async def __call__(self, url: str, request: SearchRequest) -> SearchAnswer | None:
        """The operator's answer, None when it serves nobody (404); 503 UNAVAILABLE when it
        is down, refuses (429, 5xx) or answers something that is not a finder's answer."""
        try:
            return await self._search(url, request)
        except PARTNER_FAILURES as error:
            raise partner_unavailable(f"The Telco Finder at {url}", error) from error

    async def _search(self, url: str, request: SearchRequest) -> SearchAnswer | None:
        token = await self.access_token(url) if self.access_token else None
        response = await self._post(url, request, token)
        if (
            response.status_code == 401
            and token is not None
            and self.access_token is not None
            and self.forget_token is not None
        ):
            self.forget_token(url)
            response = await self._post(url, request, await self.access_token(url))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = partner_json(response)
        if not isinstance(body, dict):
            raise ValueError("the answer is not a JSON object")
        return SearchAnswer(str(body["operatorId"]), body.get("apiRoot"),
                            body.get("authProviderConfiguration"))

    async def _post(self, url: str, request: SearchRequest, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(url, json=request.wire(), headers=headers)
