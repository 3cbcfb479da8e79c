"""FastAPI routers for the CAMARA APIs, built per operator by :func:`build_camara_routers`.

Each endpoint reads its body itself (:func:`~operators.camara.common.parse_body`) so that a
malformed request gets the CAMARA 400 its definition names even in an app that installed no
handler, then calls the :class:`~operators.camara.services.CamaraServices` with the call context
and renders the CAMARA answer (or :class:`~operators.errors.CamaraError`), echoing
``x-correlator``.

The call context comes from the dependency :func:`~operators.camara.context.get_call_context`;
the gateway overrides it (``app.dependency_overrides[get_call_context] = ...``), or passes its
own dependency as ``context_dependency``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from operators.errors import CamaraError

from .common import CamaraModel, ErrorInfo, parse_body
from .context import CallContext, get_call_context
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
from .scopes import BASE_PATHS
from .services import CamaraServices
from .sim_swap import CheckSimSwapInfo, CreateCheckSimSwap, CreateSimSwapDate, SimSwapInfo

__all__ = ["build_camara_routers", "render_error"]

_CORRELATOR = re.compile(r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$")
Answer = CamaraModel | list[Any] | None


_ERRORS = (400, 401, 403, 404, 409, 422, 429, 503, 504)
"""Every status the gateway or an API may answer with a CAMARA error body."""


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` substituted in place (the models are acyclic),
    so it can sit inside an OpenAPI operation without components of its own."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def _doc(
    request: type[BaseModel] | None,
    answer: type[BaseModel] | None,
    status: int = 200,
    *,
    many: bool = False,
) -> dict[str, Any]:
    """OpenAPI for an endpoint that reads its raw body: the request schema the handler
    enforces, the success answer, and the CAMARA error body for every error status, so the
    published document is honest and a schema-driven fuzzer can build requests from it."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorInfo, "description": "CAMARA error"} for code in _ERRORS
    }
    if answer is None:
        responses[status] = {"description": "No content"}
    else:
        schema = _inline(answer.model_json_schema(mode="serialization"))
        if many:
            schema = {"type": "array", "items": schema}
        responses[status] = {
            "description": "Success",
            "content": {"application/json": {"schema": schema}},
        }
    extra: dict[str, Any] = {}
    if request is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _inline(request.model_json_schema())}},
        }
    return {"responses": responses, "openapi_extra": extra, "status_code": status}


def _correlator(request: Request, ctx: CallContext | None) -> str | None:
    value = request.headers.get("x-correlator")
    if value is not None and _CORRELATOR.match(value):
        return value
    return ctx.correlator if ctx is not None else None


def render_error(error: CamaraError, correlator: str | None = None) -> JSONResponse:
    """The one rendering of a CAMARA error: its body, its status, x-correlator echoed."""
    headers = dict(error.headers)
    if correlator:
        headers["x-correlator"] = correlator
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _respond(
    request: Request,
    ctx: CallContext,
    call: Callable[[], Awaitable[Answer]],
    status: int = 200,
) -> Response:
    correlator = _correlator(request, ctx)
    headers = {"x-correlator": correlator} if correlator else {}
    try:
        answer = await call()
    except CamaraError as error:
        return render_error(error, correlator)
    if answer is None:
        return Response(status_code=204, headers=headers)
    body = [item.wire() for item in answer] if isinstance(answer, list) else answer.wire()
    return JSONResponse(body, status_code=status, headers=headers)


