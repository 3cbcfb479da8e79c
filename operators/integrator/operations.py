"""Each CAMARA operation's flow, written once: backend calls yielded, records translated.

Every function here is a generator (see :mod:`operators.integrator.flow`): it yields a
:class:`BackendCall` in the backend's own request format, receives the backend's record, and
returns the CAMARA model. No I/O, no clock of its own (``now`` is passed in, epoch seconds on
the operator's calendar clock), so the live gateway and the SimPy model run the same code.

Service chaining (documented degradation):

* ``verify_location`` asks the HLR first: an attached device can be paged for a fresh fix,
  so its position counts as current; a detached one has only its last fix, whose age the
  location server reports. If the HLR is down, the flow degrades to the location server's
  own age (never claims freshness it cannot know); if the location server is down, 503.
* ``create_session`` asks the HLR whether the device is attached for data (a QoS session on
  a device without data is ``422 SERVICE_NOT_APPLICABLE``) before the PCF creates it; if the
  HLR is down the check is skipped and the PCF decides alone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from operators.camara.common import DeviceResponse, Point
from operators.camara.device_status import (
    ConnectivityType,
    ReachabilityStatusResponse,
    RoamingStatusResponse,
)
from operators.camara.kyc_match import SCORED_FIELDS, KycMatchRequest, KycMatchResponse, MatchResult
from operators.camara.location import (
    LocationArea,
    RetrievedLocation,
    VerificationResult,
    VerifyCircle,
    VerifyLocationResponse,
)
from operators.camara.sim_swap import CheckSimSwapInfo, SimSwapInfo
from operators.core import (
    CreateQosSession,
    DeleteQosSession,
    ExtendQosSession,
    HlrRecord,
    KycRecord,
    MsisdnQuery,
    MsState,
    NetworkFunctionKind,
    PositionEstimate,
    QosSessionRecord,
    ReadQosSession,
)
from operators.core.hlr import country_of_mcc
from operators.errors import CamaraError

from .coverage import Coverage
from .flow import BackendCall, Flow
from .geometry import OverlapKind, circle_overlap, distance_m
from .kyc_matching import jaro_winkler, normalise

__all__ = [
    "check_sim_swap",
    "create_qos_session",
    "delete_qos_session",
    "extend_qos_session",
    "kyc_match",
    "reachability_status",
    "read_qos_session",
    "require_data_connectivity",
    "retrieve_location",
    "retrieve_sim_swap_date",
    "roaming_status",
    "verify_location",
    "verify_number",
]

HLR = NetworkFunctionKind.SIM_DATA_REGISTER
GMLC = NetworkFunctionKind.LOCATION_SERVER
PCF = NetworkFunctionKind.POLICY_FUNCTION
KYC = NetworkFunctionKind.KYC_REGISTER


def _hlr(msisdn: str) -> Flow[HlrRecord]:
    """The HLR's record. The flows that only read it yield the call themselves instead (a
    ``yield from`` here costs a generator and a delegation per call on the hottest paths)."""
    record: HlrRecord = yield BackendCall(HLR, MsisdnQuery(msisdn))
    return record


def _optional_hlr(msisdn: str) -> Flow[HlrRecord | None]:
    """The HLR record, or None when the HLR is refused or failing (the caller degrades)."""
    try:
        return (yield from _hlr(msisdn))
    except CamaraError as error:
        if error.status in (503, 504):
            return None
        raise


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# -- SIM swap ------------------------------------------------------------------------------


def check_sim_swap(msisdn: str, max_age_hours: int, now: float) -> Flow[CheckSimSwapInfo]:
    """Swapped when the HLR's last SIM change lies within ``maxAge`` hours before now."""
    record: HlrRecord = yield BackendCall(HLR, MsisdnQuery(msisdn))
    return CheckSimSwapInfo(swapped=now - record.sim_change_timestamp <= max_age_hours * 3600)


def retrieve_sim_swap_date(msisdn: str) -> Flow[SimSwapInfo]:
    """The HLR's SIM change time (activation when never swapped: unlimited monitoring)."""
    record: HlrRecord = yield BackendCall(HLR, MsisdnQuery(msisdn))
    return SimSwapInfo(latestSimChange=_at(record.sim_change_timestamp))


# -- device status -------------------------------------------------------------------------


def reachability_status(msisdn: str) -> Flow[ReachabilityStatusResponse]:
    """Attached means reachable; the GPRS and SMS attach flags give the connectivity list."""
    record: HlrRecord = yield BackendCall(HLR, MsisdnQuery(msisdn))
    if record.ms_state is not MsState.ATTACHED:
        return ReachabilityStatusResponse(reachable=False)
    connectivity = [ConnectivityType.DATA] if record.gprs_attached else []
    if record.sms_attached:
        connectivity.append(ConnectivityType.SMS)
    return ReachabilityStatusResponse(reachable=True, connectivity=connectivity)


