"""Serving one party's ASGI app under uvicorn until SIGINT or SIGTERM, then returning.

``ogsim serve`` and each process of ``ogsim up`` run this. A stop signal must end the server
gracefully (the app's lifespan stops its background work and flushes the group commit) and
then let the caller close what it opened, so the process exits 0 rather than by the signal.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from collections.abc import Iterator

from starlette.types import ASGIApp

KEEP_ALIVE = 75
"""Seconds an idle keep-alive connection stays open, longer than the hub's partner pools keep
one idle before dropping it (30 s; Locust's pools keep theirs without a limit, but reuse
them within seconds). With uvicorn's default of 5 s the
server closed connections its clients were about to reuse: a request written into a socket
the server was closing got no answer, about one call in 35,000 at saturation (the hub's 503
"unreachable", Locust's "connection closed"). The client must give up on an idle connection
first, as HTTP/1.1 clients and servers are usually paired (nginx keeps one 75 s)."""

GRACEFUL_SHUTDOWN = 5
"""Seconds a stopping server lets in-flight requests finish before cancelling them: a request
waiting on a partner that is stopping too must not hold up the whole federation's stop."""
STARTUP_FAILURE = 3
"""uvicorn's exit status when the server could not start (a port taken, say)."""


def serve_until_stopped(app: ASGIApp, host: str, port: int, fd: int | None = None) -> None:
    """Run ``app`` on ``host:port`` until a stop signal; returns after a clean shutdown.

    With ``fd``, serve on that already-listening socket instead of binding (the launcher binds
    it before starting this process, so no other process can take the port meanwhile). A
    server that could not start exits with uvicorn's start-up failure status (3)."""
    import uvicorn  # only a serving process pays for importing the server

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # The peer's address is the device's identity (network-based authentication): an
        # X-Forwarded-For header, which uvicorn trusts from loopback by default, would let any
        # local process claim any subscriber's address.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    sockets = None if fd is None else [socket.socket(fileno=fd)]
    with absorbed_stop_signals(), contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


@contextlib.contextmanager
def absorbed_stop_signals() -> Iterator[None]:
    """uvicorn catches SIGINT and SIGTERM, shuts down, then raises the signal again for the
    handler it found; this one does nothing, so the caller goes on instead of dying (-15)."""
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda *_: None) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
