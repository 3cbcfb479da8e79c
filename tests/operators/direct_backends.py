"""Shared fixtures: a fresh subscriber base, an integrator over direct backends, an app around it.

Imported by the conftest of the CAMARA and integrator tests, which both need them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from operators.camara import CallContext, build_camara_routers, get_call_context
from operators.config import example_operator
from operators.core import (
    Hlr,
    KycRegister,
    LocationServer,
    NetworkFunctionKind,
    NvAuthenticator,
    PolicyFunction,
)
from operators.integrator import GuardedExecutor, Integrator
from operators.storage import Database
from operators.subscriber_base import SubscriberBase


class Direct:
    """A network function with no service time: the handler's answer, at once."""

    def __init__(self, handler: Callable[[Any], Any]) -> None:
        self.handler = handler
        self.down = False

    async def call(self, request: Any) -> Any:
        if self.down:
            from operators.core import BackendUnavailable

            raise BackendUnavailable("test", "down")
        return self.handler(request)


@pytest.fixture
def base() -> SubscriberBase:
    return SubscriberBase(example_operator(), Database())


@pytest.fixture
def functions(base: SubscriberBase) -> dict[NetworkFunctionKind, Direct]:
    K = NetworkFunctionKind  # noqa: N806
    return {
        K.SIM_DATA_REGISTER: Direct(Hlr(base)),
        K.LOCATION_SERVER: Direct(LocationServer(base)),
        K.POLICY_FUNCTION: Direct(PolicyFunction(base)),
        K.KYC_REGISTER: Direct(KycRegister(base)),
        K.NV_AUTHENTICATOR: Direct(NvAuthenticator(base)),
    }


@pytest.fixture
def integrator(base: SubscriberBase, functions: dict[NetworkFunctionKind, Direct]) -> Integrator:
    return Integrator(base, GuardedExecutor(functions), calendar=base.clock)


@pytest.fixture
def context() -> dict[str, CallContext]:
    """Mutable holder: a test sets ``context["ctx"]`` to change who calls."""
    return {"ctx": CallContext(client_id="app-1")}


@pytest.fixture
def client(integrator: Integrator, context: dict[str, CallContext]) -> httpx.AsyncClient:
    app = FastAPI()
    for router in build_camara_routers(integrator):
        app.include_router(router)
    app.dependency_overrides[get_call_context] = lambda: context["ctx"]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://op")
