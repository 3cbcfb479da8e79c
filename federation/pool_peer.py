"""The client's address through the replica pool, vouched for by the pool.

Behind ``ogsim up --autoscale`` every request reaches a replica from the pool's own loopback
connection, so the replica's peer address is the pool's, for every client. Yet that address
is what the operator decides on: the subscriber a data connection belongs to (network-based
authentication, the handset that opens without a link) and the per-address limits of sign-in
and password resets, which would otherwise count every client as one, so that one client's
ten reset requests refused everybody's.

``X-Forwarded-For`` cannot carry it: uvicorn believes it from any loopback peer, and any local
process could then claim any subscriber's address (which is why the servers run with
``proxy_headers=False``). So the pool sends the address with an HMAC under a key derived from
the operator's admin secret, which the pool and its replicas share and a local process does
not have; the replica's :class:`PoolPeer` takes the address only when the HMAC verifies, and
always removes the header, so nothing behind it reads an unverified one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = b"x-ogsim-peer"


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"ogsim pool peer\0" + secret.encode()).digest()


def _mac(key: bytes, address: str) -> str:
    digest = hmac.new(key, address.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def vouched_headers(headers: Sequence[tuple[bytes, bytes]], secret: str,
                    client: tuple[str, int] | None) -> list[tuple[bytes, bytes]]:
    """``headers`` as the pool forwards them: any peer header a client sent dropped, and the
    client's own address added with its HMAC (none when the client has no address)."""
    kept = [(k, v) for k, v in headers if k.lower() != HEADER]
    if client is not None:
        address = client[0]
        kept.append((HEADER, f"{address} {_mac(_key(secret), address)}".encode("latin-1")))
    return kept


class PoolPeer:
    """ASGI middleware of a replica: the vouched client address becomes the request's client."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self._key = _key(secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self._with_peer(scope)
        await self.app(scope, receive, send)

    def _with_peer(self, scope: Scope) -> Scope:
        headers = scope.get("headers", [])
        values = [v for k, v in headers if k.lower() == HEADER]
        if not values:
            return scope
        scope = {**scope, "headers": [(k, v) for k, v in headers if k.lower() != HEADER]}
        address, _, mac = values[-1].decode("latin-1").partition(" ")
        if len(values) == 1 and address and hmac.compare_digest(
                _mac(self._key, address).encode(), mac.encode()):
            port = scope["client"][1] if scope.get("client") else 0
            scope["client"] = (address, port)
        return scope
