"""The CAMARA operations' chain as plain ASGI: found by method and path, served without
FastAPI's middleware stack, router walk or request wrapper in between.

Profiled under wrk (py-spy), a CAMARA call spent about a fifth of the server's time in the
framework's layers around the gateway (the error and telemetry middlewares, the body-limit
wrapper, the exception middleware, the exit stack, the included routers' matching, the route's
request wrapper), none of which decides anything for these routes: their handler reads and
bounds its own body, the gateway's context decides, the CAMARA error handlers render. So
:class:`GatewayApp` answers a CAMARA operation itself, in this order:

1. :class:`~starlette.middleware.errors.ServerErrorMiddleware` with the app's own handler for
   unexpected errors (the CAMARA 500 body, the error logged and raised again), as FastAPI
   builds it;
2. :func:`~operators.gateway.gateway.run_policies`: the correlator, call statistics, metrics
   and the metering of a billable answer, the very function :class:`GatewayMiddleware` runs
   for every other request;
3. the route's handler: threat protection, authentication, admission (the gateway's
   context), the CAMARA service, its answer; a refusal rendered by the app's exception
   handler for its class, looked up as Starlette's exception middleware does.

FastAPI keeps the routes (the OpenAPI document, every other path, a CAMARA path with the
wrong method or a trailing slash, which it answers as before) and the lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .gateway import ASGIApp, Gateway, Receive, Scope, Send, run_policies

__all__ = ["CamaraRoutes", "GatewayApp"]

Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class CamaraRoutes:
    """The routes whose handler a gateway may call itself (``direct_handler``), by method
    and path: a dictionary for fixed paths, Starlette's own compiled pattern for templates."""

    def __init__(self, routers: Iterable[APIRouter]) -> None:
        self.fixed: dict[tuple[str, str], Route] = {}
        self.templated: list[tuple[str, Route]] = []
        for router in routers:
            for route in router.routes:
                if not isinstance(route, Route) or not hasattr(route, "direct_handler"):
                    continue
                for method in sorted((route.methods or set()) - {"HEAD"}):
                    if route.param_convertors:
                        self.templated.append((method, route))
                    else:
                        self.fixed[(method, route.path)] = route

    def find(self, scope: Scope) -> Route | None:
        """The route of this request, its path parameters set in ``scope``; None when the
        request is not a CAMARA operation's (or is mounted under a root path)."""
        if scope.get("root_path"):
            return None
        method, path = scope["method"], scope["path"]
        route = self.fixed.get((method, path))
        if route is not None:
            scope["path_params"] = {}
            return route
        for wanted, candidate in self.templated:
            if wanted != method:
                continue
            match = candidate.path_regex.match(path)
            if match is not None:
                convertors = candidate.param_convertors
                scope["path_params"] = {
                    name: convertors[name].convert(value)
                    for name, value in match.groupdict().items()
                }
                return candidate
        return None


class GatewayApp(FastAPI):
    """The operator's FastAPI app, answering the CAMARA operations through the gateway's
    chain directly (see the module); everything else goes through FastAPI as usual."""

    def __init__(self, gateway: Gateway, **settings: Any) -> None:
        super().__init__(**settings)
        self.gateway = gateway
        self.camara = CamaraRoutes(())
        self._camara_routers: list[APIRouter] = []
        self._chain: ASGIApp | None = None

    def include_camara(self, routers: list[APIRouter]) -> None:
        """Include the CAMARA routers and answer their operations through the chain."""
        for router in routers:
            self.include_router(router)
        self._camara_routers.extend(routers)
        self.camara = CamaraRoutes(self._camara_routers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.camara.find(scope)
            if route is not None:
                scope["app"] = self
                scope["router"] = self.router
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                if self._chain is None:
                    self._chain = self._build_chain()
                await self._chain(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _build_chain(self) -> ASGIApp:
        """Built at the first call, as Starlette builds its stack: every handler is known."""
        handlers: dict[Any, ErrorHandler] = dict(self.exception_handlers)
        unexpected = handlers.pop(Exception, None) or handlers.pop(500, None)
        gateway = self.gateway

        def handler_for(error: Exception) -> ErrorHandler | None:
            for cls in type(error).__mro__:
                if cls in handlers:
                    return handlers[cls]
            return None

        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            serve = cast(Handler, scope["route"].direct_handler)
            try:
                response = await serve(request)
            except Exception as error:
                handler = handler_for(error)
                if handler is None:
                    raise
                response = await handler(request, error)
            await response(scope, receive, send)

        async def policies(scope: Scope, receive: Receive, send: Send) -> None:
            await run_policies(gateway, endpoint, scope, receive, send)

        return ServerErrorMiddleware(policies, handler=unexpected, debug=self.debug)
