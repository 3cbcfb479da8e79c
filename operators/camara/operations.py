"""The operation table: every CAMARA operation the operator serves, declared once.

Each row says what the official definition says (API, base path, operation id, method, path,
the ``security`` scopes) and what the operator does with it (the network functions it needs,
the purpose applications call it for, whether a successful call is billed, the service method
that answers it and its wire models). Routers, scope checks, the gateway's admission, the
aggregator's routes, the load test and the simulation's API mix all read this table, so a new
operation is one row here and a method on :class:`~operators.camara.services.CamaraServices`.

Whether a call needs the subscriber's consent is not a column: it follows from the legal
basis the operator's config gives the call's purpose (``needs_consent``), as it does live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pydantic import BaseModel

from operators.config import LegalBasis, OperatorConfig
from operators.core import NetworkFunctionKind

from .consent_info import RetrieveStatusRequestBody, RetrieveStatusResponseBody
from .correlator import PATTERN, SHORT_PATTERN
from .device_status import (
    ReachabilityStatusResponse,
    RequestReachabilityStatus,
    RoamingStatusRequest,
    RoamingStatusResponse,
)
from .kyc_match import KycMatchRequest, KycMatchResponse
from .location import (
    RetrievalLocationRequest,
    RetrievedLocation,
    VerifyLocationRequest,
    VerifyLocationResponse,
)
from .number_verification import (
    NumberVerificationMatchResponse,
    NumberVerificationRequestBody,
    NumberVerificationShareResponse,
)
from .qos_profiles import QosProfile, QosProfileDeviceRequest
from .quality_on_demand import (
    CreateSession,
    ExtendSessionDuration,
    RetrieveSessionsInput,
    SessionInfo,
)
from .sim_swap import CheckSimSwapInfo, CreateCheckSimSwap, CreateSimSwapDate, SimSwapInfo

__all__ = [
    "BASE_PATHS",
    "OPERATIONS",
    "WORKLOADS",
    "Operation",
    "ScopeAlternatives",
    "correlator_pattern",
    "needs_consent",
    "operation_at",
    "operation_named",
    "scopes_satisfied",
]

ScopeAlternatives = tuple[tuple[str, ...], ...]
"""The YAML's ``security`` list: the token must hold every scope of one alternative."""

HLR = NetworkFunctionKind.SIM_DATA_REGISTER
GMLC = NetworkFunctionKind.LOCATION_SERVER
PCF = NetworkFunctionKind.POLICY_FUNCTION
KYC = NetworkFunctionKind.KYC_REGISTER
NVA = NetworkFunctionKind.NV_AUTHENTICATOR

FRAUD: Final = "dpv:FraudPreventionAndDetection"
SERVICE: Final = "dpv:RequestedServiceProvision"
PERSONAL_SERVICE: Final = "dpv:ServiceProvision"
IDENTITY: Final = "dpv:IdentityVerification"


@dataclass(frozen=True, slots=True)
class Operation:
    """One CAMARA operation: its wire contract and how the operator serves and bills it."""

    api: str
    """The API's name, the first segment of its base path (``sim-swap``)."""
    base_path: str
    operation_id: str
    method: str
    path: str
    """Relative to ``base_path`` (``/sessions/{sessionId}``)."""
    scopes: ScopeAlternatives
    backends: tuple[NetworkFunctionKind, ...]
    """The network functions the integrator asks, in order (empty: answered from catalogue)."""
    purpose: str
    """The purpose the load test and the simulation call it for; its legal basis decides."""
    service: str
    """The :class:`~operators.camara.services.CamaraServices` method that answers it."""
    request: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    status: int = 200
    many: bool = False
    """The answer is a list of ``answer``."""
    out_of_range: bool = False
    """The YAML lists ``OUT_OF_RANGE`` among its 400 codes (range violations get that code)."""
    billable: bool = True
    """A successful call is metered, billed and settled (see ``is_billable`` in the gateway)."""
    network_authenticated: bool = False
    """Only a token whose subscriber the mobile network authenticated is answered (Number
    Verification: the authorization code flow or a TS.43 operator token, not a ``tel:`` hint)."""
    tag: str = ""
    correlator: re.Pattern[str] = PATTERN
    """The pattern the API's ``x-correlator`` header must match (its YAML's)."""

    @property
    def template(self) -> str:
        """The full path template, as FastAPI matches it (``/sim-swap/v2/check``)."""
        return self.base_path + self.path

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.template)


