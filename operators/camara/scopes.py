"""Which scopes each CAMARA operation needs, keyed by route: a view of the operation table.

Keys are ``(METHOD, path template)`` with the API's base path included, exactly the template
FastAPI matched (``request.scope["route"].path``); values are the YAML's ``security``
alternatives (SIM Swap accepts ``sim-swap:check`` or the API-wide ``sim-swap``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from .operations import BASE_PATHS, OPERATIONS

__all__ = ["ALL_SCOPES", "BASE_PATHS", "OPERATION_SCOPES"]

OPERATION_SCOPES: Final = MappingProxyType({op.key: op.scopes for op in OPERATIONS})

ALL_SCOPES: Final = frozenset(
    scope for alternatives in OPERATION_SCOPES.values() for alt in alternatives for scope in alt
)
"""Every API scope some operation accepts (what a client registered for everything holds)."""

