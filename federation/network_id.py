"""The per-country Network Id service: a phone number to the network serving it now.

In a country with number portability a number's range says nothing certain about its
operator, so Telco Routing rules there match on ``network`` (MCC+MNC) and the Telco Finder
asks this service — ``POST /network-id/v0/resolve-network-id`` with ``{"phoneNumber": ...}``,
answered ``{"networkId": "21407"}`` — which reads the national portability register. OPG.10
names the service but not its fields; these are ogsim's, kept to the CAMARA style.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operators import CamaraError
from operators.gateway import ThreatLimits, read_json_object

from .partner_answers import PARTNER_FAILURES, partner_json, partner_unavailable
from .portability import PortabilityDatabase
from .protection import Protection
from .types import NetworkId

PATH = "/network-id/v0/resolve-network-id"
E164_PATTERN = r"^\+[1-9][0-9]{4,14}$"


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    phone_number: str = Field(alias="phoneNumber", pattern=E164_PATTERN)


class NetworkIdService:
    """Answers for the numbers of one country, from the portability register."""

    def __init__(self, country: str, database: PortabilityDatabase) -> None:
        self.country = country
        self.database = database
        self.lookups = 0
        """Resolutions served (DEEP searches cost one each: the demo counts them)."""

    def resolve(self, number: str) -> NetworkId | None:
        """The MCC+MNC serving ``number`` now, or None when it is not a number of ours."""
        self.lookups += 1
        if self.database.plan.country_of(number) != self.country:
            return None
        holder = self.database.current(number)
        return holder.network if holder is not None else None


BODY_LIMITS = ThreatLimits(max_body_bytes=1024, max_depth=2)
"""``{"phoneNumber": ...}`` and nothing more, read through the operator's threat protection."""


async def _body(request: Request) -> dict[str, Any]:
    return await read_json_object(request, BODY_LIMITS)


def build_network_id_router(service: NetworkIdService, protection: Protection) -> APIRouter:
    """The service's HTTP face; mount it in an app with CAMARA error handlers."""
    router = APIRouter(tags=["network-id"])

    @router.post(PATH)
    async def resolve(request: Request, _: Any = Depends(protection)) -> dict[str, str]:
        try:
            body = ResolveRequest.model_validate(await _body(request))
        except ValidationError as error:
            raise CamaraError(400, "INVALID_ARGUMENT",
                              "phoneNumber must be an E.164 number.") from error
        network = service.resolve(body.phone_number)
        if network is None:
            raise CamaraError(404, "IDENTIFIER_NOT_FOUND",
                              f"No network of {service.country} serves this phone number.")
        return {"networkId": network}

    return router


class HttpNetworkId:
    """The Telco Finder's side: asks a country's Network Id service over HTTP."""

    def __init__(self, http: httpx.AsyncClient, base_url: str,
                 access_token: str | None = None) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + PATH
        self.access_token = access_token

    async def __call__(self, number: str) -> NetworkId | None:
        """The network serving ``number``, None when unknown (404); 503 UNAVAILABLE when the
        register is down, refuses, or answers something else than a Network ID answer."""
        try:
            return await self._ask(number)
        except PARTNER_FAILURES as error:
            raise partner_unavailable(f"The Network ID service at {self.url}", error) from error

    async def _ask(self, number: str) -> NetworkId | None:
        headers = ({"Authorization": f"Bearer {self.access_token}"}
                   if self.access_token else {})
        response = await self.http.post(self.url, json={"phoneNumber": number}, headers=headers)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = partner_json(response)
        if not isinstance(body, dict):
            raise ValueError("the answer is not a JSON object")
        network = body.get("networkId")
        return str(network) if network else None