def _api(
    api: str,
    version: str,
    tag: str,
    *rows: tuple[str, str, str, dict[str, Any]],
    correlator: re.Pattern[str] = PATTERN,
) -> list[Operation]:
    base = f"/{api}/{version}"
    return [
        Operation(api=api, base_path=base, operation_id=op_id, method=method, path=path,
                  tag=tag, correlator=correlator, **fields)
        for op_id, method, path, fields in rows
    ]


_QOD_BACKENDS = (HLR, PCF)

OPERATIONS: Final[tuple[Operation, ...]] = (
    *_api(
        "sim-swap", "v2", "SIM Swap",
        ("checkSimSwap", "POST", "/check", {
            "scopes": (("sim-swap:check",), ("sim-swap",)), "backends": (HLR,),
            "purpose": FRAUD, "service": "check_sim_swap", "request": CreateCheckSimSwap,
            "answer": CheckSimSwapInfo, "out_of_range": True}),
        ("retrieveSimSwapDate", "POST", "/retrieve-date", {
            "scopes": (("sim-swap:retrieve-date",), ("sim-swap",)), "backends": (HLR,),
            "purpose": FRAUD, "service": "retrieve_sim_swap_date", "request": CreateSimSwapDate,
            "answer": SimSwapInfo, "out_of_range": True}),
    ),
    *_api(
        "number-verification", "v2", "Number Verification",
        ("phoneNumberVerify", "POST", "/verify", {
            "scopes": (("number-verification:verify",),), "backends": (NVA,),
            "purpose": FRAUD, "service": "verify_number",
            "request": NumberVerificationRequestBody,
            "answer": NumberVerificationMatchResponse, "network_authenticated": True}),
        ("phoneNumberShare", "GET", "/device-phone-number", {
            "scopes": (("number-verification:device-phone-number:read",),), "backends": (NVA,),
            "purpose": FRAUD, "service": "device_phone_number",
            "answer": NumberVerificationShareResponse, "network_authenticated": True}),
    ),
    *_api(
        "device-reachability-status", "v1", "Device Reachability Status",
        ("getReachabilityStatus", "POST", "/retrieve", {
            "scopes": (("device-reachability-status:read",),), "backends": (HLR,),
            "purpose": SERVICE, "service": "reachability_status",
            "request": RequestReachabilityStatus, "answer": ReachabilityStatusResponse}),
        correlator=SHORT_PATTERN,
    ),
    *_api(
        "device-roaming-status", "v1", "Device Roaming Status",
        ("getRoamingStatus", "POST", "/retrieve", {
            "scopes": (("device-roaming-status:read",),), "backends": (HLR,),
            "purpose": SERVICE, "service": "roaming_status", "request": RoamingStatusRequest,
            "answer": RoamingStatusResponse}),
        correlator=SHORT_PATTERN,
    ),
    *_api(
        "location-verification", "v3", "Location Verification",
        ("verifyLocation", "POST", "/verify", {
            "scopes": (("location-verification:verify",),), "backends": (HLR, GMLC),
            "purpose": FRAUD, "service": "verify_location", "request": VerifyLocationRequest,
            "answer": VerifyLocationResponse, "out_of_range": True}),
    ),
    *_api(
        "location-retrieval", "v0.5", "Location Retrieval",
        ("retrieveLocation", "POST", "/retrieve", {
            "scopes": (("location-retrieval:read",),), "backends": (GMLC,),
            "purpose": PERSONAL_SERVICE, "service": "retrieve_location",
            "request": RetrievalLocationRequest, "answer": RetrievedLocation}),
    ),
    *_api(
        "quality-on-demand", "v1", "Quality on Demand",
        ("createSession", "POST", "/sessions", {
            "scopes": (("quality-on-demand:sessions:create",),), "backends": _QOD_BACKENDS,
            "purpose": SERVICE, "service": "create_session", "request": CreateSession,
            "answer": SessionInfo, "status": 201, "out_of_range": True}),
        ("getSession", "GET", "/sessions/{sessionId}", {
            "scopes": (("quality-on-demand:sessions:read",),), "backends": (PCF,),
            "purpose": SERVICE, "service": "get_session", "answer": SessionInfo}),
        ("deleteSession", "DELETE", "/sessions/{sessionId}", {
            "scopes": (("quality-on-demand:sessions:delete",),), "backends": (PCF,),
            "purpose": SERVICE, "service": "delete_session", "status": 204}),
        ("extendQosSessionDuration", "POST", "/sessions/{sessionId}/extend", {
            "scopes": (("quality-on-demand:sessions:update",),), "backends": (PCF,),
            "purpose": SERVICE, "service": "extend_session", "request": ExtendSessionDuration,
            "answer": SessionInfo, "out_of_range": True}),
        ("retrieveSessionsByDevice", "POST", "/retrieve-sessions", {
            "scopes": (("quality-on-demand:sessions:retrieve-by-device",),),
            "backends": (PCF,), "purpose": SERVICE, "service": "retrieve_sessions",
            "request": RetrieveSessionsInput, "answer": SessionInfo, "many": True,
            "out_of_range": True}),
    ),
    *_api(
        "qos-profiles", "v1", "QoS Profiles",
        ("retrieveQoSProfiles", "POST", "/retrieve-qos-profiles", {
            "scopes": (("qos-profiles:read",),), "backends": (HLR,), "purpose": SERVICE,
            "service": "retrieve_qos_profiles", "request": QosProfileDeviceRequest,
            "answer": QosProfile, "many": True, "out_of_range": True}),
        ("getQosProfile", "GET", "/qos-profiles/{name}", {
            "scopes": (("qos-profiles:read",),), "backends": (), "purpose": SERVICE,
            "service": "get_qos_profile", "answer": QosProfile}),
    ),
    *_api(
        "consent-info", "v0.2", "Consent Info",
        ("retrieveStatus", "POST", "/retrieve", {
            "scopes": (("consent-info:retrieve",),), "backends": (), "purpose": FRAUD,
            "service": "retrieve_consent_status", "request": RetrieveStatusRequestBody,
            "answer": RetrieveStatusResponseBody, "billable": False}),
    ),
    *_api(
        "kyc-match", "v0.3", "KYC Match",
        ("KYC_Match", "POST", "/match", {
            "scopes": (("kyc-match:match",),), "backends": (KYC,), "purpose": IDENTITY,
            "service": "kyc_match", "request": KycMatchRequest, "answer": KycMatchResponse}),
        correlator=SHORT_PATTERN,
    ),
)

