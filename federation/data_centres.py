"""An operator's active-active data centres behind its global load balancer, as ASGI apps.

Each :class:`DataCentreSite` wraps one replica of the operator's app (its own gateway and
identity server over the operator's one shared database) with an availability switch: a site
taken down answers every request — its ``/health`` included — with 503, as a site whose
network is gone would fail every call. :class:`LoadBalancedFront` is what the operator's
public URL reaches: it routes each request to the data centre the pure
:class:`~federation.global_load_balancer.GlobalLoadBalancer` picks, and a probe loop checks
each site's ``/health`` when the :class:`~federation.global_load_balancer.HealthTracker` says
a check is due. The front does not retry: a call sent to a site that just died fails, and
only calls inside the health-check window can (``HealthPolicy.detection_window``).

Admin API of the front (operator admin credential): ``GET /admin/data-centres``,
``POST /admin/data-centres/{name}/fail`` and ``.../recover``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operators import cancel_and_wait, is_admin

from .balancer_errors import NoHealthyDataCentreError
from .global_load_balancer import GlobalLoadBalancer
from .tracing import Hop, Tracer, no_trace
from .types import Clock

DATA_CENTRE_HEADER = "x-ogsim-data-centre"
"""Response header naming the data centre that served a call (for tests and the demo).

Internal: an answer carries it only when the request opted in with
:data:`DATA_CENTRE_OPT_IN`, so applications never see it unless they ask."""
DATA_CENTRE_OPT_IN = "x-ogsim-show-data-centre"
"""Request header (any value) asking the front to name the data centre in the answer: sent by
the aggregator on its own hops (its trace), by the in-process harness and the demo."""
_OPT_IN = DATA_CENTRE_OPT_IN.encode()
ADMIN_PREFIX = "/admin/data-centres"


async def _json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _unavailable(message: str) -> dict[str, Any]:
    return {"status": 503, "code": "UNAVAILABLE", "message": message}


class DataCentreSite:
    """One data centre of an operator: an app replica and whether the site is reachable."""

    def __init__(self, operator_id: str, name: str, app: ASGIApp) -> None:
        self.operator_id = operator_id
        self.name = name
        self.app = app
        self.available = True
        self.served = 0
        self.failed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.available:
            self.failed += 1
            await _json(
                send,
                503,
                _unavailable(f"data centre {self.name} of {self.operator_id} is unreachable"),
            )
            return
        if scope["type"] == "http":
            self.served += 1
        await self.app(scope, receive, send)

    async def healthy(self, timeout: float) -> bool:
        """One health probe: ``GET /health`` answered 200 within ``timeout`` seconds."""
        status: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/health",
            "raw_path": b"/health",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"glb-probe")],
            "client": ("127.0.0.1", 1),
            "server": ("glb", 80),
        }
        if not self.available:  # unreachable: the probe fails as a call would, uncounted
            return False
        try:  # the app itself: a probe is not a call the site served
            await asyncio.wait_for(self.app(scope, receive, send), timeout)
        except (TimeoutError, Exception):  # a probe that crashes is a failed probe
            return False
        return bool(status) and status[0] == 200


class LoadBalancedFront:
    """The operator's public face: GLB routing over its data centres, probes, admin API."""

    def __init__(
        self,
        operator_id: str,
        sites: Mapping[str, DataCentreSite],
        glb: GlobalLoadBalancer,
        *,
        admin_secret: str,
        tracer: Tracer = no_trace,
        clock: Clock = time.monotonic,
        probe_timeout: float = 1.0,
    ) -> None:
        self.operator_id = operator_id
        self.sites = dict(sites)
        self.glb = glb
        self.admin_secret = admin_secret
        self.tracer = tracer
        self.clock = clock
        self.probe_timeout = probe_timeout
        self._probes: asyncio.Task[None] | None = None
        self._stopping = False

    # -- probe loop ---------------------------------------------------------------------------

    async def probe_once(self) -> None:
        """Check every data centre whose check is due, and record the results."""
        for name in self.glb.health.due():
            healthy = await self.sites[name].healthy(self.probe_timeout)
            change = self.glb.record_check(name, healthy)
            if change is not None:
                verb = "back in rotation" if change.up else "out of rotation"
                self.tracer(
                    Hop(
                        f"{self.operator_id} GLB",
                        f"{self.operator_id} GLB",
                        f"{name} {verb}",
                        note=f"after {'successful' if change.up else 'failed'} probes",
                    )
                )

    async def _probe_forever(self) -> None:
        # The flag, not only the cancellation, ends the loop: on Python 3.11 ``wait_for``
        # (each probe runs in one) can swallow a cancellation that lands as the probe
        # finishes, and ``stop`` would then wait for a loop that never ends.
        while not self._stopping:
            await self.probe_once()
            wait = self.glb.health.next_due_at() - self.clock()
            await asyncio.sleep(min(max(wait, 0.005), self.glb.health.policy.interval))

    def start(self) -> None:
        """Start the probe loop on the running event loop (idempotent)."""
        if self._probes is None:
            self._stopping = False
            self._probes = asyncio.get_running_loop().create_task(
                self._probe_forever(), name=f"glb-probes-{self.operator_id}"
            )

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._probes)
        self._probes = None

    # -- data centre control ------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "available": site.available,
                "inRotation": self.glb.health.is_up(name),
                "routed": self.glb.routed.get(name, 0),
                "served": site.served,
                "failedWhileDown": site.failed,
            }
            for name, site in self.sites.items()
        ]

    def fail(self, name: str) -> None:
        self.sites[name].available = False

    def recover(self, name: str) -> None:
        self.sites[name].available = True

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            await self._admin(scope, send)
            return
        try:
            name = self.glb.pick()
        except NoHealthyDataCentreError as error:
            await _json(send, 503, _unavailable(str(error)))
            return

        opted_in = any(key.lower() == _OPT_IN for key, _ in scope.get("headers", []))

        async def tagged(message: Message) -> None:
            if opted_in and message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (DATA_CENTRE_HEADER.encode(), name.encode()),
                ]
            await send(message)

        await self.sites[name](scope, receive, tagged)

    async def _admin(self, scope: Scope, send: Send) -> None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        if not is_admin(headers.get("authorization"), self.admin_secret):
            await _json(
                send,
                401,
                {
                    "status": 401,
                    "code": "UNAUTHENTICATED",
                    "message": "operator administrator credentials required",
                },
            )
            return
        parts = scope["path"].removeprefix(ADMIN_PREFIX).strip("/").split("/")
        method = scope["method"]
        if parts == [""] and method == "GET":
            await _json(send, 200, self.status())
            return
        if len(parts) == 2 and method == "POST" and parts[1] in ("fail", "recover"):
            name, action = parts
            if name not in self.sites:
                await _json(
                    send,
                    404,
                    {"status": 404, "code": "NOT_FOUND", "message": f"no data centre {name!r}"},
                )
                return
            (self.fail if action == "fail" else self.recover)(name)
            self.tracer(
                Hop(
                    "admin",
                    f"{self.operator_id} {name}",
                    f"data centre {'fails' if action == 'fail' else 'recovers'}",
                )
            )
            await _json(send, 200, {"name": name, "available": self.sites[name].available})
            return
        await _json(send, 404, {"status": 404, "code": "NOT_FOUND", "message": "no such route"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