def roaming_status(msisdn: str) -> Flow[RoamingStatusResponse]:
    """Roaming when the serving VLR's MCC is not the home network's; MCC → ISO country."""
    record: HlrRecord = yield BackendCall(HLR, MsisdnQuery(msisdn))
    if record.vlr_mcc == record.hplmn[:3]:
        return RoamingStatusResponse(roaming=False)
    country = country_of_mcc(record.vlr_mcc)
    return RoamingStatusResponse(
        roaming=True,
        countryCode=int(record.vlr_mcc),
        countryName=[country] if country else [],
    )


# -- number verification -------------------------------------------------------------------


def verify_number(
    authenticated_msisdn: str, phone_number: str | None, hashed: str | None
) -> Flow[bool]:
    """Compare the network-authenticated number with the claimed one (or its SHA-256).

    The NV authenticator bound the device address to this number when the token was issued;
    no backend call is needed here, but this stays a flow so both modes share it.
    """
    if phone_number is not None:
        return phone_number == authenticated_msisdn
    digest = hashlib.sha256(authenticated_msisdn.encode()).hexdigest()
    return (hashed or "").lower() == digest
    yield  # pragma: no cover - makes this a generator


# -- location ------------------------------------------------------------------------------


def _fix_age(estimate: PositionEstimate, hlr: HlrRecord | None, now: float) -> tuple[float, float]:
    """(age seconds, fix time) as the chained answer sees it; see the module docstring."""
    if hlr is not None and hlr.ms_state is MsState.ATTACHED:
        return 0.0, now
    return float(estimate.age_of_location), float(estimate.fix_timestamp)


def verify_location(
    msisdn: str,
    area: VerifyCircle,
    max_age: int | None,
    now: float,
    device: DeviceResponse | None = None,
    coverage: Coverage | None = None,
) -> Flow[VerifyLocationResponse]:
    """TRUE / FALSE / PARTIAL (+matchRate) from the position estimate against the circle;
    an area no cell of the network reaches (``coverage``; None: all) cannot be verified,
    and is refused before the device is looked for."""
    if coverage is not None and not coverage.reaches(
        area.center.latitude, area.center.longitude, area.radius
    ):
        raise CamaraError(
            422,
            "LOCATION_VERIFICATION.AREA_NOT_COVERED",
            "The requested area is outside this operator's network coverage.",
        )
    hlr = yield from _optional_hlr(msisdn)
    estimate: PositionEstimate = yield BackendCall(GMLC, MsisdnQuery(msisdn))
    age, fix_time = _fix_age(estimate, hlr, now)
    if max_age is not None and age > max_age:
        raise CamaraError(
            422,
            "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE",
            f"The location is {int(age)} s old, more than maxAge {max_age} s.",
        )
    d = distance_m(
        area.center.latitude, area.center.longitude, estimate.latitude, estimate.longitude
    )
    overlap = circle_overlap(d, max(estimate.uncertainty_radius, 1.0), area.radius)
    match_rate: int | None = None
    if overlap.kind is OverlapKind.INSIDE:
        result = VerificationResult.TRUE
    elif overlap.kind is OverlapKind.DISJOINT:
        result = VerificationResult.FALSE
    else:
        result = VerificationResult.PARTIAL
        match_rate = min(99, max(1, round(overlap.fraction * 100)))
    return VerifyLocationResponse(
        device=device,
        lastLocationTime=_at(fix_time),
        verificationResult=result,
        matchRate=match_rate,
    )


def retrieve_location(
    msisdn: str,
    max_age: int | None,
    max_surface: int | None,
    now: float,
    device: DeviceResponse | None = None,
) -> Flow[RetrievedLocation]:
    """The estimate as a circle, refusing what cannot meet maxAge or maxSurface."""
    hlr = yield from _optional_hlr(msisdn)
    estimate: PositionEstimate = yield BackendCall(GMLC, MsisdnQuery(msisdn))
    age, fix_time = _fix_age(estimate, hlr, now)
    if max_age is not None and age > max_age:
        raise CamaraError(
            422,
            "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_AGE",
            f"The location is {int(age)} s old, more than maxAge {max_age} s.",
        )
    radius = max(estimate.uncertainty_radius, 1.0)
    if max_surface is not None and math.pi * radius * radius > max_surface:
        raise CamaraError(
            422,
            "LOCATION_RETRIEVAL.UNABLE_TO_FULFILL_MAX_SURFACE",
            f"The location is known to {math.pi * radius * radius:.0f} m², more than maxSurface.",
        )
    return RetrievedLocation(
        lastLocationTime=_at(fix_time),
        area=LocationArea(
            center=Point(latitude=estimate.latitude, longitude=estimate.longitude), radius=radius
        ),
        device=device,
    )


# -- quality on demand ---------------------------------------------------------------------


def has_data_connectivity(msisdn: str) -> Flow[bool]:
    """Whether the device is attached for data, which QoD and QoS profiles need (unknown when
    the HLR is down: taken as attached, so an HLR outage refuses no one)."""
    hlr = yield from _optional_hlr(msisdn)
    return hlr is None or (hlr.ms_state is MsState.ATTACHED and hlr.gprs_attached)