_BY_ID: Final = MappingProxyType({op.operation_id: op for op in OPERATIONS})
_BY_ROUTE: Final = MappingProxyType({op.key: op for op in OPERATIONS})

_CORRELATORS: Final = MappingProxyType({op.api: op.correlator for op in OPERATIONS})

BASE_PATHS: Final = MappingProxyType({op.api: op.base_path for op in OPERATIONS})
"""API name -> its base path with the major version (``/sim-swap/v2``)."""

WORKLOADS: Final = MappingProxyType(
    {
        "sim-swap.check": ("checkSimSwap",),
        "sim-swap.retrieve-date": ("retrieveSimSwapDate",),
        "number-verification.verify": ("phoneNumberVerify",),
        "device-reachability-status": ("getReachabilityStatus",),
        "device-roaming-status": ("getRoamingStatus",),
        "location-verification.verify": ("verifyLocation",),
        "location-retrieval.retrieve": ("retrieveLocation",),
        "kyc-match.match": ("KYC_Match",),
        "quality-on-demand.session": ("createSession", "deleteSession"),
    }
)
"""The units of work scenarios and load mixes name, each a sequence of operations (a QoD
session is created and deleted). The first operation is the one the gateway admits."""


def operation_named(operation_id: str) -> Operation:
    """The row of ``operation_id``; KeyError for an operation the operator does not serve."""
    return _BY_ID[operation_id]


def operation_at(method: str, template: str) -> Operation | None:
    """The operation a matched route serves (``template`` with the base path), if any."""
    return _BY_ROUTE.get((method.upper(), template))


def correlator_pattern(path: str) -> re.Pattern[str]:
    """The ``x-correlator`` pattern for a request to ``path``: its API's (the first segment),
    or CAMARA_common's for a path outside the table (the identity server's, say), so the
    gateway can refuse a malformed correlator before it routes the call."""
    return _CORRELATORS.get(path.lstrip("/").split("/", 1)[0], PATTERN)


def scopes_satisfied(operation: Operation | None, granted: Iterable[str]) -> bool:
    """Whether ``granted`` covers one alternative of the operation (unknown operation: False)."""
    if operation is None:
        return False
    held = set(granted)
    return any(held.issuperset(alternative) for alternative in operation.scopes)


def needs_consent(config: OperatorConfig, purpose: str) -> bool:
    """Whether processing for ``purpose`` needs a consent record at this operator."""
    policy = config.purpose(purpose)
    return policy is not None and policy.legal_basis is LegalBasis.CONSENT
