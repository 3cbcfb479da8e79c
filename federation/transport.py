"""An in-process network of ASGI apps addressed by host, for tests and ``ogsim demo``.

Under ``ogsim up`` parties reach each other over real HTTP; in one process the same
``httpx.AsyncClient`` code gets this transport instead, which hands each request to the app
registered for its host, so one client can call every operator, the aggregator and the
Network Id services by their real URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from starlette.types import ASGIApp


class AsgiNetwork(httpx.AsyncBaseTransport):
    """Dispatches on ``host[:port]`` to an ASGI app; unknown hosts get a connection error."""

    def __init__(self, apps: Mapping[str, ASGIApp] | None = None, *,
                 client: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self._client = client
        self._apps: dict[str, ASGIApp] = {}
        self._transports: dict[str, httpx.ASGITransport] = {}
        for base, app in (apps or {}).items():
            self.add(base, app)

    def add(self, base_url: str, app: ASGIApp) -> None:
        """Serve ``app`` at the host of ``base_url`` (a URL or a bare host)."""
        host = urlsplit(base_url).netloc if "://" in base_url else base_url
        self._apps[host] = app
        self._transports[host] = httpx.ASGITransport(app=app, client=self._client)

    def seen_from(self, client: tuple[str, int]) -> AsgiNetwork:
        """The same apps, reached from another address (a subscriber's device, say)."""
        return AsgiNetwork(self._apps, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports.get(request.url.netloc.decode("ascii"))
        if transport is None:
            raise httpx.ConnectError(f"no app at {request.url.host}", request=request)
        return await transport.handle_async_request(request)
