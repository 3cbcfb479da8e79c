# ruff: noqa: N815  (wire models keep the exact CAMARA field names of the YAML)
"""Quality on Demand 1.1.0 (``/quality-on-demand/v1``): wire models of sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, field_validator, model_validator

from .common import CamaraModel, Device, DeviceResponse

__all__ = [
    "ApplicationServer",
    "CreateSession",
    "ExtendSessionDuration",
    "PortRange",
    "PortsSpec",
    "QosProfileName",
    "QosStatus",
    "RetrieveSessionsInput",
    "SessionInfo",
    "StatusInfo",
]

QosProfileName = Annotated[
    str, StringConstraints(min_length=3, max_length=256, pattern=r"^[a-zA-Z0-9_.-]+$")
]
Port = Annotated[int, Field(ge=0, le=65535)]


class QosStatus(StrEnum):
    REQUESTED = "REQUESTED"
    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"


class StatusInfo(StrEnum):
    DURATION_EXPIRED = "DURATION_EXPIRED"
    NETWORK_TERMINATED = "NETWORK_TERMINATED"
    DELETE_REQUESTED = "DELETE_REQUESTED"


class ApplicationServer(CamaraModel):
    """An address or a network of the server side of the flow (``minProperties: 1``)."""

    ipv4Address: str | None = None
    ipv6Address: str | None = None

    # An address/mask may have host bits set: "1.2.3.4/24" matches 1.2.3.0 to 1.2.3.255
    # (quality-on-demand.yaml, ApplicationServerIpv4Address), hence strict=False.

    @field_validator("ipv4Address")
    @classmethod
    def _ipv4(cls, value: str | None) -> str | None:
        if value is not None:
            if "/" in value:
                IPv4Network(value, strict=False)  # raises ValueError
            else:
                IPv4Address(value)
        return value

    @field_validator("ipv6Address")
    @classmethod
    def _ipv6(cls, value: str | None) -> str | None:
        if value is not None:
            if "%" in value:
                raise ValueError("an IPv6 address has no zone here")
            if "/" in value:
                IPv6Network(value, strict=False)
            else:
                IPv6Address(value)
        return value

    @model_validator(mode="after")
    def _one(self) -> ApplicationServer:
        if self.ipv4Address is None and self.ipv6Address is None:
            raise ValueError("applicationServer needs ipv4Address or ipv6Address")
        return self


class PortRange(CamaraModel):
    from_: Port = Field(alias="from")
    to: Port


class PortsSpec(CamaraModel):
    ranges: list[PortRange] | None = Field(default=None, min_length=1)
    ports: list[Port] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _some(self) -> PortsSpec:
        if self.ranges is None and self.ports is None:
            raise ValueError("a ports specification needs ranges or ports")
        return self


class _SinkCredential(CamaraModel):
    """The YAML's SinkCredential and, by ``credentialType``, its AccessTokenCredential.

    PLAIN and REFRESHTOKEN are in the schema but "MUST not be used": they pass here and the
    service answers ``INVALID_CREDENTIAL``, as the feature files ask. An ACCESSTOKEN credential
    needs its ``accessToken``, ``accessTokenType`` and ``accessTokenExpiresUtc``, as the YAML
    requires (CAMARA's scenario ``createSession_02_1`` leaves the expiry unsaid; the
    conformance runner sends it with the "valid access token").
    """

    credentialType: Literal["PLAIN", "ACCESSTOKEN", "REFRESHTOKEN"]
    identifier: str | None = None
    secret: str | None = None
    accessToken: str | None = None
    accessTokenExpiresUtc: AwareDatetime | None = None
    accessTokenType: Literal["bearer"] | None = None
    refreshToken: str | None = None
    refreshTokenEndpoint: str | None = None

    @model_validator(mode="after")
    def _access_token_complete(self) -> _SinkCredential:
        if self.credentialType == "ACCESSTOKEN":
            missing = [
                name
                for name in ("accessToken", "accessTokenType", "accessTokenExpiresUtc")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an ACCESSTOKEN credential needs {' and '.join(missing)}")
        return self


class _BaseSession(CamaraModel):
    applicationServer: ApplicationServer
    devicePorts: PortsSpec | None = None
    applicationServerPorts: PortsSpec | None = None
    qosProfile: QosProfileName
    sink: Annotated[str, StringConstraints(pattern=r"^https:\/\/.+$")] | None = None
    sinkCredential: _SinkCredential | None = None


class CreateSession(_BaseSession):
    device: Device | None = None
    duration: int = Field(ge=1, le=2**31 - 1, description="seconds")


class SessionInfo(_BaseSession):
    device: DeviceResponse | None = None
    sessionId: UUID
    duration: int = Field(ge=1)
    startedAt: datetime | None = None
    expiresAt: datetime | None = None
    qosStatus: QosStatus
    statusInfo: StatusInfo | None = None


class ExtendSessionDuration(CamaraModel):
    requestedAdditionalDuration: int = Field(ge=1, le=2**31 - 1)


class RetrieveSessionsInput(CamaraModel):
    device: Device | None = None
