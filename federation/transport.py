"""How parties reach each other: over HTTP, or over an in-process network of ASGI apps.

Under ``ogsim up`` parties reach each other over real HTTP through :class:`PerOriginPools`;
in one process (tests and ``ogsim demo``) the same ``httpx.AsyncClient`` code gets
:class:`AsgiNetwork` instead, which hands each request to the app registered for its host, so
one client can call every operator, the aggregator and the Network Id services by their real
URLs.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from starlette.types import ASGIApp

try:
    import httptools

    HTTPTOOLS = True
except ImportError:  # pragma: no cover - uvicorn[standard] brings it on CPython
    HTTPTOOLS = False


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: see :class:`StatelessClient`."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise ValueError("a StatelessClient keeps no cookies; pass them per request")

    def update(self, cookies: object = None) -> None:  # type: ignore[override]
        if cookies:
            raise ValueError("a StatelessClient keeps no cookies; pass them per request")

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)


class StatelessClient(httpx.AsyncClient):
    """The client a party calls its partners with: it keeps no cookies between requests.

    One client carries the calls of every application and subscriber a party serves, so a
    cookie a partner set on one answer must not ride on the next caller's request. Keeping
    none also spares each answer httpx's cookie parsing (it builds ``urllib`` request and
    response stand-ins for :mod:`http.cookiejar` even when no ``Set-Cookie`` came): about 7 %
    of the hub's CPU under the load test. A request's own ``cookies=`` still go out.
    """

    def __init__(self, **settings: Any) -> None:
        if settings.get("cookies"):
            raise ValueError("a StatelessClient keeps no cookies; pass them per request")
        super().__init__(**settings)
        self._none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("a StatelessClient keeps no cookies; pass them per request")


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
"""Seconds a partner pool keeps an idle connection: less than the parties' servers keep one
open (``operators.serving.KEEP_ALIVE``, 75 s), so the pool drops it before the server's
keep-alive closes it. A party that stops or restarts still closes its connections at once;
a request written into one of those then fails (503, unreachable)."""


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

    A partner's plain-HTTP origin is served by :class:`Http11Pool` (a request in one write,
    the answer parsed by httptools) rather than httpcore, which cost the hub about 40 % of its
    CPU; every other origin, and any request that pool does not handle, goes through httpcore.
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
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncBaseTransport] = {}
        self._shared = httpx.AsyncHTTPTransport(limits=self._limits)
        self._connections = connections
        self._keepalive_expiry = keepalive_expiry

    def _pool(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        origin = _origin(url)
        if origin not in self._partners:
            return self._shared
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = self._new_pool(origin)
        return pool

    def _new_pool(self, origin: tuple[bytes, bytes, int | None]) -> httpx.AsyncBaseTransport:
        scheme, host, port = origin
        if scheme == b"http" and port is not None and HTTPTOOLS:
            return Http11Pool(
                host.decode("ascii"),
                port,
                self._connections,
                keepalive_expiry=self._keepalive_expiry,
                fallback=httpx.AsyncHTTPTransport(limits=self._limits),
            )
        return httpx.AsyncHTTPTransport(limits=self._limits)

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


FAST_METHODS = frozenset({b"GET", b"POST", b"PUT", b"PATCH", b"DELETE"})
"""Methods whose answer's length the response parser can tell from the answer alone (a HEAD
answer announces a body it does not carry, so HEAD goes through httpcore)."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._answer: asyncio.Future[None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self.status = 0
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's subclasses neither
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def usable(self) -> bool:
        """Open, and with nothing to read: a server's close (or stray bytes) that the event
        loop has not delivered yet shows as a readable socket, as httpcore checks too."""
        if self.closed or self.fd < 0:
            return False
        poll = select.poll()
        poll.register(self.fd, select.POLLIN)
        return not poll.poll(0)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.status and not any(
            name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self._headers
        ):
            self.on_message_complete()  # an answer delimited by the connection's end
        self._fail(httpx.RemoteProtocolError("the server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self._answer is None or self._answer.done():  # an answer nobody asked for
            self.close()
        else:
            self._answer.set_result(None)

    def _fail(self, error: Exception) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    async def exchange(
        self, head_and_body: bytes, timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request and wait for its whole answer (status, headers, body)."""
        assert self.transport is not None
        self._headers, self._body, self.keep_alive, self.status = [], [], False, 0
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(head_and_body)
        async with asyncio.timeout(timeout):
            await self._answer
        return self.status, self._headers, b"".join(self._body)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http11Pool(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 to one plain-HTTP origin: each request written whole in one
    ``write`` (httpcore writes the head and the body apart, two system calls that on loopback
    also run the receiving side's TCP work), the answer parsed by httptools in C.

    At most ``connections`` at once; idle ones are reused most recent first and dropped after
    ``keepalive_expiry`` seconds or once the server closed them. A connection whose exchange
    did not end with a complete keep-alive answer (a timeout, a cancellation, a protocol
    error) is closed, never reused. Requests it does not handle (HEAD, a body of unknown
    length, an upgrade) go to ``fallback``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        connections: int,
        *,
        keepalive_expiry: float = KEEPALIVE_SECONDS,
        fallback: httpx.AsyncBaseTransport,
    ) -> None:
        self.host, self.port = host, port
        self.keepalive_expiry = keepalive_expiry
        self.fallback = fallback
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = request.headers
        if (
            request.method.encode() not in FAST_METHODS
            or "transfer-encoding" in headers
            or "upgrade" in headers
        ):
            return await self.fallback.handle_async_request(request)
        body = await request.aread()
        head = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in headers.raw:
            head += (name, b": ", value, b"\r\n")
        head += (b"\r\n", body)
        timeouts = request.extensions.get("timeout", {})
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as error:
            raise httpx.PoolTimeout("no connection free in time", request=request) from error
        try:
            connection = await self._connection(request, timeouts.get("connect"))
            reusable = False
            try:
                status, answer_headers, content = await connection.exchange(
                    b"".join(head), timeouts.get("read")
                )
                reusable = connection.keep_alive and not connection.closed
            except TimeoutError as error:
                raise httpx.ReadTimeout("no answer in time", request=request) from error
            finally:
                if reusable:
                    connection.idle_since = time.monotonic()
                    self._idle.append(connection)
                else:
                    connection.close()
        finally:
            self._slots.release()
        return httpx.Response(
            status,
            headers=answer_headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _connection(self, request: httpx.Request, timeout: float | None) -> _Connection:
        """The most recently used live idle connection, else a new one."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < self.keepalive_expiry and connection.usable():
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except TimeoutError as error:
            raise httpx.ConnectTimeout("no connection in time", request=request) from error
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        return connection

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        await self.fallback.aclose()


def _origin(url: httpx.URL) -> tuple[bytes, bytes, int | None]:
    """Scheme, host and port, the port made explicit (``http://h`` is ``http://h:80``)."""
    default = {b"http": 80, b"https": 443}.get(url.raw_scheme)
    return (url.raw_scheme, url.raw_host, url.port or default)
