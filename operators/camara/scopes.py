"""Which scopes each CAMARA operation needs, as data the gateway authorises against.

Keys are ``(METHOD, path template)`` with the API's base path included, exactly the template
FastAPI matched (``request.scope["route"].path``). Values are alternatives taken from the
YAML's ``security`` list: the token must hold every scope of at least one alternative (SIM
Swap accepts ``sim-swap:check`` or the API-wide ``sim-swap``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BASE_PATHS", "OPERATION_SCOPES", "scopes_satisfied"]

BASE_PATHS: dict[str, str] = {
    "sim-swap": "/sim-swap/v2",
    "number-verification": "/number-verification/v2",
    "device-reachability-status": "/device-reachability-status/v1",
    "device-roaming-status": "/device-roaming-status/v1",
    "location-verification": "/location-verification/v3",
    "location-retrieval": "/location-retrieval/v0.5",
    "quality-on-demand": "/quality-on-demand/v1",
    "qos-profiles": "/qos-profiles/v1",
    "kyc-match": "/kyc-match/v0.3",
}

ScopeAlternatives = tuple[tuple[str, ...], ...]

_QOD = BASE_PATHS["quality-on-demand"]
OPERATION_SCOPES: dict[tuple[str, str], ScopeAlternatives] = {
    ("POST", "/sim-swap/v2/check"): (("sim-swap:check",), ("sim-swap",)),
    ("POST", "/sim-swap/v2/retrieve-date"): (("sim-swap:retrieve-date",), ("sim-swap",)),
    ("POST", "/number-verification/v2/verify"): (("number-verification:verify",),),
    ("GET", "/number-verification/v2/device-phone-number"): (
        ("number-verification:device-phone-number:read",),
    ),
    ("POST", "/device-reachability-status/v1/retrieve"): (("device-reachability-status:read",),),
    ("POST", "/device-roaming-status/v1/retrieve"): (("device-roaming-status:read",),),
    ("POST", "/location-verification/v3/verify"): (("location-verification:verify",),),
    ("POST", "/location-retrieval/v0.5/retrieve"): (("location-retrieval:read",),),
    ("POST", f"{_QOD}/sessions"): (("quality-on-demand:sessions:create",),),
    ("GET", f"{_QOD}/sessions/{{sessionId}}"): (("quality-on-demand:sessions:read",),),
    ("DELETE", f"{_QOD}/sessions/{{sessionId}}"): (("quality-on-demand:sessions:delete",),),
    ("POST", f"{_QOD}/sessions/{{sessionId}}/extend"): (("quality-on-demand:sessions:update",),),
    ("POST", f"{_QOD}/retrieve-sessions"): (("quality-on-demand:sessions:retrieve-by-device",),),
    ("POST", "/qos-profiles/v1/retrieve-qos-profiles"): (("qos-profiles:read",),),
    ("GET", "/qos-profiles/v1/qos-profiles/{name}"): (("qos-profiles:read",),),
    ("POST", "/kyc-match/v0.3/match"): (("kyc-match:match",),),
}


def scopes_satisfied(method: str, path_template: str, granted: Iterable[str]) -> bool:
    """Whether ``granted`` covers one alternative of the operation (unknown operation: False)."""
    alternatives = OPERATION_SCOPES.get((method.upper(), path_template))
    if alternatives is None:
        return False
    held = set(granted)
    return any(held.issuperset(alternative) for alternative in alternatives)
