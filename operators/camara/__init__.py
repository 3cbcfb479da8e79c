"""The CAMARA API layer: wire models, device identification rules, scopes and routers.

What other packages use: the operation table (:data:`OPERATIONS`, :data:`WORKLOADS`) and its
scope check, :func:`build_camara_routers` (mounted by the gateway), :class:`CallContext` and
the :func:`get_call_context` dependency the gateway overrides, :class:`CamaraServices`
(implemented by the integrator) and :func:`resolve_device`.
"""

from operators.camara.common import (
    Device,
    DeviceDirectory,
    DeviceResponse,
    IdentifierRules,
    Point,
    ResolvedDevice,
    parse_body,
    resolve_device,
)
from operators.camara.context import CallContext, get_call_context
from operators.camara.correlator import HEADER as CORRELATOR_HEADER
from operators.camara.correlator import (
    IDEMPOTENCY_HEADER,
    correlator_for,
    echoable,
    idempotency_key,
    new_correlator,
    render_error,
)
from operators.camara.correlator import PATTERN as CORRELATOR_PATTERN
from operators.camara.kyc_match import KycMatchRequest
from operators.camara.location import VerifyCircle
from operators.camara.operations import (
    BASE_PATHS,
    OPERATIONS,
    WORKLOADS,
    Operation,
    correlator_pattern,
    needs_consent,
    operation_at,
    operation_named,
    scopes_satisfied,
)
from operators.camara.routers import build_camara_routers
from operators.camara.scopes import ALL_SCOPES, OPERATION_SCOPES
from operators.camara.services import CamaraServices

__all__ = [
    "ALL_SCOPES",
    "BASE_PATHS",
    "CORRELATOR_HEADER",
    "CORRELATOR_PATTERN",
    "IDEMPOTENCY_HEADER",
    "OPERATIONS",
    "OPERATION_SCOPES",
    "WORKLOADS",
    "CallContext",
    "CamaraServices",
    "Device",
    "DeviceDirectory",
    "DeviceResponse",
    "IdentifierRules",
    "KycMatchRequest",
    "Operation",
    "Point",
    "ResolvedDevice",
    "VerifyCircle",
    "build_camara_routers",
    "correlator_for",
    "correlator_pattern",
    "echoable",
    "get_call_context",
    "idempotency_key",
    "needs_consent",
    "new_correlator",
    "operation_at",
    "operation_named",
    "parse_body",
    "render_error",
    "resolve_device",
    "scopes_satisfied",
]
