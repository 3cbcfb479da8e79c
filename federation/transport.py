"""How parties reach each other: over HTTP, or over an in-process network of ASGI apps.

Under ``ogsim up`` parties reach each other over real HTTP through :class:`PerOriginPools`;
in one process (tests and ``ogsim demo``) the same ``httpx.AsyncClient`` code gets
:class:`AsgiNetwork` instead, which hands each request to the app registered for its host, so
one client can call every operator, the aggregator and the Network Id services by their real
URLs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import httpx
from starlette.types import ASGIApp


class AsgiNetwork(httpx.AsyncBaseTransport):
    """Dispatches on ``host[:port]`` to an ASGI app; unknown hosts get a connection error."""

    def __init__(
        self,
        apps: Mapping[str, ASGIApp] | None = None,
        *,
        client: tuple[str, int] = ("127.0.0.1", 40000),
    ) -> None:
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


KEEPALIVE_SECONDS = 30.0


class PerOriginPools(httpx.AsyncBaseTransport):
    """Real HTTP with a connection pool of its own for each partner origin.

    httpcore 1.0's pool does work per request in proportion to every connection it holds: it
    checks each idle one for a readable socket and scans them all for one that fits the
    request's origin. The aggregator holds tens of connections to several operators; one pool
    per operator makes each request's scan its own operator's connections only. Each pool
    keeps as many idle connections alive as it may open (``keepalive`` = ``connections``):
    httpcore closes an idle connection whenever the pool holds more connections in all than
    the keep-alive limit, so a lower limit turns a busy pool's reuse into connection churn.

    Only the ``partners`` given (the federation's own origins) get pools of their own; any
    other origin (an application's ``jwks_uri``, a callback) shares one pool, so outsiders
    cannot make the process hold a pool, and its idle sockets, per origin they name.
    """

    def __init__(
        self,
        partners: Iterable[str] = (),
        connections: int = 100,
        *,
        keepalive_expiry: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._partners = {_origin(httpx.URL(url)) for url in partners}
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}
        self._shared = httpx.AsyncHTTPTransport(limits=self._limits)

    def _pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        origin = _origin(url)
        if origin not in self._partners:
            return self._shared
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = httpx.AsyncHTTPTransport(limits=self._limits)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = [*self._pools.values(), self._shared], {}
        errors: list[BaseException] = []
        for pool in pools:
            try:
                await pool.aclose()
            except Exception as error:  # close the others before reporting it
                errors.append(error)
        if errors:
            raise errors[0]


def _origin(url: httpx.URL) -> tuple[bytes, bytes, int | None]:
    """Scheme, host and port, the port made explicit (``http://h`` is ``http://h:80``)."""
    default = {b"http": 80, b"https": 443}.get(url.raw_scheme)
    return (url.raw_scheme, url.raw_host, url.port or default)