def require_data_connectivity(msisdn: str) -> Flow[None]:
    """QoD applies only to a device attached for data (unknown when the HLR is down: allowed)."""
    if not (yield from has_data_connectivity(msisdn)):
        raise CamaraError(
            422,
            "SERVICE_NOT_APPLICABLE",
            "The service is not available for the provided identifier: no data connectivity.",
        )


def create_qos_session(msisdn: str, profile: str, duration: float) -> Flow[QosSessionRecord]:
    """HLR data attach check (skipped when the HLR is down), then the PCF creates the session."""
    yield from require_data_connectivity(msisdn)
    record: QosSessionRecord = yield BackendCall(PCF, CreateQosSession(msisdn, profile, duration))
    return record


def read_qos_session(pcf_session_id: str) -> Flow[QosSessionRecord]:
    record: QosSessionRecord = yield BackendCall(PCF, ReadQosSession(pcf_session_id))
    return record


def extend_qos_session(pcf_session_id: str, additional: float) -> Flow[QosSessionRecord]:
    record: QosSessionRecord = yield BackendCall(PCF, ExtendQosSession(pcf_session_id, additional))
    return record


def delete_qos_session(pcf_session_id: str) -> Flow[QosSessionRecord]:
    record: QosSessionRecord = yield BackendCall(PCF, DeleteQosSession(pcf_session_id))
    return record


# -- KYC match -----------------------------------------------------------------------------


_REGISTER_FIELDS: dict[str, Callable[[KycRecord], str]] = {
    "name": lambda record: f"{record.given_name} {record.family_name}",
    "givenName": lambda record: record.given_name,
    "familyName": lambda record: record.family_name,
    "address": lambda record: f"{record.street_name} {record.street_number}",
    "streetName": lambda record: record.street_name,
    "streetNumber": lambda record: record.street_number,
    "postalCode": lambda record: record.postal_code,
    "region": lambda record: record.region,
    "locality": lambda record: record.locality,
    "country": lambda record: record.country,
    "birthdate": lambda record: record.birthdate.isoformat(),
    "email": lambda record: record.email,
    "gender": lambda record: record.gender,
}
"""Claimed attribute -> how the register's record holds it (read only for the fields asked)."""


def _register_value(record: KycRecord, field: str) -> str | None:
    value = _REGISTER_FIELDS.get(field)
    return None if value is None else value(record)  # middle names, kana...: not held


def _compare(field: str, claimed: Any, held: str | None) -> tuple[MatchResult, int | None]:
    if held is None or held == "":
        return MatchResult.NOT_AVAILABLE, None
    text = claimed.isoformat() if hasattr(claimed, "isoformat") else str(claimed)
    if field == "postalCode":
        a, b = text.replace(" ", "").casefold(), held.replace(" ", "").casefold()
    elif field == "email":
        a, b = text.strip().casefold(), held.strip().casefold()
    else:
        a, b = normalise(text), normalise(held)
    if a == b:
        return MatchResult.TRUE, None
    score = round(jaro_winkler(a, b) * 100) if field in SCORED_FIELDS else None
    return MatchResult.FALSE, score


def refuse_empty_claim(claim: KycMatchRequest) -> None:
    """An empty body is 400 INVALID_ARGUMENT, before the device is looked for: two-legged it
    names no number either, and kyc-match.feature's 400.2 wants the empty body named."""
    if claim.phoneNumber is None and not claim.model_dump(exclude_none=True):
        raise CamaraError(
            400, "INVALID_ARGUMENT", "Client specified an invalid argument: an empty request body."
        )


def kyc_match(
    msisdn: str, claim: KycMatchRequest, *, require_id_document: bool = False
) -> Flow[KycMatchResponse]:
    """Compare every claimed attribute with the KYC register's record; only those asked."""
    refuse_empty_claim(claim)
    claimed = claim.model_dump(exclude_none=True, exclude={"phoneNumber"})
    if not claimed:
        raise CamaraError(
            400,
            "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION",
            "Indicated parameter combination is invalid: no attribute to match.",
        )
    if require_id_document and claim.idDocument is None:
        raise CamaraError(
            403,
            "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED",
            "The idDocument is required to perform the properties validation",
        )
    record: KycRecord = yield BackendCall(KYC, MsisdnQuery(msisdn))
    answer: dict[str, Any] = {}
    if claim.idDocument is not None:
        same = normalise(claim.idDocument) == normalise(record.id_document_number)
        if require_id_document and not same:
            raise CamaraError(
                403,
                "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH",
                "The idDocument needs to match the one associated with the provided phoneNumber",
            )
        answer["idDocumentMatch"] = MatchResult.TRUE if same else MatchResult.FALSE
        claimed.pop("idDocument")
    for field, value in claimed.items():
        result, score = _compare(field, value, _register_value(record, field))
        answer[f"{field}Match"] = result
        if score is not None:
            answer[f"{field}MatchScore"] = score
    return KycMatchResponse.model_validate(answer)
