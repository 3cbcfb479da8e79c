"""``serve_until_stopped``: what a party's server keeps for its clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import uvicorn

from federation.transport import KEEPALIVE_SECONDS
from operators.serving import KEEP_ALIVE, serve_until_stopped

SERVER = """
import sys
from operators.serving import serve_until_stopped

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})

serve_until_stopped(app, "127.0.0.1", int(sys.argv[1]))
"""
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
IDLE = 6.0
"""Longer than uvicorn's default keep-alive (5 s), far shorter than the server's own."""


def test_the_server_outlasts_the_partner_pools_idle_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``serve_until_stopped`` hands uvicorn: a keep-alive longer than the hub's pools
    keep a connection idle (the end-to-end test below only shows it exceeds a few seconds)."""
    seen: dict[str, float] = {}

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        seen["keep_alive"] = server.config.timeout_keep_alive
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    serve_until_stopped(lambda *_: None, "127.0.0.1", 0)  # type: ignore[arg-type]
    assert seen["keep_alive"] == KEEP_ALIVE > KEEPALIVE_SECONDS


@pytest.fixture
def served() -> Iterator[int]:
    """A trivial app under ``serve_until_stopped`` in its own process, on a loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _exchange(connection: socket.socket) -> bytes:
    connection.sendall(REQUEST)
    answer = b""
    while not answer.endswith(b"ok"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_an_idle_keep_alive_connection_is_still_served(served: int) -> None:
    """A client that reuses a connection after some idle seconds is answered on it: the
    server does not close it first (uvicorn's default would have, after 5 s)."""
    with socket.create_connection(("127.0.0.1", served), timeout=30) as connection:
        assert _exchange(connection).startswith(b"HTTP/1.1 200")
        time.sleep(IDLE)  # idle, as a pooled connection waits for its next request
        assert _exchange(connection).startswith(b"HTTP/1.1 200")
