"""What the network functions are asked and what they answer, in their own formats, not CAMARA.

A real core does not speak CAMARA JSON: an HLR answers MAP-style subscriber data with epoch
timestamps and attach flags, a GMLC answers a position estimate with an uncertainty radius,
a PCF keeps session state. The CAMARA services translate these records; keeping the formats
apart here is what makes that translation (and its bugs) part of what the simulator exercises.
All records are frozen: an answer never changes after it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "CreateQosSession",
    "DeleteQosSession",
    "ExtendQosSession",
    "HlrRecord",
    "IpQuery",
    "KycRecord",
    "MsState",
    "MsisdnQuery",
    "NvBinding",
    "PcfRequest",
    "PositionEstimate",
    "QosSessionRecord",
    "QosSessionState",
    "ReadQosSession",
]


# -- requests ------------------------------------------------------------------------------


class MsisdnQuery(NamedTuple):
    """Ask about the subscriber behind an E.164 number (HLR, location server, KYC register).

    A named tuple (immutable too): one is made per backend call, and a tuple is cheaper.
    """

    msisdn: str


@dataclass(frozen=True, slots=True)
class IpQuery:
    """Ask which subscriber holds a device address (number-verification authenticator)."""

    ipv4: str


@dataclass(frozen=True, slots=True)
class CreateQosSession:
    msisdn: str
    qos_profile: str
    duration: float


@dataclass(frozen=True, slots=True)
class ReadQosSession:
    session_id: str


@dataclass(frozen=True, slots=True)
class ExtendQosSession:
    session_id: str
    additional: float


@dataclass(frozen=True, slots=True)
class DeleteQosSession:
    session_id: str


PcfRequest = CreateQosSession | ReadQosSession | ExtendQosSession | DeleteQosSession


# -- answers -------------------------------------------------------------------------------


class MsState(StrEnum):
    """Mobile-station state as the HLR sees it."""

    ATTACHED = "attached"
    DETACHED = "detached"


@dataclass(frozen=True, slots=True)
class HlrRecord:
    """Subscriber data from the SIM data register (HLR/HSS)."""

    imsi: str
    msisdn: str
    sim_change_timestamp: int
    """Epoch seconds of the last SIM change (activation when the SIM was never swapped)."""
    ms_state: MsState
    gprs_attached: bool
    sms_attached: bool
    hplmn: str
    """Home network, MCC+MNC."""
    vlr_mcc: str
    """MCC of the network whose VLR serves the device now; the home MCC when not roaming."""


@dataclass(frozen=True, slots=True)
class PositionEstimate:
    """A location server's answer: a circle and how old the fix is."""

    msisdn: str
    latitude: float
    longitude: float
    uncertainty_radius: float
    """Metres."""
    age_of_location: int
    """Seconds between the fix and the answer."""
    fix_timestamp: int
    """Epoch seconds of the fix."""


class QosSessionState(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class QosSessionRecord:
    """A QoS session as the policy function holds it; times are the PCF clock's seconds."""

    session_id: str
    msisdn: str
    qos_profile: str
    started_at: float
    expires_at: float
    state: QosSessionState


@dataclass(frozen=True, slots=True)
class KycRecord:
    """The identity the operator verified at contract signature, flat as the register stores it."""

    msisdn: str
    given_name: str
    family_name: str
    birthdate: date
    gender: str
    email: str
    street_name: str
    street_number: str
    postal_code: str
    locality: str
    region: str
    country: str
    id_document_type: str
    id_document_number: str
    id_document_expiry: date


@dataclass(frozen=True, slots=True)
class NvBinding:
    """The number-verification authenticator's answer: the subscriber holding a device address."""

    ipv4: str
    msisdn: str
    imsi: str
