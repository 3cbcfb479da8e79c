"""``ogsim up --autoscale`` live: an operator as a pool of replica processes behind its load
balancer. A replica killed with SIGKILL under a steady stream of SIM swap calls is replaced,
few calls fail, and every call answered 200 has exactly one usage event; a pool with a tiny
target scales from one replica to two when calls arrive concurrently.

One operator (telco-fr) and no aggregator, so a pool's start-up needs no partner. Waits are
conditions on the pool's own state, bounded; a failure prints the run's logs. The supervisor's
decisions (healing delay, liveness, the starting-replica fallback, scale-down draining) are
tested on fake processes and a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from federation.client import ApplicationClient, new_client_key
from federation.config import FederationConfig, default_federation
from federation.launcher import FederationProcesses
from federation.pool_metrics import POOL_METRICS_PATH
from federation.pool_peer import vouched_headers
from federation.ports import free_port_block
from federation.replica_pool import PoolPolicy, Replica, ReplicaPool
from operators import TEST_NUMBERS, NumberPlan
from operators.policies import AutoscalerConfig

OPERATOR = "telco-fr"
SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
WORKERS = 4
"""Concurrent callers: each has at most one call in flight when the replica is killed."""
PAUSE = 0.1
"""Seconds each caller waits between calls (the stream must leave CPU to starting replicas)."""
BOUND = 60.0
"""Seconds any wait may take before the test fails (only a broken pool waits this long)."""


def one_operator(**operator: Any) -> FederationConfig:
    data = default_federation().model_dump(mode="json")
    data["operators"] = [o for o in data["operators"] if o["id"] == OPERATOR]
    data["operators"][0]["default_plan"] = "enterprise"  # 500 calls/s: no test call throttled
    data["operators"][0].update(operator)
    data["countries"] = [c for c in data["countries"] if c["code"] == "FR"]
    data.update(aggregators=[], anchors=[], trust=[], ports={})
    data["rate_card"] = {}
    return FederationConfig.model_validate(data)


def logs(run_dir: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
        for log in sorted(run_dir.glob("*.log"))
    )


@pytest.fixture
def pool_of(tmp_path: Path) -> Iterator[Any]:
    """Starts the one-operator federation with the given autoscaler; stops it afterwards."""
    started: list[FederationProcesses] = []

    def start(autoscale: AutoscalerConfig, **operator: Any) -> FederationProcesses:
        processes = FederationProcesses.prepare(
            one_operator(**operator), free_port_block(1), tmp_path / "run", autoscale=autoscale
        )
        started.append(processes)
        processes.start()
        try:
            processes.wait_ready(BOUND)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}\n{logs(processes.run_dir)}")
        return processes

    yield start
    for processes in started:
        codes = processes.stop()
        assert codes == {OPERATOR: 0}, logs(processes.run_dir)


class Pool:
    """The test's view of a running pool: its admin API, a registered application."""

    def __init__(self, processes: FederationProcesses, http: httpx.AsyncClient) -> None:
        self.processes = processes
        self.config = processes.config.operator(OPERATOR)
        self.http = http
        self.admin = {"Authorization": f"Bearer {self.config.admin_secret}"}
        self.url = self.config.api_root + "/sim-swap/v2/check"
        self.number = NumberPlan(self.config).test_number(
            next(t for t in TEST_NUMBERS if t.role == "recent-swap")
        )
        self.headers: dict[str, str] = {}

    async def status(self) -> dict[str, Any]:
        origin = self.config.issuer_url.removesuffix("/oauth")
        response = await self.http.get(origin + "/admin/replicas", headers=self.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def serving(self) -> set[int]:
        return {r["pid"] for r in (await self.status())["replicas"] if r["inRotation"]}

    async def wait_for(self, what: str, condition: Any) -> set[int]:
        deadline = time.monotonic() + BOUND
        while True:
            pids = await self.serving()
            if condition(pids):
                return pids
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: {await self.status()}\n{logs(self.processes.run_dir)}")
            await asyncio.sleep(0.1)

    async def sign_in(self) -> None:
        key = new_client_key()
        registered = await self.http.post(
            self.config.issuer_url + "/admin/clients",
            headers=self.admin,
            json={
                "client_id": "pool-test",
                "client_name": "replica pool test",
                "jwks": {"keys": [dict(key.as_dict(private=False))]},
                "grant_types": ["client_credentials"],
                "scope": "sim-swap:check",
                "purposes": ["dpv:FraudPreventionAndDetection"],
            },
        )
        assert registered.status_code in (200, 201), registered.text
        client = await ApplicationClient.discover(
            "pool-test", key, self.config.issuer_url, self.http
        )
        token = (await client.client_credentials(SCOPE))["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self) -> tuple[str, int]:
        correlator, response = await self.answer()
        return correlator, 0 if response is None else response.status_code

    async def answer(self) -> tuple[str, httpx.Response | None]:
        correlator = str(uuid.uuid4())
        try:
            response = await self.http.post(
                self.url,
                json={"phoneNumber": self.number},
                headers={**self.headers, "x-correlator": correlator,
                         "Idempotency-Key": correlator},
            )
        except httpx.HTTPError:
            return correlator, None
        return correlator, response

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The pool's own Prometheus series: (sample name, sorted labels) to value."""
        origin = self.config.issuer_url.removesuffix("/oauth")
        response = await self.http.get(origin + POOL_METRICS_PATH)
        assert response.status_code == 200, response.text
        return series(response.text)


def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def usage_events(run_dir: Path) -> dict[str, int]:
    """Usage events per correlator of the test's application, read from the shared file."""
    with sqlite3.connect(run_dir / f"{OPERATOR}.sqlite3") as db:
        rows = db.execute(
            "SELECT correlator, COUNT(*) FROM usage_events WHERE client_id = 'pool-test'"
            " GROUP BY correlator"
        ).fetchall()
    return {str(correlator): int(count) for correlator, count in rows}


async def test_the_pool_scales_up_and_heals_a_killed_replica_losing_no_usage_event(
    pool_of: Any,
) -> None:
    processes = pool_of(
        AutoscalerConfig(
            target=0.1, min_replicas=1, max_replicas=2, readiness_delay=0, sync_period=1
        )
    )
    results: list[tuple[str, int]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        pool = Pool(processes, http)
        first = await pool.wait_for("one replica in rotation", lambda pids: len(pids) == 1)
        await pool.sign_in()
        stop = asyncio.Event()

        async def caller() -> None:  # a steady, bounded stream: one call at a time, paced
            while not stop.is_set():
                results.append(await pool.call())
                await asyncio.sleep(PAUSE)

        callers = [asyncio.create_task(caller()) for _ in range(WORKERS)]
        try:
            # Scale-up: four callers keep 0.4-1 call in flight (calls of 10-40 ms, 100 ms
            # apart), four times the tiny target or more. At 0.5 a fast minute (11 ms calls,
            # 0.4 in flight) never scaled up.
            before = await pool.wait_for("a second replica", lambda pids: len(pids) == 2)
            assert first < before
            scaled = len(results)
            while len(results) < scaled + 40:  # a stream through both replicas
                await asyncio.sleep(0.02)
            # Healing: SIGKILL one replica mid-stream; the pool replaces it.
            victim = min(before)
            killed_at = len(results)
            os.kill(victim, signal.SIGKILL)
            healed = await pool.wait_for(
                "the killed replica replaced by a ready one",
                lambda pids: victim not in pids and len(pids) == 2,
            )
            healed_at = len(results)
            while len(results) < healed_at + 40:  # and the healed pool serves on
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.gather(*callers)
        status = await pool.status()

    assert status["desired"] == 2
    assert len(healed - before) == 1, "one new replica process"
    kinds = [e["kind"] for e in status["events"]]
    assert kinds.count("died") == 1 and kinds.count("ready") == 3, status["events"]
    failed = [(c, s) for c, s in results if s != 200]
    # Each caller has at most one call in flight at the kill; a call routed to the dead replica
    # later is refused at connect and sent to the other one, so no more can fail.
    assert len(failed) <= WORKERS, failed
    print(
        f"calls {len(results)} (scaled up at {scaled}, killed at {killed_at}, healed at"
        f" {healed_at}), failed {len(failed)}"
    )
    processes.stop()  # flushes every replica's group commit before the file is read
    events = usage_events(processes.run_dir)
    answered = {c for c, s in results if s == 200}
    assert not answered - set(events), "every call answered 200 has its usage event"
    assert all(count == 1 for count in events.values()), "none twice"
    assert set(events) <= {c for c, _ in results}, "no event for a call nobody made"


QUOTA = 12
"""Calls a month the test's plan allows: two replicas with counters of their own would grant
twice as many (a month, not a day, so that a run across midnight is not a new period)."""


async def test_replicas_sharing_redis_grant_the_plan_quota_once(
    pool_of: Any, redis_server: str
) -> None:
    tiny = {
        "name": "tiny",
        "rate_per_second": 100,
        "burst": 100,
        "quota": {"limit": QUOTA, "period": "month"},
    }
    processes = pool_of(
        AutoscalerConfig(target=4, min_replicas=2, max_replicas=2, readiness_delay=0,
                         sync_period=1),
        plans=[tiny], default_plan="tiny", redis_url=redis_server + "/0",
    )
    async with httpx.AsyncClient(timeout=30) as http:
        pool = Pool(processes, http)
        pids = await pool.wait_for("two replicas in rotation", lambda pids: len(pids) == 2)
        await pool.sign_in()
        answers = [await pool.answer() for _ in range(3 * QUOTA)]
        status = await pool.status()
        metrics = await pool.metrics()

    codes = [response.status_code if response else 0 for _, response in answers]
    assert codes.count(200) == QUOTA, codes
    refused = [response.json()["code"] for _, response in answers
               if response is not None and response.status_code == 429]
    assert refused == ["QUOTA_EXCEEDED"] * (2 * QUOTA), codes
    served = {r["pid"]: r["served"] for r in status["replicas"]}
    assert set(served) == pids and all(n >= QUOTA for n in served.values()), served
    pool_label = (("pool", OPERATOR),)
    assert metrics[("ogsim_pool_desired_replicas", pool_label)] == 2
    assert metrics[("ogsim_pool_replicas", (("pool", OPERATOR), ("state", "serving")))] == 2
    assert metrics[("ogsim_pool_answers_total", pool_label)] >= 3 * QUOTA
    assert metrics[("ogsim_pool_replica_seconds_total", pool_label)] > 0


# -- the supervisor's decisions, on fake processes and a fake clock ------------------------------


class FakeProcess:
    """A replica process that only dies when told to (or signalled)."""

    pids = iter(range(1000, 2000))

    def __init__(self) -> None:
        self.pid = next(self.pids)
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if self.returncode is None:
            self.returncode = -sig

    def wait(self, timeout: float | None = None) -> int:
        assert self.returncode is not None
        return self.returncode


class ScriptedPool(ReplicaPool):
    """A pool whose replicas answer the readiness probe as the test says."""

    answers: dict[int, int | None]

    async def probe(self, replica: Replica) -> int | None:
        return self.answers.get(replica.number, 200)


def scripted(clock: Any, **options: Any) -> ScriptedPool:
    pool = ScriptedPool(
        "telco-x",
        lambda port: ["replica", str(port)],
        admin_secret="s",
        clock=clock,
        launch=lambda command, log, env: FakeProcess(),
        policy=PoolPolicy(probe_interval=0.5, failures_to_down=2, restart_delay=3.0),
        **options,
    )
    pool.answers = {}
    return pool


async def test_a_dead_replica_is_replaced_after_the_restart_delay(clock: Any) -> None:
    pool = scripted(clock, replicas=2)
    pool.spawn()
    await pool.tick()  # the first replica alone until it is ready: it prepares the database
    assert [r.number for r in pool.members] == [1, 2]
    await pool.tick()
    assert [r.number for r in pool.serving()] == [1, 2]
    pool.members[0].process.kill()
    await pool.tick()
    assert [r.number for r in pool.members] == [2], "reaped, not yet replaced"
    clock.advance(2.9)
    await pool.tick()
    assert [r.number for r in pool.members] == [2]
    clock.advance(0.1)
    await pool.tick()
    assert [r.number for r in pool.members] == [2, 3]
    assert [r.number for r in pool.serving()] == [2], "routed to only once its probe answers"
    await pool.tick()
    assert [r.number for r in pool.serving()] == [2, 3]


async def test_a_stuck_replica_leaves_the_rotation_then_is_killed(clock: Any) -> None:
    pool = scripted(clock, replicas=1)
    pool.spawn()
    await pool.tick()
    stuck = pool.members[0]
    pool.answers[stuck.number] = None
    await pool.tick()
    assert stuck.in_rotation, "one failed probe is not enough"
    await pool.tick()
    assert not stuck.in_rotation
    for _ in range(pool.policy.liveness_failures - 2):
        await pool.tick()
    assert signal.SIGKILL in stuck.process.signals  # type: ignore[attr-defined]


async def test_while_none_is_ready_a_starting_replica_serves(clock: Any) -> None:
    pool = scripted(clock, replicas=1)
    starting = pool.spawn()
    pool.answers[starting.number] = 503
    await pool.tick()
    assert pool.serving() == [] and pool.pick() is starting
    pool.answers[starting.number] = 500  # its start-up failed: no longer a fallback
    await pool.tick()
    assert pool.pick() is None


async def test_a_crash_is_healed_not_read_as_a_scale_down(clock: Any) -> None:
    pool = scripted(
        clock,
        autoscaler=AutoscalerConfig(target=1, min_replicas=1, max_replicas=3,
                                    readiness_delay=0, sync_period=1),
    )
    pool.spawn()
    await pool.tick()
    pool.desired = 2
    await pool.tick()
    for replica in pool.members:
        replica.in_flight = 1  # on target: the autoscaler wants no change
    clock.advance(1)
    await pool.tick()
    assert pool.desired == 2 and len(pool.serving()) == 2
    pool.members[0].process.kill()
    clock.advance(1)
    await pool.tick()  # the sync runs with one replica alive and one being replaced
    assert pool.desired == 2
    assert pool.decisions[-1].current == 2


async def test_scale_down_drains_the_newest_replica_before_stopping_it(clock: Any) -> None:
    pool = scripted(
        clock,
        autoscaler=AutoscalerConfig(target=1, min_replicas=1, max_replicas=3,
                                    readiness_delay=0, sync_period=1),
    )
    pool.spawn()
    await pool.tick()
    pool.desired = 2
    await pool.tick()
    await pool.tick()
    old, new = pool.members
    assert pool.serving() == [old, new]
    new.in_flight = 1  # a call still running on the newest; the pool is far below target
    clock.advance(400)  # beyond the scale-down stabilisation window
    await pool.tick()
    assert new.draining and not new.in_rotation and not old.draining
    assert new.process.signals == []  # type: ignore[attr-defined]
    assert pool.pick() is old
    new.in_flight = 0
    await pool.tick()
    assert new.process.signals == [signal.SIGTERM]  # type: ignore[attr-defined]
    await pool.tick()
    assert pool.members == [old] and pool.desired == 1


async def scrape(pool: ReplicaPool) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /pool/metrics from the pool's ASGI app, no server."""
    sent = await ask(pool, "GET")
    assert sent[0]["status"] == 200
    assert sent[0]["headers"][0] == (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
    return series(b"".join(m.get("body", b"") for m in sent[1:]).decode())


async def ask(pool: ReplicaPool, method: str) -> list[Any]:
    """The ASGI messages the pool sends for ``method`` on /pool/metrics."""
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await pool(
        {"type": "http", "method": method, "path": POOL_METRICS_PATH, "headers": []}, receive, send
    )
    return sent


async def test_pool_metrics_answer_only_get(clock: Any) -> None:
    sent = await ask(scripted(clock, replicas=1), "POST")
    assert sent[0]["status"] == 405
    assert json.loads(sent[1]["body"])["code"] == "METHOD_NOT_ALLOWED"


async def test_pool_metrics_count_replicas_by_state_events_and_replica_seconds(
    clock: Any,
) -> None:
    pool = scripted(clock, replicas=2)
    pool.spawn()
    await pool.tick()  # replica 1 ready; replica 2 started
    clock.advance(10)
    await pool.tick()  # both serving: 10 s of two live processes
    pool.members[0].process.kill()
    pool.members[1].in_flight = 3
    clock.advance(5)
    await pool.tick()  # one died (reaped) and one serving: 5 s more of two processes
    metrics = await scrape(pool)

    def state(name: str) -> float:
        return metrics[("ogsim_pool_replicas", (("pool", "telco-x"), ("state", name)))]

    assert (state("serving"), state("starting"), state("draining")) == (1, 0, 0)
    label = (("pool", "telco-x"),)
    assert metrics[("ogsim_pool_desired_replicas", label)] == 2
    assert metrics[("ogsim_pool_calls_in_flight", label)] == 3
    assert metrics[("ogsim_pool_replica_seconds_total", label)] == pytest.approx(30.0)

    def events(kind: str) -> float:
        return metrics[("ogsim_pool_events_total", (("kind", kind), ("pool", "telco-x")))]

    assert (events("started"), events("ready"), events("died")) == (2, 2, 1)
    assert events("in_rotation") == 2
    clock.advance(3)
    await pool.tick()  # the restart delay passed: a replacement starts
    assert state_of(await scrape(pool), "starting") == 1


def state_of(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return metrics[("ogsim_pool_replicas", (("pool", "telco-x"), ("state", name)))]


class _SessionReplica(BaseHTTPRequestHandler):
    """A replica whose sign-in page sets a session cookie; every page echoes the cookie."""

    def do_GET(self) -> None:
        body = (self.headers.get("Cookie") or "<none>").encode()
        self.send_response(200)
        if self.path == "/my/sign-in":
            self.send_header("Set-Cookie", "ogsim_my=alice-session; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


async def test_one_visitors_session_cookie_never_rides_on_the_next_visitors_request(
    clock: Any,
) -> None:
    """The pool forwards every browser's requests through one client: a cookie a replica set
    for Alice must reach the replica on Alice's requests only, never on Bob's."""
    pool = scripted(clock, replicas=1)
    await pool.start()
    (replica,) = pool.members
    replica.in_rotation = True
    server = ThreadingHTTPServer(("127.0.0.1", replica.port), _SessionReplica)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        transport = httpx.ASGITransport(app=pool)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as alice:
            signed_in = await alice.get("/my/sign-in")
            assert signed_in.headers["set-cookie"].startswith("ogsim_my=alice-session")
            assert (await alice.get("/my/")).text == "ogsim_my=alice-session"
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as bob:
            assert (await bob.get("/my/")).text == "<none>"
    finally:
        server.shutdown()
        server.server_close()
        await pool.stop()


class _PeerEchoReplica(BaseHTTPRequestHandler):
    """A replica that answers with the peer header the pool sent it."""

    def do_GET(self) -> None:
        body = (self.headers.get("x-ogsim-peer") or "<none>").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


async def test_the_pool_vouches_for_each_clients_address(clock: Any) -> None:
    """Each client's own address reaches the replica with the pool's HMAC, and a header the
    client made up does not (the replica's PoolPeer believes only the pool's)."""
    pool = scripted(clock, replicas=1)
    await pool.start()
    (replica,) = pool.members
    replica.in_rotation = True
    server = ThreadingHTTPServer(("127.0.0.1", replica.port), _PeerEchoReplica)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for address in ("198.51.100.8", "203.0.113.9"):
            transport = httpx.ASGITransport(app=pool, client=(address, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://front") as http:
                seen = (await http.get("/", headers={"x-ogsim-peer": "10.8.0.2 forged"})).text
            ((_, vouched),) = vouched_headers([], pool.admin_secret, (address, 1234))
            assert seen == vouched.decode()
    finally:
        server.shutdown()
        server.server_close()
        await pool.stop()


def _bodied(clock: Any, **policy: Any) -> ScriptedPool:
    pool = scripted(clock, replicas=1)
    pool.policy = PoolPolicy(probe_interval=0.5, failures_to_down=2, restart_delay=3.0, **policy)
    return pool


async def _post(pool: ScriptedPool, receive: Any, headers: list[tuple[bytes, bytes]]
                ) -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await pool({"type": "http", "method": "POST", "path": "/sim-swap/v2/check",
                "headers": headers, "query_string": b""}, receive, send)
    return sent


async def test_a_body_too_large_is_refused_before_it_is_held(clock: Any) -> None:
    """The pool holds a body whole (to send it to another replica): one past its limit is
    refused, unread when its length is declared, as soon as it passes the limit otherwise."""
    pool = _bodied(clock, max_body_bytes=1000)

    async def unread() -> Any:
        raise AssertionError("a declared oversized body is not read")

    declared = await _post(pool, unread, [(b"content-length", b"5000000000")])
    assert declared[0]["status"] == 413
    assert json.loads(declared[1]["body"])["code"] == "PAYLOAD_TOO_LARGE"
    chunks = 0

    async def endless() -> Any:
        nonlocal chunks
        chunks += 1
        return {"type": "http.request", "body": b"x" * 300, "more_body": True}

    streamed = await _post(pool, endless, [])
    assert streamed[0]["status"] == 413 and chunks == 4, "read up to just past the limit"


async def test_a_body_that_never_completes_is_refused_in_time(clock: Any) -> None:
    pool = _bodied(clock, body_timeout=0.05)
    never = asyncio.Event()

    async def trickle() -> Any:
        await never.wait()

    sent = await asyncio.wait_for(_post(pool, trickle, []), timeout=30)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["code"] == "REQUEST_TIMEOUT"


class _Site(BaseHTTPRequestHandler):
    """A replica's data-centre admin: records each switch it is sent, answers as told."""

    switches: list[tuple[int, str, str]]
    status: dict[int, int]

    def do_POST(self) -> None:
        port = self.server.server_address[1]
        self.switches.append((port, self.path, self.headers.get("Authorization") or ""))
        code = self.status.get(port, 200)
        body = json.dumps({"name": self.path.split("/")[3], "available": "recover" in self.path}
                          if code == 200 else {"status": code}).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


async def test_a_data_centre_switch_reaches_every_replica_and_each_later_one(clock: Any) -> None:
    """Each replica runs its own front: failing Madrid through the pool must fail it at all of
    them, and a replica started afterwards takes the switch before it serves."""
    _Site.switches, _Site.status = [], {}
    pool = scripted(clock, replicas=2)
    pool._http = httpx.AsyncClient()
    servers: list[ThreadingHTTPServer] = []

    def replica() -> Replica:
        started = pool.spawn()
        server = ThreadingHTTPServer(("127.0.0.1", started.port), _Site)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return started

    try:
        first, second = replica(), replica()
        await pool.tick()
        transport = httpx.ASGITransport(app=pool)
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as admin:
            answer = await admin.post("/admin/data-centres/madrid/fail",
                                      headers={"Authorization": "Bearer s"})
        assert answer.status_code == 200
        assert answer.json()["replicas"] == {"applied": 2, "of": 2}
        assert sorted(_Site.switches) == sorted(
            (r.port, "/admin/data-centres/madrid/fail", "Bearer s") for r in (first, second))

        _Site.switches.clear()
        late = replica()
        _Site.status[late.port] = 500  # its admin fails: it must not serve Madrid meanwhile
        await pool.tick()
        assert late not in pool.serving()
        del _Site.status[late.port]
        await pool.tick()
        assert late in pool.serving()
        assert _Site.switches[-1] == (late.port, "/admin/data-centres/madrid/fail", "Bearer s")
        assert {port for port, _, _ in _Site.switches} == {late.port}, "the others are level"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        await pool._http.aclose()
