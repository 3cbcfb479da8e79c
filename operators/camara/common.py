# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Schemas shared by every CAMARA API (``CAMARA_common.yaml``), body parsing and device rules.

Three things live here because every API needs them the same way:

* the pydantic models of Device, DeviceResponse, Point, Circle and ErrorInfo;
* :func:`parse_body`, which turns a request body into a model or into the CAMARA 400 the
  API defines (never FastAPI's 422 body);
* :func:`resolve_device`, the one place that applies the three-legged / two-legged device
  identification rules and answers the 422/404 codes of the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from operators.errors import CamaraError

from .json_body import check_parsed_object, decode_json_object

__all__ = [
    "PHONE_NUMBER_PATTERN",
    "AreaType",
    "Circle",
    "Device",
    "DeviceDirectory",
    "DeviceIpv4Address",
    "DeviceResponse",
    "ErrorInfo",
    "IdentifierRules",
    "PhoneNumber",
    "Point",
    "ResolvedDevice",
    "parse_body",
    "resolve_device",
]

PHONE_NUMBER_PATTERN = r"^\+[1-9][0-9]{4,14}$"
PhoneNumber = Annotated[str, StringConstraints(pattern=PHONE_NUMBER_PATTERN, max_length=16)]
Port = Annotated[int, Field(ge=0, le=65535)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class CamaraModel(BaseModel):
    """Base of every wire model: CAMARA field names as they are, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body: optional fields that are unset are absent, never ``null``."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class ErrorInfo(CamaraModel):
    status: int = Field(ge=100, le=599)
    code: str = Field(max_length=96)
    message: str = Field(max_length=512)


class DeviceIpv4Address(CamaraModel):
    """Public address plus either the private address or the public port (NAT traversal)."""

    publicAddress: IPv4Address
    privateAddress: IPv4Address | None = None
    publicPort: Port | None = None

    @model_validator(mode="after")
    def _private_or_port(self) -> DeviceIpv4Address:
        if self.privateAddress is None and self.publicPort is None:
            raise ValueError("ipv4Address needs privateAddress or publicPort with publicAddress")
        return self


class Device(CamaraModel):
    """End-user equipment, named by at least one identifier (``minProperties: 1``)."""

    phoneNumber: PhoneNumber | None = None
    networkAccessIdentifier: Annotated[str, StringConstraints(max_length=2048)] | None = None
    ipv4Address: DeviceIpv4Address | None = None
    ipv6Address: IPv6Address | None = None

    @field_validator("ipv6Address")
    @classmethod
    def _no_zone(cls, value: IPv6Address | None) -> IPv6Address | None:
        if value is not None and value.scope_id is not None:
            raise ValueError("ipv6Address is an address (format: ipv6), with no zone")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> Device:
        if not self.wire():
            raise ValueError("device must name at least one identifier")
        return self


class DeviceResponse(Device):
    """The single identifier the provider used (``maxProperties: 1``)."""

    @model_validator(mode="after")
    def _at_most_one(self) -> DeviceResponse:
        if len(self.wire()) > 1:
            raise ValueError("a device in a response carries exactly one identifier")
        return self


class Point(CamaraModel):
    latitude: Latitude
    longitude: Longitude


class AreaType(StrEnum):
    CIRCLE = "CIRCLE"
    POLYGON = "POLYGON"


class Circle(CamaraModel):
    areaType: AreaType = AreaType.CIRCLE
    center: Point
    radius: float = Field(ge=1, description="metres")


# -- parsing -------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


NOT_PARSED: Any = object()
"""``parse_body``'s default: no strict parser has read the body before."""


def parse_body(
    model: type[M], raw: bytes, *, out_of_range: bool = False, parsed: Any = NOT_PARSED
) -> M:
    """Validate a JSON body against ``model``; a bad one is a CAMARA 400, never a 422.

    The body is decoded strictly first (:func:`~operators.camara.json_body.decode_json_object`:
    UTF-8 only, no duplicate keys, no lone surrogates, no ``null``), then validated in pydantic's
    strict JSON mode: no coercion, so ``"24"`` is not an integer nor ``true`` a number.
    ``out_of_range`` is True for operations whose 400 response lists ``OUT_OF_RANGE``: a value
    outside a declared minimum/maximum then gets that code, as the definitions ask.
    ``parsed`` is the document the gateway's strict parser already made of ``raw``, if any:
    only what that parser does not refuse is checked again (one parse less per call).
    """
    if parsed is NOT_PARSED:
        decode_json_object(raw)
    else:
        check_parsed_object(parsed, raw)
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = f"{where}: {first['msg']}"[:400]
        if out_of_range and first["type"] in _RANGE_ERRORS:
            raise CamaraError(
                400, "OUT_OF_RANGE", f"Client specified an invalid range. {message}"
            ) from exc
        raise CamaraError(
            400, "INVALID_ARGUMENT", f"Client specified an invalid argument. {message}"
        ) from exc


# -- device identification ------------------------------------------------------------------


class DeviceDirectory(Protocol):
    """What resolving a device needs from the subscriber base (``SubscriberBase`` fits)."""

    def get(self, msisdn: str) -> Any: ...

    def by_ipv4(self, address: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class IdentifierRules:
    """Which device identifiers one operation accepts on this operator.

    ``ipv4_public_port``: whether a public address and port alone (a NAT binding) can be
    resolved; the simulated network keeps no NAT table, so by default it cannot.
    ``mismatch``: whether a phone number and a private IPv4 address this operator gave another
    subscriber are refused (422 ``IDENTIFIER_MISMATCH``). The device status APIs list that
    code, and location retrieval's feature file expects it (its YAML does not); the others
    (location verification, QoD, QoS profiles) say to answer for the identifier used and
    return no error, so a two-legged client cannot learn whose address an IP is.
    """

    phone_number: bool = True
    ipv4: bool = True
    ipv4_public_port: bool = False
    ipv6: bool = False
    network_access_identifier: bool = False
    mismatch: bool = False


PHONE_ONLY = IdentifierRules(ipv4=False)
ANY_SUPPORTED = IdentifierRules()
MISMATCH_CHECKED = IdentifierRules(mismatch=True)


@dataclass(frozen=True, slots=True)
class ResolvedDevice:
    """The subscriber an operation is about, and the identifier to echo (two-legged only)."""

    msisdn: str
    device: DeviceResponse | None = None


def _not_found() -> CamaraError:
    return CamaraError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")


def _unsupported(what: str) -> CamaraError:
    return CamaraError(422, "UNSUPPORTED_IDENTIFIER", f"The identifier {what} is not supported.")


def resolve_device(
    context_msisdn: str | None,
    device: Device | None,
    directory: DeviceDirectory,
    rules: IdentifierRules = ANY_SUPPORTED,
) -> ResolvedDevice:
    """Apply the CAMARA identification rules and return the subscriber's MSISDN.

    Three-legged (``context_msisdn`` set): the token names the device; a body that names it
    too is ``422 UNNECESSARY_IDENTIFIER`` even when it is the same device. Two-legged: the
    body must name it (``422 MISSING_IDENTIFIER``). Of several identifiers the first usable
    one (phone number, then IPv4, then IPv6) is used; where ``rules.mismatch`` (the device
    status APIs, location retrieval), a phone number and a private IPv4 address that this
    operator allocated to another subscriber are ``422 IDENTIFIER_MISMATCH``; none usable
    is ``422 UNSUPPORTED_IDENTIFIER``; a device this operator does not serve is
    ``404 IDENTIFIER_NOT_FOUND``.
    """
    if context_msisdn is not None:
        if device is not None:
            raise CamaraError(
                422,
                "UNNECESSARY_IDENTIFIER",
                "The device is already identified by the access token.",
            )
        if directory.get(context_msisdn) is None:
            raise _not_found()
        return ResolvedDevice(context_msisdn)
    if device is None:
        raise CamaraError(422, "MISSING_IDENTIFIER", "The device cannot be identified.")
    ip = device.ipv4Address
    if device.phoneNumber is not None and rules.phone_number:
        if directory.get(device.phoneNumber) is None:
            raise _not_found()
        if ip is not None and ip.privateAddress is not None and rules.mismatch:
            other = directory.by_ipv4(str(ip.privateAddress))
            if other is not None and str(other.msisdn) != device.phoneNumber:
                raise CamaraError(
                    422, "IDENTIFIER_MISMATCH", "Provided identifiers are not consistent."
                )
        return ResolvedDevice(device.phoneNumber, DeviceResponse(phoneNumber=device.phoneNumber))
    if ip is not None and rules.ipv4 and (ip.privateAddress is not None or rules.ipv4_public_port):
        address = str(ip.privateAddress or ip.publicAddress)
        subscriber = directory.by_ipv4(address)
        if subscriber is None:
            raise _not_found()
        return ResolvedDevice(str(subscriber.msisdn), DeviceResponse(ipv4Address=ip))
    if device.ipv6Address is not None and rules.ipv6:
        raise _not_found()  # no IPv6 allocations in the simulated network
    offered = [
        name
        for name in ("phoneNumber", "ipv4Address", "ipv6Address", "networkAccessIdentifier")
        if getattr(device, name) is not None
    ]
    if ip is not None and rules.ipv4 and ip.privateAddress is None:
        raise _unsupported("ipv4Address with publicAddress and publicPort only")
    raise _unsupported(" and ".join(offered))
