"""A live pool of one operator's gateway replicas, each its own process, scaled and healed.

``ogsim up --autoscale`` puts a :class:`ReplicaPool` on each operator's public port in place
of the single party process. The pool is two things in one process:

* a **load balancer**: an ASGI reverse proxy that sends each request to the next replica in
  rotation (round robin) over HTTP and streams the answer back. A replica enters the rotation
  once its readiness probe (``GET /federation/ready``) answers 200 and leaves it after
  ``failures_to_down`` failed probes in a row, or at once when a connection to it is refused
  (a passive check, as Envoy's outlier detection does). While no replica is ready, one still
  starting (its probe answers 503) serves, as a lone party process does: under ``ogsim up``
  its partners' start-up needs its discovery document. A request whose connection was refused
  goes to another replica; so does one that carries an ``Idempotency-Key`` and lost its
  connection before any answer, since the gateway's metering answers a repeated key with the
  answer it already committed instead of billing twice. A GET or HEAD without one is given a
  key of the pool's own, the same on every attempt (a GET may be billable: a QoD session read),
  so that it may be retried too; any other request without a key is not retried.
* a **supervisor**: it starts the replicas (``python -m federation.launcher party`` on a
  loopback port of their own, all with the same federation file, database file and Redis URL,
  so tokens, clients, usage events and throttle counters are shared), notices a process that
  died (``poll``) and replaces it after ``restart_delay`` (auto-healing), kills and replaces
  one that stays alive but fails ``liveness_failures`` probes in a row (a liveness probe), and
  every ``sync_period`` asks the shared :class:`~operators.policies.Autoscaler` how many
  replicas the pool's own metric wants: the average number of calls in flight at each ready
  replica over the last period. Scaling up starts processes (routed to only once ready);
  scaling down takes the newest replicas out of rotation, lets their calls finish, then
  SIGTERMs them (graceful: uvicorn drains, the group commit flushes).

No usage event is lost when a replica is killed: a replica answers a billable call only after
its event is committed to the shared SQLite file (``GroupCommit``: each caller awaits its
batch's commit; WAL with ``synchronous=NORMAL`` keeps a commit across a process's death,
though not across the machine's power loss). A call in flight at the kill either committed
(its repeat through another replica replays the stored answer) or did not (nothing billed).

Admin API on the pool's port (operator admin credential): ``GET /admin/replicas``; a
data-centre switch (``POST /admin/data-centres/{name}/fail|recover``) goes to every replica
(:mod:`federation.pool_data_centres`), each running its own front.
Prometheus series of the pool (replicas by state, desired, in flight, answers, events,
replica-seconds): ``GET /pool/metrics`` (:mod:`federation.pool_metrics`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from starlette.types import Message, Receive, Scope, Send

from operators import cancel_and_wait, is_admin
from operators.policies import Autoscaler, AutoscalerConfig, ReplicaSample, ScaleDecision

from .pool_data_centres import SiteSwitches, switch_of
from .pool_metrics import POOL_METRICS_PATH, PoolTally, exposition
from .pool_peer import vouched_headers
from .ports import free_port
from .transport import StatelessClient
from .types import Clock

READY_PATH = "/federation/ready"
ADMIN_PATH = "/admin/replicas"
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"upgrade",
    b"proxy-connection",
    b"content-length",
}
"""Request headers not forwarded (content-length is recomputed from the body)."""
_RESPONSE_DROPPED = HOP_BY_HOP - {b"content-length"}

POOL_AUTOSCALER = AutoscalerConfig(
    target=4.0,
    min_replicas=2,
    max_replicas=6,
    readiness_delay=5.0,
    sync_period=5.0,
)
"""``ogsim up --autoscale``: 4 calls in flight per replica, 2 to 6 replicas (two, so one
killed leaves a sibling serving), HPA defaults otherwise (scale-down window 300 s); a replica
counts 5 s after its start, the decision runs every 5 s."""


@dataclass(frozen=True)
class PoolPolicy:
    """The pool's probes and healing, in seconds."""

    probe_interval: float = 0.5
    failures_to_down: int = 2
    """Failed readiness probes in a row that take a replica out of rotation."""
    liveness_failures: int = 10
    """Failed probes in a row after which a live but stuck replica is killed and replaced."""
    restart_delay: float = 0.5
    """From noticing a dead replica to starting its replacement (a crash-loop guard)."""
    startup_timeout: float = 60.0
    """A replica not ready this long after its start is killed and replaced."""
    drain_timeout: float = 10.0
    """A draining replica's calls get this long; then it is sent SIGTERM anyway."""
    stop_timeout: float = 15.0
    """After SIGTERM, how long a replica may take to exit before SIGKILL."""
    request_timeout: float = 30.0
    max_body_bytes: int = 1 << 20
    """A request body larger is refused (413) unread: above every gateway's own limit, which
    the replica applies; the pool holds each body whole, to send it again to another."""
    body_timeout: float = 10.0
    """A request body not complete this long after the call came is refused (408)."""

    @property
    def detection_window(self) -> float:
        """Worst case from a replica's death to leaving the rotation by probes alone."""
        return self.probe_interval * self.failures_to_down