def _session_id(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError as exc:
        raise CamaraError(400, "INVALID_ARGUMENT", "sessionId must be a UUID") from exc


def build_camara_routers(
    services: CamaraServices,
    context_dependency: Callable[..., Any] = get_call_context,
) -> list[APIRouter]:
    """One router per API, each with its base path; mount them all on the gateway's app."""
    Ctx = Depends(context_dependency)  # noqa: N806 - a dependency marker, not a variable

    async def body(request: Request, model: type[BaseModel], out_of_range: bool) -> Any:
        return parse_body(model, await request.body(), out_of_range=out_of_range)

    sim_swap = APIRouter(prefix=BASE_PATHS["sim-swap"], tags=["SIM Swap"])

    @sim_swap.post(
        "/check",
        operation_id="checkSimSwap",
        **_doc(CreateCheckSimSwap, CheckSimSwapInfo),
    )
    async def check_sim_swap(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            return await services.check_sim_swap(ctx, await body(request, CreateCheckSimSwap, True))

        return await _respond(request, ctx, call)

    @sim_swap.post(
        "/retrieve-date",
        operation_id="retrieveSimSwapDate",
        **_doc(CreateSimSwapDate, SimSwapInfo),
    )
    async def retrieve_date(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, CreateSimSwapDate, True)
            return await services.retrieve_sim_swap_date(ctx, parsed)

        return await _respond(request, ctx, call)

    nv = APIRouter(prefix=BASE_PATHS["number-verification"], tags=["Number Verification"])

    @nv.post(
        "/verify",
        operation_id="phoneNumberVerify",
        **_doc(NumberVerificationRequestBody, NumberVerificationMatchResponse),
    )
    async def verify_number(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, NumberVerificationRequestBody, False)
            return await services.verify_number(ctx, parsed)

        return await _respond(request, ctx, call)

    @nv.get(
        "/device-phone-number",
        operation_id="phoneNumberShare",
        **_doc(None, NumberVerificationShareResponse),
    )
    async def device_phone_number(request: Request, ctx: CallContext = Ctx) -> Response:
        return await _respond(request, ctx, lambda: services.device_phone_number(ctx))

    reachability = APIRouter(
        prefix=BASE_PATHS["device-reachability-status"], tags=["Device Reachability Status"]
    )

    @reachability.post(
        "/retrieve",
        operation_id="getReachabilityStatus",
        **_doc(RequestReachabilityStatus, ReachabilityStatusResponse),
    )
    async def reachability_status(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, RequestReachabilityStatus, False)
            return await services.reachability_status(ctx, parsed)

        return await _respond(request, ctx, call)

    roaming = APIRouter(prefix=BASE_PATHS["device-roaming-status"], tags=["Device Roaming Status"])

    @roaming.post(
        "/retrieve",
        operation_id="getRoamingStatus",
        **_doc(RoamingStatusRequest, RoamingStatusResponse),
    )
    async def roaming_status(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, RoamingStatusRequest, False)
            return await services.roaming_status(ctx, parsed)

        return await _respond(request, ctx, call)

    verification = APIRouter(
        prefix=BASE_PATHS["location-verification"], tags=["Location Verification"]
    )

    @verification.post(
        "/verify",
        operation_id="verifyLocation",
        **_doc(VerifyLocationRequest, VerifyLocationResponse),
    )
    async def verify_location(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, VerifyLocationRequest, True)
            return await services.verify_location(ctx, parsed)

        return await _respond(request, ctx, call)

    retrieval = APIRouter(prefix=BASE_PATHS["location-retrieval"], tags=["Location Retrieval"])

    @retrieval.post(
        "/retrieve",
        operation_id="retrieveLocation",
        **_doc(RetrievalLocationRequest, RetrievedLocation),
    )
    async def retrieve_location(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, RetrievalLocationRequest, False)
            return await services.retrieve_location(ctx, parsed)

        return await _respond(request, ctx, call)

    qod = APIRouter(prefix=BASE_PATHS["quality-on-demand"], tags=["Quality on Demand"])

    @qod.post(
        "/sessions",
        operation_id="createSession",
        **_doc(CreateSession, SessionInfo, 201),
    )
    async def create_session(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            return await services.create_session(ctx, await body(request, CreateSession, True))

        return await _respond(request, ctx, call, status=201)

    @qod.get("/sessions/{sessionId}", operation_id="getSession", **_doc(None, SessionInfo))
    async def get_session(sessionId: str, request: Request, ctx: CallContext = Ctx) -> Response:  # noqa: N803
        return await _respond(
            request, ctx, lambda: services.get_session(ctx, _session_id(sessionId))
        )

    @qod.delete("/sessions/{sessionId}", operation_id="deleteSession", **_doc(None, None, 204))
    async def delete_session(sessionId: str, request: Request, ctx: CallContext = Ctx) -> Response:  # noqa: N803
        return await _respond(
            request, ctx, lambda: services.delete_session(ctx, _session_id(sessionId))
        )

    @qod.post(
        "/sessions/{sessionId}/extend",
        operation_id="extendQosSessionDuration",
        **_doc(ExtendSessionDuration, SessionInfo),
    )
    async def extend_session(sessionId: str, request: Request, ctx: CallContext = Ctx) -> Response:  # noqa: N803
        async def call() -> Answer:
            session_id = _session_id(sessionId)
            parsed = await body(request, ExtendSessionDuration, True)
            return await services.extend_session(ctx, session_id, parsed)

        return await _respond(request, ctx, call)

    @qod.post(
        "/retrieve-sessions",
        operation_id="retrieveSessionsByDevice",
        **_doc(RetrieveSessionsInput, SessionInfo, many=True),
    )
    async def retrieve_sessions(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, RetrieveSessionsInput, True)
            return await services.retrieve_sessions(ctx, parsed)

        return await _respond(request, ctx, call)

    profiles = APIRouter(prefix=BASE_PATHS["qos-profiles"], tags=["QoS Profiles"])

    @profiles.post(
        "/retrieve-qos-profiles",
        operation_id="retrieveQoSProfiles",
        **_doc(QosProfileDeviceRequest, QosProfile, many=True),
    )
    async def retrieve_profiles(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            parsed = await body(request, QosProfileDeviceRequest, True)
            return await services.retrieve_qos_profiles(ctx, parsed)

        return await _respond(request, ctx, call)

    @profiles.get("/qos-profiles/{name}", operation_id="getQosProfile", **_doc(None, QosProfile))
    async def get_profile(name: str, request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            if not re.fullmatch(r"[a-zA-Z0-9_.-]{3,256}", name):
                raise CamaraError(400, "INVALID_ARGUMENT", "name is not a QoS profile name")
            return await services.get_qos_profile(ctx, name)

        return await _respond(request, ctx, call)

    kyc = APIRouter(prefix=BASE_PATHS["kyc-match"], tags=["KYC Match"])

    @kyc.post("/match", operation_id="KYC_Match", **_doc(KycMatchRequest, KycMatchResponse))
    async def kyc_match(request: Request, ctx: CallContext = Ctx) -> Response:
        async def call() -> Answer:
            return await services.kyc_match(ctx, await body(request, KycMatchRequest, False))

        return await _respond(request, ctx, call)

    return [sim_swap, nv, reachability, roaming, verification, retrieval, qod, profiles, kyc]
