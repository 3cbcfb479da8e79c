"""The operator's network core, described once and realised live with asyncio.

The description (:mod:`.description`) and the per-call decision (:class:`ServiceModel`) are
shared with the SimPy realisation in :mod:`sim.tiers.network_function`; the handlers answer
each function's own record format from the operator's subscriber base.
"""

from .description import (
    ConstantServiceTime,
    CoreSpec,
    EmpiricalServiceTime,
    ExponentialServiceTime,
    Faults,
    LognormalServiceTime,
    NetworkFunctionKind,
    NetworkFunctionSpec,
    ServiceTime,
)
from .errors import (
    BackendBusy,
    BackendError,
    BackendFailure,
    BackendUnavailable,
    SessionUnknown,
    SubscriberUnknown,
)
from .hlr import Hlr
from .kyc_register import KycRegister
from .live import LiveNetworkFunction
from .location_server import LocationServer
from .nv_authenticator import NvAuthenticator
from .occupancy import Occupancy, OccupancySnapshot
from .policy_function import PolicyFunction
from .records import (
    CreateQosSession,
    DeleteQosSession,
    ExtendQosSession,
    HlrRecord,
    IpQuery,
    KycRecord,
    MsisdnQuery,
    MsState,
    NvBinding,
    PcfRequest,
    PositionEstimate,
    QosSessionRecord,
    QosSessionState,
    ReadQosSession,
)
from .service_model import Draw, Outcome, ServiceModel

__all__ = [
    "BackendBusy",
    "BackendError",
    "BackendFailure",
    "BackendUnavailable",
    "ConstantServiceTime",
    "CoreSpec",
    "CreateQosSession",
    "DeleteQosSession",
    "Draw",
    "EmpiricalServiceTime",
    "ExponentialServiceTime",
    "ExtendQosSession",
    "Faults",
    "Hlr",
    "HlrRecord",
    "IpQuery",
    "KycRecord",
    "KycRegister",
    "LiveNetworkFunction",
    "LocationServer",
    "LognormalServiceTime",
    "MsState",
    "MsisdnQuery",
    "NetworkFunctionKind",
    "NetworkFunctionSpec",
    "NvAuthenticator",
    "NvBinding",
    "Occupancy",
    "OccupancySnapshot",
    "Outcome",
    "PcfRequest",
    "PolicyFunction",
    "PositionEstimate",
    "QosSessionRecord",
    "QosSessionState",
    "ReadQosSession",
    "ServiceModel",
    "ServiceTime",
    "SessionUnknown",
    "SubscriberUnknown",
]