class Process(Protocol):
    """What the pool needs of a replica's process (``subprocess.Popen``; a fake in tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def kill(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


Launch = Callable[[Sequence[str], Any, dict[str, str]], Process]
"""Starts a process: command line, where its output goes, its environment."""


def launch(command: Sequence[str], log: Any, env: dict[str, str]) -> Process:
    return subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, env=env)


@dataclass(eq=False)
class Replica:
    """One replica process as the pool sees it."""

    number: int
    port: int
    process: Process
    started: float
    in_rotation: bool = False
    ever_ready: bool = False
    starting: bool = False
    """Its server answers but its start-up work is pending (the readiness probe's 503)."""
    draining: bool = False
    failures: int = 0
    in_flight: int = 0
    served: int = 0
    busy: float = 0.0
    """Integral of ``in_flight`` over time since the last metric sample (call-seconds)."""
    changed: float = 0.0
    terminated_at: float | None = None
    sites_version: int = 0
    """The pool's data-centre switches this replica has applied (:class:`SiteSwitches`)."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def account(self, now: float) -> None:
        self.busy += self.in_flight * (now - self.changed)
        self.changed = now

    def status(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "pid": self.pid,
            "port": self.port,
            "inRotation": self.in_rotation,
            "ready": self.ever_ready,
            "draining": self.draining,
            "inFlight": self.in_flight,
            "served": self.served,
        }


@dataclass(frozen=True)
class PoolEvent:
    """Something the supervisor did, for the log, the admin API and tests."""

    at: float
    kind: str
    replica: int
    detail: str = ""


ReplicaCommand = Callable[[int], Sequence[str]]
"""The command line of a replica listening on the given port."""


@dataclass(eq=False)
class ReplicaPool:
    """Replica processes of one operator behind a round-robin proxy (an ASGI app)."""

    name: str
    command: ReplicaCommand
    admin_secret: str
    replicas: int = 2
    """Replicas to run (the autoscaler's minimum when one is given)."""
    autoscaler: AutoscalerConfig | None = None
    policy: PoolPolicy = field(default_factory=PoolPolicy)
    log_dir: Path | None = None
    env: dict[str, str] | None = None
    clock: Clock = time.monotonic
    launch: Launch = launch
    members: list[Replica] = field(default_factory=list)
    events: list[PoolEvent] = field(default_factory=list)
    decisions: list[ScaleDecision] = field(default_factory=list)
    failure: str | None = None
    tally: PoolTally = field(default_factory=PoolTally)

    def __post_init__(self) -> None:
        self.desired = self.autoscaler.min_replicas if self.autoscaler else self.replicas
        self._scaler = Autoscaler(self.autoscaler, self.clock) if self.autoscaler else None
        self._numbers = itertools.count(1)
        self._turn = itertools.count()
        self._dead_since: float | None = None
        self._last_sync = self.clock()
        self._last_sample = self.clock()
        self._startup_failures = 0
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._stopping = False
        self._switches = SiteSwitches(self.admin_secret)

    # -- views -------------------------------------------------------------------------------

    def serving(self) -> list[Replica]:
        """Replicas in rotation, in start order."""
        return [r for r in self.members if r.in_rotation and not r.draining]

    def active(self) -> list[Replica]:
        """Replicas the pool counts (started or ready, not draining)."""
        return [r for r in self.members if not r.draining]

    def status(self) -> dict[str, Any]:
        return {
            "pool": self.name,
            "desired": self.desired,
            "replicas": [r.status() for r in self.members],
            "events": [
                {"at": e.at, "kind": e.kind, "replica": e.replica, "detail": e.detail}
                for e in self.events[-50:]
            ],
            "failure": self.failure,
        }

    def _note(self, kind: str, replica: Replica, detail: str = "") -> None:
        event = PoolEvent(self.clock(), kind, replica.number, detail)
        self.events.append(event)
        self.tally.events[kind] += 1
        print(f"{self.name} pool: replica {replica.number} (pid {replica.pid}) {kind}"
              f"{' ' + detail if detail else ''}", flush=True)

    # -- the supervisor ----------------------------------------------------------------------

    def spawn(self) -> Replica:
        """Start one replica process on a port of its own."""
        port = free_port()
        number = next(self._numbers)
        log: Any = subprocess.DEVNULL
        if self.log_dir is not None:
            log = (self.log_dir / f"{self.name}-replica-{number}.log").open("ab")
        try:
            process = self.launch(
                self.command(port), log, self.env if self.env is not None else dict(os.environ)
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the child holds its own descriptor
        now = self.clock()
        replica = Replica(number, port, process, started=now, changed=now)
        self.members.append(replica)
        self._note("started", replica, f"on port {port}")
        return replica

    async def tick(self) -> None:
        """One turn of the supervisor: reap, probe, heal, scale, drain."""
        # every process started counts until the turn that reaps it, as a pod is billed
        # until it is gone
        self.tally.account_replicas(len(self.members), self.clock())
        self._reap()
        await self._probe_all()
        now = self.clock()
        if self._scaler is not None and now - self._last_sync >= self._scaler.config.sync_period:
            self._last_sync = now
            self._scale(now)
        self._heal(now)
        self._drain(now)

    def _reap(self) -> None:
        """Forget replicas whose process ended; an unexpected end is a failure to heal."""
        for replica in list(self.members):
            if replica.alive():
                continue
            self.members.remove(replica)
            replica.in_rotation = False
            if replica.draining:
                self._note("stopped", replica, f"exit {replica.process.returncode}")
                continue
            self._note("died", replica, f"exit {replica.process.returncode}")
            if not replica.ever_ready:
                self._startup_failures += 1
            if self._dead_since is None:
                self._dead_since = self.clock()
            if self._startup_failures >= 3 and not any(r.ever_ready for r in self.members):
                self.failure = (
                    f"{self.name}: {self._startup_failures} replicas exited before ready"
                    f" (see {self.name}-replica-*.log)"
                )

    async def _probe_all(self) -> None:
        candidates = [r for r in self.members if r.alive()]
        results = await asyncio.gather(*(self.probe(r) for r in candidates))
        now = self.clock()
        for replica, answer in zip(candidates, results, strict=True):
            replica.starting = answer == 503
            if answer == 200:
                replica.failures = 0
                if self._switches.behind(replica) and not await self._level(replica):
                    continue
                if not replica.ever_ready:
                    replica.ever_ready = True
                    self._startup_failures = 0
                    self._note("ready", replica, f"after {now - replica.started:.1f} s")
                if not replica.in_rotation and not replica.draining:
                    replica.in_rotation = True
                    self._note("in rotation", replica)
                continue
            replica.failures += 1
            if replica.in_rotation and replica.failures >= self.policy.failures_to_down:
                replica.in_rotation = False
                self._note("out of rotation", replica, f"{replica.failures} failed probes")
            stuck = replica.ever_ready and replica.failures >= self.policy.liveness_failures
            late = (
                not replica.ever_ready and now - replica.started > self.policy.startup_timeout
            )
            if (stuck or late) and not replica.draining:
                self._note("killed", replica, "liveness probe" if stuck else "never ready")
                replica.process.kill()

    async def _level(self, replica: Replica) -> bool:
        """Bring a replica to the data-centre switches its siblings applied; one that cannot
        be is kept out of the rotation (it would serve a site the others call down)."""
        assert self._http is not None
        if await self._switches.sync(self._http, replica):
            self._note("data centres synced", replica)
            return True
        if replica.in_rotation:
            replica.in_rotation = False
            self._note("out of rotation", replica, "its data centres could not be synced")
        return False

    async def probe(self, replica: Replica) -> int | None:
        """The readiness probe's status code, ``None`` when the replica did not answer."""
        assert self._http is not None
        try:
            response = await self._http.get(
                replica.origin + READY_PATH, timeout=max(self.policy.probe_interval, 0.5)
            )
        except httpx.HTTPError:
            return None
        return response.status_code

    def _heal(self, now: float) -> None:
        """Start replicas up to the desired count; a replacement only after the restart delay."""
        missing = self.desired - len(self.active())
        if missing <= 0:
            self._dead_since = None
            return
        if self._dead_since is not None and now - self._dead_since < self.policy.restart_delay:
            return
        if not any(r.ever_ready for r in self.members) and self.members:
            return  # the first replica prepares the shared database alone
        if not any(r.ever_ready for r in self.members):
            missing = 1
        for _ in range(missing):
            self.spawn()
        self._dead_since = None

    def _scale(self, now: float) -> None:
        """Ask the autoscaler, from the average calls in flight per replica since last time."""
        assert self._scaler is not None
        period = max(now - self._last_sample, 1e-9)
        self._last_sample = now
        samples = []
        for replica in self.active():
            replica.account(now)
            value = replica.busy / period if replica.in_rotation else None
            replica.busy = 0.0
            samples.append(ReplicaSample(replica.started, value, ready=replica.in_rotation))
        # The HPA's current count is the spec's, not the pods alive: a replica being replaced
        # counts as one not ready yet, so a crash is healed rather than read as a scale-down.
        replacing = self.desired - len(samples)
        samples += [ReplicaSample(now, None, ready=False)] * max(replacing, 0)
        decision = self._scaler.decide(samples)
        self.decisions.append(decision)
        if decision.desired != self.desired:
            print(
                f"{self.name} pool: {decision.current} -> {decision.desired} replicas"
                f" ({decision.reason}, proposal {decision.recommendation})",
                flush=True,
            )
        if decision.desired < len(self.active()):
            # newest first, those not yet serving before those that do
            victims = sorted(self.active(), key=lambda r: (r.in_rotation, -r.started, -r.number))
            for replica in victims[: len(self.active()) - decision.desired]:
                replica.draining = True
                replica.in_rotation = False
                self._note("draining", replica, "scale-down")
        self.desired = decision.desired

    def _drain(self, now: float) -> None:
        """SIGTERM drained replicas once idle (or after the drain timeout); SIGKILL laggards."""
        for replica in self.members:
            if not replica.draining or not replica.alive():
                continue
            if replica.terminated_at is None:
                idle = replica.in_flight == 0
                if idle or now - replica.changed > self.policy.drain_timeout:
                    replica.process.send_signal(signal.SIGTERM)
                    replica.terminated_at = now
            elif now - replica.terminated_at > self.policy.stop_timeout:
                replica.process.kill()

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception as error:  # one bad turn must not end the supervision
                print(f"{self.name} pool: supervisor turn failed: {error!r}", flush=True)
            await asyncio.sleep(self.policy.probe_interval)

    async def start(self) -> None:
        """Start the first replica and the supervisor on the running event loop."""
        # stateless: one visitor's session cookie, set by a replica, never rides on the
        # next visitor's request
        self._http = StatelessClient(
            timeout=self.policy.request_timeout,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )
        self._stopping = False
        self._last_sync = self._last_sample = self.clock()
        self.spawn()
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"replica-pool-{self.name}"
        )

    async def stop(self) -> None:
        """Stop supervising, SIGTERM every replica, wait (bounded), SIGKILL what lingers."""
        self._stopping = True
        await cancel_and_wait(self._task)
        self._task = None
        for replica in self.members:
            replica.in_rotation = False
            if replica.alive():
                replica.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_timeout
        for replica in self.members:
            while replica.alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if replica.alive():
                replica.process.kill()
            replica.process.wait()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- the load balancer -------------------------------------------------------------------

    def pick(self, tried: Sequence[Replica] = ()) -> Replica | None:
        """The next replica in rotation (round robin), skipping those already tried.

        With none in rotation, a replica still starting serves: its start-up may wait for
        partners that, under ``ogsim up``, wait for it in turn (a party serves its discovery
        document before it is ready, and so must a pool)."""
        choices = [r for r in self.serving() if r not in tried]
        if not choices and not self.serving():
            choices = [r for r in self.members
                       if r.starting and not r.draining and r not in tried]
        if not choices:
            return None
        return choices[next(self._turn) % len(choices)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == ADMIN_PATH:
            await self._admin(scope, send)
            return
        if scope["path"] == POOL_METRICS_PATH:
            if scope["method"] not in ("GET", "HEAD"):
                await _json(send, 405, {"status": 405, "code": "METHOD_NOT_ALLOWED",
                                        "message": "GET only"})
                return
            await _text(send, exposition(self))
            return
        switch = switch_of(scope["method"], scope["path"])
        if switch is not None:
            await self._switch(scope, receive, send, *switch)
            return
        if scope["path"] == READY_PATH and (self.failure or not self.serving()):
            status = 500 if self.failure else 503
            await _json(send, status, {"ready": False, "failure": self.failure})
            return
        await self._forward(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The request's body, or None once a refusal was sent: too large (declared, or as it
        arrives) or too slow, so a trickled or endless body cannot hold the pool's memory or
        its every replica behind it."""
        limit = self.policy.max_body_bytes
        declared = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"),
                        None)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _json(send, 413, _too_large(limit))
            return None
        body = bytearray()
        try:
            async with asyncio.timeout(self.policy.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    body.extend(message.get("body", b""))
                    if len(body) > limit:
                        await _json(send, 413, _too_large(limit))
                        return None
                    if not message.get("more_body", False):
                        return bytes(body)
        except TimeoutError:
            await _json(send, 408, {"status": 408, "code": "REQUEST_TIMEOUT", "message":
                                    f"The request body did not arrive within"
                                    f" {self.policy.body_timeout:g} s."})
            return None

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._body(scope, receive, send)
        if body is None:
            return
        headers = vouched_headers(  # the replica sees the client's address, not the pool's
            [(k, v) for k, v in scope.get("headers", []) if k.lower() not in HOP_BY_HOP],
            self.admin_secret, scope.get("client"))
        retry_safe = any(k.lower() == b"idempotency-key" for k, _ in headers)
        if not retry_safe and scope["method"] in ("GET", "HEAD"):
            headers.append((b"idempotency-key", f"pool-{uuid.uuid4()}".encode()))
            retry_safe = True
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        tried: list[Replica] = []
        assert self._http is not None
        while True:
            replica = self.pick(tried)
            if replica is None:
                self.tally.unavailable += 1
                await _json(send, 503, _unavailable(
                    f"{self.name}: no replica is serving" + (" (all tried)" if tried else "")))
                return
            tried.append(replica)
            request = self._http.build_request(
                scope["method"], replica.origin + target.decode("latin-1"),
                headers=headers, content=body,
            )
            self._enter(replica)
            try:
                try:
                    response = await self._http.send(request, stream=True)
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    replica.in_rotation = False  # never sent: the process is gone or stuck
                    replica.starting = False
                    continue
                except httpx.TimeoutException:  # not retried: a slow pool is not made busier
                    self.tally.timed_out += 1
                    await _json(send, 504, {"status": 504, "code": "TIMEOUT",
                                            "message": f"{self.name}: the replica did not answer"
                                            f" within {self.policy.request_timeout:.0f} s"})
                    return
                except httpx.TransportError:  # the connection broke before any answer
                    if retry_safe:
                        continue
                    self.tally.unavailable += 1
                    await _json(send, 503, _unavailable(
                        f"{self.name}: the replica failed during the call"))
                    return
                try:
                    await send({
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in _RESPONSE_DROPPED],
                    })
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                finally:
                    await response.aclose()
                replica.served += 1
                self.tally.answered += 1
                return
            finally:
                self._leave(replica)

    async def _switch(self, scope: Scope, receive: Receive, send: Send, name: str,
                      action: str) -> None:
        """A data centre failed or recovered: at every replica, not at the one a rotation
        would pick (each runs its own front)."""
        if await self._body(scope, receive, send) is None:
            return
        authorization = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                              if k.lower() == b"authorization"), "")
        assert self._http is not None
        replicas = [r for r in self.members if r.alive() and not r.draining]
        status, body = await self._switches.broadcast(
            self._http, replicas, name, action, authorization)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _enter(self, replica: Replica) -> None:
        replica.account(self.clock())
        replica.in_flight += 1

    def _leave(self, replica: Replica) -> None:
        replica.account(self.clock())
        replica.in_flight -= 1

    async def _admin(self, scope: Scope, send: Send) -> None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        if not is_admin(headers.get("authorization"), self.admin_secret):
            await _json(send, 401, {"status": 401, "code": "UNAUTHENTICATED",
                                    "message": "operator administrator credentials required"})
            return
        if scope["method"] != "GET":
            await _json(send, 405, {"status": 405, "code": "METHOD_NOT_ALLOWED",
                                    "message": "GET only"})
            return
        await _json(send, 200, self.status())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _too_large(limit: int) -> dict[str, Any]:
    return {"status": 413, "code": "PAYLOAD_TOO_LARGE",
            "message": f"The request body exceeds {limit} bytes."}


def _unavailable(message: str) -> dict[str, Any]:
    return {"status": 503, "code": "UNAVAILABLE", "message": message}


async def _text(send: Send, payload: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
            (b"content-length", str(len(payload)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": payload})


async def _json(send: Send, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": payload})
