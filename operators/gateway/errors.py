"""Every gateway error is a CAMARA error body with ``x-correlator`` echoed; never a 500 page."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from operators.camara.correlator import HEADER, echoable, render_error
from operators.errors import CamaraError

from .gateway import ReplayedCall

log = logging.getLogger("ogsim.gateway")

_HTTP_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def camara_response(error: CamaraError, request: Request | None = None) -> JSONResponse:
    return render_error(error, _echo(request))


def _echo(request: Request | None) -> str | None:
    if request is None:
        return None
    state_value = getattr(request.state, "correlator", None)
    if state_value:
        return str(state_value)
    return echoable(request.headers.get(HEADER))


def install_camara_error_handlers(app: FastAPI) -> None:
    """Map framework errors to CAMARA codes so no client ever sees FastAPI's own bodies."""

    async def on_camara(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CamaraError)
        return camara_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        return camara_response(
            CamaraError(400, "INVALID_ARGUMENT", "Client specified an invalid argument."), request
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "INVALID_ARGUMENT")
        return camara_response(CamaraError(exc.status_code, code, str(exc.detail)), request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return camara_response(
            CamaraError(500, "INTERNAL", "Server error; the operator logged it."), request
        )

    async def on_replay(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReplayedCall)
        headers = {"Idempotent-Replayed": "true"}
        correlator = _echo(request)
        if correlator:
            headers[HEADER] = correlator
        return Response(
            exc.body, status_code=exc.status, headers=headers, media_type="application/json"
        )

    app.add_exception_handler(ReplayedCall, on_replay)
    app.add_exception_handler(CamaraError, on_camara)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
