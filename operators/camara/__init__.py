"""The CAMARA API layer: wire models, device identification rules, scopes and routers.

What other packages use: :func:`build_camara_routers` (mounted by the gateway),
:class:`CallContext` and the :func:`get_call_context` dependency the gateway overrides,
:data:`OPERATION_SCOPES` for authorisation, :class:`CamaraServices` (implemented by the
integrator) and :func:`resolve_device`.
"""

from operators.camara.common import (
    Device,
    DeviceDirectory,
    DeviceResponse,
    IdentifierRules,
    ResolvedDevice,
    parse_body,
    resolve_device,
)
from operators.camara.context import CallContext, get_call_context
from operators.camara.routers import build_camara_routers, render_error
from operators.camara.scopes import BASE_PATHS, OPERATION_SCOPES, scopes_satisfied
from operators.camara.services import CamaraServices

__all__ = [
    "BASE_PATHS",
    "OPERATION_SCOPES",
    "CallContext",
    "CamaraServices",
    "Device",
    "DeviceDirectory",
    "DeviceResponse",
    "IdentifierRules",
    "ResolvedDevice",
    "build_camara_routers",
    "get_call_context",
    "parse_body",
    "render_error",
    "resolve_device",
    "scopes_satisfied",
]
