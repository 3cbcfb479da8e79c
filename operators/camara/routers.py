"""FastAPI routers for the CAMARA APIs, built per operator by :func:`build_camara_routers`.

Every route is a row of the operation table (:mod:`operators.camara.operations`) served by
one endpoint shape: path parameters checked, the body read and validated by the endpoint
itself (:func:`~operators.camara.common.parse_body`, so a malformed request gets the CAMARA
400 its definition names even in an app that installed no handler), the row's
:class:`~operators.camara.services.CamaraServices` method called with the call context, and
the CAMARA answer (or :class:`~operators.errors.CamaraError`) rendered, echoing
``x-correlator``.

The call context comes from the dependency :func:`~operators.camara.context.get_call_context`;
a test overrides it (``app.dependency_overrides[get_call_context] = ...``), or the gateway
passes its own as ``context_dependency``: an ``async`` function of the request alone. Such a
route's handler awaits it directly (:class:`_DirectRoute`), so the hot path pays for no FastAPI
dependency solving; the route keeps FastAPI's routing and its OpenAPI operation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from operators.errors import CamaraError

from .common import NOT_PARSED, CamaraModel, ErrorInfo, parse_body
from .context import CallContext, get_call_context
from .correlator import HEADER, echoable, render_error
from .json_body import PARSED_BODY
from .operations import OPERATIONS, Operation
from .services import CamaraServices

__all__ = ["build_camara_routers"]

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
    echoed = echoable(request.headers.get(HEADER))
    return echoed if echoed is not None else (ctx.correlator if ctx is not None else None)


_JSON = "application/json"


async def _respond(
    request: Request,
    ctx: CallContext,
    call: Callable[[], Awaitable[Answer]],
    status: int = 200,
) -> Response:
    correlator = _correlator(request, ctx)
    headers = {HEADER: correlator} if correlator else None
    try:
        answer = await call()
    except CamaraError as error:
        return render_error(error, correlator)
    if answer is None:
        return Response(status_code=204, headers=headers)
    body = [item.wire() for item in answer] if isinstance(answer, list) else answer.wire()
    # orjson writes what JSONResponse would (compact UTF-8 JSON), several times faster
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=_JSON)


_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
"""A UUID as JSON Schema's ``format: uuid`` (RFC 4122's text) has it: hyphenated, no braces,
no ``urn:uuid:`` prefix, not 32 bare digits, all of which ``uuid.UUID`` would also take."""


def _session_id(value: str) -> str:
    if not _UUID.fullmatch(value):
        raise CamaraError(400, "INVALID_ARGUMENT", "sessionId must be a UUID")
    return str(UUID(value))


def _profile_name(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9_.-]{3,256}", value):
        raise CamaraError(400, "INVALID_ARGUMENT", "name is not a QoS profile name")
    return value


_PATH_PARAMETERS: dict[str, tuple[dict[str, Any], Callable[[str], str]]] = {
    "sessionId": ({"type": "string", "format": "uuid"}, _session_id),
    "name": ({"type": "string", "pattern": "^[a-zA-Z0-9_.-]+$"}, _profile_name),
}
"""Path parameters of the table's templates: their OpenAPI schema and their check."""


def _parameters(operation: Operation) -> list[str]:
    return re.findall(r"{(\w+)}", operation.path)


def _route(operation: Operation) -> dict[str, Any]:
    """The decorator arguments of one operation: its OpenAPI, path parameters included."""
    doc = _doc(operation.request, operation.answer, operation.status, many=operation.many)
    names = _parameters(operation)
    if names:
        doc["openapi_extra"]["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMETERS[name][0]}
            for name in names
        ]
    return {"operation_id": operation.operation_id, "methods": [operation.method], **doc}


Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Serve = Callable[[Request, CallContext], Awaitable[Response]]


def _endpoint(
    services: CamaraServices, operation: Operation, context_dependency: Callable[..., Any]
) -> tuple[Callable[..., Awaitable[Response]], Serve]:
    """The one endpoint shape: path parameters checked, body parsed, the service called.

    Returns the FastAPI endpoint (the context as a dependency) and the same work as a plain
    function of the request and its context, for a route that gets the context itself.
    """
    method = getattr(services, operation.service)
    names = _parameters(operation)
    model, out_of_range = operation.request, operation.out_of_range

    async def serve(request: Request, ctx: CallContext) -> Response:
        async def call() -> Answer:
            args: list[Any] = [_PATH_PARAMETERS[n][1](request.path_params[n]) for n in names]
            if model is not None:
                state = request.scope.get("state")
                parsed = state.get(PARSED_BODY, NOT_PARSED) if state is not None else NOT_PARSED
                raw = await request.body()
                args.append(parse_body(model, raw, out_of_range=out_of_range, parsed=parsed))
            answer: Answer = await method(ctx, *args)
            return answer

        return await _respond(request, ctx, call, operation.status)

    context = Depends(context_dependency)

    async def endpoint(request: Request, ctx: CallContext = context) -> Response:
        return await serve(request, ctx)

    endpoint.__name__ = operation.service
    return endpoint, serve


def _direct_route(
    serve: Serve,
    context: Callable[[Request], Awaitable[CallContext]],
) -> type[APIRoute]:
    """An :class:`~fastapi.routing.APIRoute` whose handler awaits ``context(request)`` and
    serves, instead of solving the endpoint's dependencies (FastAPI's documented hook for
    custom route classes); routing, the OpenAPI operation and the exception handlers stay."""

    async def handle(request: Request) -> Response:
        return await serve(request, await context(request))

    class _DirectRoute(APIRoute):
        direct_handler: Handler = staticmethod(handle)
        """The handler, for a gateway that finds the route itself (plain ASGI, no router)."""

        def get_route_handler(self) -> Handler:
            return handle

    return _DirectRoute


def build_camara_routers(
    services: CamaraServices,
    context_dependency: Callable[..., Any] = get_call_context,
) -> list[APIRouter]:
    """One router per API of the operation table, each with its base path.

    An ``async`` ``context_dependency`` other than the placeholder (the gateway's) is awaited
    directly by each route; the placeholder stays a FastAPI dependency, so
    ``app.dependency_overrides`` replaces it as before.
    """
    direct = context_dependency is not get_call_context and inspect.iscoroutinefunction(
        context_dependency
    )
    routers: dict[str, APIRouter] = {}
    for operation in OPERATIONS:
        router = routers.get(operation.api)
        if router is None:
            router = APIRouter(prefix=operation.base_path, tags=[operation.tag])
            routers[operation.api] = router
        endpoint, serve = _endpoint(services, operation, context_dependency)
        route_class = _direct_route(serve, context_dependency) if direct else APIRoute
        router.add_api_route(
            operation.path, endpoint, route_class_override=route_class, **_route(operation)
        )
    return list(routers.values())
