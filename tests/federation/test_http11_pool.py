"""The partners' HTTP/1.1 pool (:class:`federation.transport.Http11Pool`) against a loopback
server written with asyncio streams, so each test decides exactly what the server sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from federation.transport import Http11Pool, PerOriginPools

Reply = Callable[[bytes, bytes], Awaitable[bytes | None]]
"""The server's answer to one request (head, body); None closes the connection unanswered."""


@dataclass
class Server:
    """Reads requests whole (Content-Length bodies), answers with ``reply`` (closing the
    connection after an answer that says so), and counts the connections it accepted."""

    reply: Reply
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    server: asyncio.Server | None = None
    hang_up: bool = False
    """Close each connection after its answer, as a keep-alive timeout would."""
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                answer = await self.reply(head, body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.hang_up or b"\r\nconnection: close\r\n" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.hung_up.set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


def answer(body: bytes, status: bytes = b"200 OK", *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 " + status, b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def echo(head: bytes, body: bytes) -> bytes:
    return answer(head.split(b"\r\n")[0] + b"|" + body, b"200 OK", b"x-test: 1")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(reply: Reply) -> Server:
        server = Server(reply)
        server.server = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def client(url: str, **pool: float) -> httpx.AsyncClient:
    transport = PerOriginPools([url], **pool)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, timeout=10)


async def test_partner_origins_get_the_http11_pool(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    server = await serve(echo)
    transport = PerOriginPools([server.url])
    async with httpx.AsyncClient(transport=transport) as http:
        await http.get(server.url + "/x")
        assert [type(pool) for pool in transport._pools.values()] == [Http11Pool]


async def test_requests_and_answers_pass_whole(serve: Callable[[Reply], Awaitable[Server]]) -> None:
    server = await serve(echo)
    async with client(server.url) as http:
        posted = await http.post(server.url + "/a/b?q=1", json={"k": "v"}, headers={"x-c": "7"})
        got = await http.get(server.url + "/c")
    assert posted.status_code == 200 and posted.headers["x-test"] == "1"
    assert posted.content == b'POST /a/b?q=1 HTTP/1.1|{"k":"v"}'
    assert got.content == b"GET /c HTTP/1.1|"
    head = server.requests[0][0].lower()
    assert b"\r\nx-c: 7\r\n" in head and b"\r\ncontent-type: application/json\r\n" in head
    assert b"\r\nhost: 127.0.0.1:" in head
    assert server.connections == 1, "the second request rode the first one's connection"


async def test_answers_of_every_framing(serve: Callable[[Reply], Awaitable[Server]]) -> None:
    async def framed(head: bytes, body: bytes) -> bytes:
        path = head.split(b" ")[1]
        if path == b"/chunked":
            return (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            )
        if path == b"/empty":
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return answer(b"plain", b"404 Not Found")

    server = await serve(framed)
    async with client(server.url) as http:
        chunked = await http.get(server.url + "/chunked")
        empty = await http.delete(server.url + "/empty")
        plain = await http.get(server.url + "/other")
    assert (chunked.status_code, chunked.content) == (200, b"abcde")
    assert (empty.status_code, empty.content) == (204, b"")
    assert (plain.status_code, plain.content) == (404, b"plain")
    assert server.connections == 1


async def test_an_answer_ended_by_closing_the_connection(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    async def until_close(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it"

    server = await serve(until_close)
    async with client(server.url) as http:
        first = await http.get(server.url + "/")
        second = await http.get(server.url + "/")
    assert first.content == second.content == b"all of it"
    assert server.connections == 2


async def test_a_connection_the_server_closed_is_not_reused(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    async def once(head: bytes, body: bytes) -> bytes:
        return answer(b"ok", b"200 OK", b"connection: close")

    server = await serve(once)
    async with client(server.url) as http:
        for _ in range(3):
            assert (await http.get(server.url + "/")).content == b"ok"
    assert server.connections == 3


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    """A server's keep-alive timeout: it answered as keep-alive, then closed while idle."""
    server = await serve(echo)
    server.hang_up = True
    async with client(server.url) as http:
        assert (await http.get(server.url + "/1")).status_code == 200
        await server.hung_up.wait()
        server.hang_up = False
        assert (await http.get(server.url + "/2")).status_code == 200
    assert server.connections == 2


async def test_a_late_answer_is_a_read_timeout_and_its_connection_is_dropped(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    async def slow_first(head: bytes, body: bytes) -> bytes:
        if b"/slow" in head:
            await asyncio.sleep(5)
        return answer(b"ok")

    server = await serve(slow_first)
    async with httpx.AsyncClient(transport=PerOriginPools([server.url])) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url + "/slow", timeout=httpx.Timeout(10, read=0.2))
        fresh = await http.get(server.url + "/fast", timeout=10)
    assert fresh.content == b"ok"
    assert server.connections == 2, "the timed-out connection's late answer is never read"


async def test_an_unreachable_partner_is_a_connect_error() -> None:
    async with client("http://127.0.0.1:9") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1:9/")


async def test_a_dropped_connection_is_a_transport_error(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    async def hang_up(head: bytes, body: bytes) -> None:
        return None

    server = await serve(hang_up)
    async with client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(server.url + "/", content=b"x")


async def test_at_most_the_pool_size_at_once(serve: Callable[[Reply], Awaitable[Server]]) -> None:
    in_flight = [0, 0]

    async def counted(head: bytes, body: bytes) -> bytes:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        return answer(b"ok")

    server = await serve(counted)
    async with client(server.url, connections=3) as http:
        answers = await asyncio.gather(*(http.get(server.url + "/") for _ in range(12)))
    assert all(a.content == b"ok" for a in answers)
    assert in_flight[1] == 3 and server.connections == 3


async def test_waiting_for_a_free_connection_is_bounded_by_the_pool_timeout(
    serve: Callable[[Reply], Awaitable[Server]],
) -> None:
    release = asyncio.Event()

    async def held(head: bytes, body: bytes) -> bytes:
        await release.wait()
        return answer(b"ok")

    server = await serve(held)
    async with client(server.url, connections=1) as http:
        busy = asyncio.ensure_future(http.get(server.url + "/"))
        while not server.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(server.url + "/", timeout=httpx.Timeout(10, pool=0.1))
        release.set()
        assert (await busy).content == b"ok"


async def test_head_goes_through_httpcore(serve: Callable[[Reply], Awaitable[Server]]) -> None:
    """A HEAD answer announces a length it does not carry: only httpcore knows the request."""

    async def head_answer(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"

    server = await serve(head_answer)
    async with client(server.url) as http:
        response = await http.head(server.url + "/")
    assert response.status_code == 200 and response.content == b""


def test_under_uvloop() -> None:
    """Parties serve under uvicorn's uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[bytes, int]:
        server = Server(echo)
        server.server = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        async with client(server.url) as http:
            answers = [await http.post(server.url + "/u", content=b"b") for _ in range(2)]
        server.server.close()
        return answers[1].content, server.connections

    assert uvloop.run(main()) == (b"POST /u HTTP/1.1|b", 1)
