"""Which requests the replica pool sends to another replica after a connection broke unanswered.

A replica that read the request may have metered it before it died, so only a request the next
replica will recognise may go again: one with an ``Idempotency-Key``. A GET without one (a QoD
session read is billable) is given a key of the pool's own, the same on every attempt; any
other request without a key is answered 502/503 rather than run twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from .test_replica_pool import scripted

Seen = list[tuple[str, str | None]]


def _dying_replica(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class DiesAfterReading(BaseHTTPRequestHandler):
        """Reads the request (as a replica that committed its usage event), then dies."""

        def _die(self) -> None:
            seen.append((self.command, self.headers.get("idempotency-key")))
            self.connection.shutdown(2)
            self.close_connection = True

        def do_GET(self) -> None:
            self._die()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._die()

        def log_message(self, *_: Any) -> None:
            pass

    return DiesAfterReading


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
def servers(seen: Seen) -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


async def _ask(clock: Any, seen: Seen, servers: list[ThreadingHTTPServer], method: str,
               headers: dict[str, str]) -> Seen:
    pool = scripted(clock, replicas=2)
    await pool.start()
    try:
        for replica in pool.members:
            replica.in_rotation = True
            server = ThreadingHTTPServer(("127.0.0.1", replica.port), _dying_replica(seen))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        transport = httpx.ASGITransport(app=pool)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as http:
            path = "/quality-on-demand/v1/sessions/s-1" if method == "GET" else "/sim-swap/v2/check"
            answer = await http.request(
                method, path, headers=headers, content=b"{}" if method == "POST" else None
            )
        assert answer.status_code >= 500
        return list(seen)
    finally:
        await pool.stop()


async def test_a_keyless_get_goes_again_under_one_key_of_the_pools_own(
    clock: Any, seen: Seen, servers: list[ThreadingHTTPServer]
) -> None:
    attempts = await _ask(clock, seen, servers, "GET", {"x-correlator": "flow-1"})
    keys = {key for _, key in attempts}
    assert len(keys) == 1 and next(iter(keys), "").startswith("pool-"), attempts


async def test_a_keyed_request_keeps_its_key_and_a_keyless_post_goes_once(
    clock: Any, seen: Seen, servers: list[ThreadingHTTPServer]
) -> None:
    keyed = await _ask(clock, seen, servers, "POST", {"Idempotency-Key": "k-1"})
    assert keyed and {key for _, key in keyed} == {"k-1"}
    seen.clear()
    keyless = await _ask(clock, seen, servers, "POST", {"x-correlator": "flow-2"})
    assert keyless == [("POST", None)]
