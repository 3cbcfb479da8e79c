"""The applications a load test registers, over each party's admin API, before it runs.

``ogsim up`` registers one demo application at the aggregator (the aggregator user uses
it); the applications that call operators directly are registered here, fresh for each
Locust process and test, at every operator (``POST /oauth/admin/clients``, private_key_jwt
with a new P-256 key), and subscribed to the plan their role calls for
(``PUT /admin/subscriptions/{client}/{api}``): the enterprise plan for well-behaved ones, the
free plan for the misbehaving one, so that it is throttled (and, only when a run asks for it,
the saturating calibration load on the enterprise plan). The aggregator's own client at
each operator is subscribed to the enterprise plan for the APIs it forwards, so that a run
measures the federation rather than the default plan's rate limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import ECKey

from .federation_view import ADMIN_SECRET, Descriptor
from .operations import scopes_of

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
FRAUD = "dpv:FraudPreventionAndDetection"
SERVICE = "dpv:RequestedServiceProvision"


@dataclass(frozen=True)
class ApplicationRole:
    """What an application of one kind may ask for, and on which plan it calls."""

    role: str
    scope: str
    purposes: tuple[str, ...]
    grant_types: tuple[str, ...]
    apis: tuple[str, ...]
    plan: str


ROLES: dict[str, ApplicationRole] = {
    "antifraud": ApplicationRole(
        "antifraud",
        scopes_of("checkSimSwap", "retrieveSimSwapDate"),
        (FRAUD,),
        ("client_credentials", CIBA_GRANT),
        ("sim-swap",),
        "enterprise",
    ),
    "location": ApplicationRole(
        "location",
        scopes_of("verifyLocation", "retrieveLocation"),
        (SERVICE,),
        ("client_credentials",),
        ("location-verification", "location-retrieval"),
        "enterprise",
    ),
    "qod": ApplicationRole(
        "qod",
        scopes_of("createSession", "getSession", "extendQosSessionDuration", "deleteSession"),
        (SERVICE,),
        ("client_credentials",),
        ("quality-on-demand",),
        "enterprise",
    ),
    "greedy": ApplicationRole(
        "greedy",
        scopes_of("getReachabilityStatus"),
        (SERVICE,),
        ("client_credentials",),
        ("device-reachability-status",),
        "free",
    ),
    "saturating": ApplicationRole(
        "saturating",
        scopes_of("getReachabilityStatus"),
        (SERVICE,),
        ("client_credentials",),
        ("device-reachability-status",),
        "enterprise",
    ),
}
OPTIONAL_ROLES = frozenset({"saturating"})
"""Registered only for a run that has users of them (calibration's saturating load)."""

AGGREGATOR_APIS = (
    "sim-swap",
    "device-reachability-status",
    "device-roaming-status",
    "location-verification",
)


@dataclass(frozen=True)
class Credentials:
    """One registered application at one operator."""

    client_id: str
    operator: str
    issuer: str
    private_jwk: dict[str, Any]
    role: ApplicationRole


def client_id_for(run_id: str, role: str, node: str) -> str:
    return f"lt-{run_id}-{role}-{node}"[:64]


def register(
    descriptor: Descriptor,
    http: httpx.Client,
    *,
    run_id: str,
    node: str,
    roles: list[str] | None = None,
    admin_secret: str = ADMIN_SECRET,
) -> dict[tuple[str, str], Credentials]:
    """Register every role at every operator; (role, operator) -> credentials."""
    headers = {"Authorization": f"Bearer {admin_secret}"}
    registered: dict[tuple[str, str], Credentials] = {}
    for name in roles or list(ROLES):
        role = ROLES[name]
        for operator in descriptor.operators:
            key = ECKey.generate_key("P-256", private=True, auto_kid=True)
            client_id = client_id_for(run_id, name, node)
            response = http.post(
                f"{operator.issuer}/admin/clients",
                headers=headers,
                json={
                    "client_id": client_id,
                    "client_name": f"ogsim load test {name}",
                    "jwks": {"keys": [dict(key.as_dict(private=False))]},
                    "grant_types": list(role.grant_types),
                    "scope": role.scope,
                    "purposes": list(role.purposes),
                },
            )
            if response.status_code not in (200, 201):
                raise RuntimeError(f"registering {client_id} at {operator.id}: {response.text}")
            for api in role.apis:
                subscribe(http, operator.api_root, client_id, api, role.plan, headers)
            registered[(name, operator.id)] = Credentials(
                client_id, operator.id, operator.issuer, dict(key.as_dict(private=True)), role
            )
    return registered


def subscribe(
    http: httpx.Client,
    api_root: str,
    client_id: str,
    api: str,
    plan: str,
    headers: dict[str, str],
) -> None:
    response = http.put(
        f"{api_root}/admin/subscriptions/{client_id}/{api}", headers=headers, json={"plan": plan}
    )
    if response.status_code != 200:
        raise RuntimeError(f"subscribing {client_id} to {plan} for {api}: {response.text}")


def subscribe_aggregator(
    descriptor: Descriptor, http: httpx.Client, admin_secret: str = ADMIN_SECRET
) -> None:
    """The aggregator's client at each operator on the enterprise plan for what it forwards."""
    if descriptor.aggregator is None:
        return
    headers = {"Authorization": f"Bearer {admin_secret}"}
    for operator in descriptor.operators:
        for api in AGGREGATOR_APIS:
            subscribe(http, operator.api_root, descriptor.aggregator.id, api, "enterprise", headers)


def usage_snapshot(
    descriptor: Descriptor, http: httpx.Client, admin_secret: str = ADMIN_SECRET
) -> dict[str, list[dict[str, Any]]]:
    """Every operator's metered usage now (``GET /admin/usage``), by operator id."""
    headers = {"Authorization": f"Bearer {admin_secret}"}
    snapshot = {}
    for operator in descriptor.operators:
        response = http.get(f"{operator.api_root}/admin/usage", headers=headers)
        response.raise_for_status()
        snapshot[operator.id] = response.json()
    return snapshot
