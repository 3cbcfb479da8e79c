"""QoD notifications: each status change reaches the session's sink as the YAML's CloudEvent,
with the sink credential's bearer token, in the background and with bounded retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from operators.camara import CallContext
from operators.camara.quality_on_demand import CreateSession
from operators.core import NetworkFunctionKind, PolicyFunction
from operators.integrator import CloudEventNotifier, GuardedExecutor, Integrator
from operators.integrator.notifications import EVENT_TYPE
from operators.subscriber_base import SubscriberBase
from tests.operators import direct_backends
from tests.operators.direct_backends import Direct

base = direct_backends.base  # fixtures, found by name
functions = direct_backends.functions

CTX = CallContext(client_id="app-1")
SINK = "https://app.example/notifications"


class Sink:
    """An application's notification endpoint: records what arrives, answers as told."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.answers: list[int] = []

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.json()))
        return Response(status_code=self.answers.pop(0) if self.answers else 204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/notifications", self.endpoint, methods=["POST"])])


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _until(condition: Callable[[], bool], bound: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def _body(sink: str, duration: int = 60, expires: float = 2_000_000_000.0) -> CreateSession:
    return CreateSession.model_validate(
        {
            "device": {"phoneNumber": "+34600000001"},
            "qosProfile": "QOS_S",
            "applicationServer": {"ipv4Address": "198.51.100.1"},
            "duration": duration,
            "sink": sink,
            "sinkCredential": {
                "credentialType": "ACCESSTOKEN",
                "accessToken": "sink-token-1",
                "accessTokenExpiresUtc": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(),
                "accessTokenType": "bearer",
            },
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def notifier(clock: Clock, sink: Sink) -> CloudEventNotifier:
    async def sleep(seconds: float) -> None:  # waits on the fake clock, not the wall
        target = clock() + seconds
        while clock() < target:
            await asyncio.sleep(0.001)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sink.app()))
    return CloudEventNotifier(
        "https://op.example/quality-on-demand/v1/sessions", clock=clock, http=http, sleep=sleep,
        backoff=0.0,
    )


@pytest.fixture
async def qod(
    base: SubscriberBase,
    functions: dict[NetworkFunctionKind, Direct],
    clock: Clock,
    notifier: CloudEventNotifier,
) -> AsyncIterator[tuple[Integrator, PolicyFunction]]:
    pcf = PolicyFunction(base, clock=clock)
    functions[NetworkFunctionKind.POLICY_FUNCTION] = Direct(pcf)
    yield Integrator(base, GuardedExecutor(functions), calendar=clock, notifier=notifier), pcf
    await notifier.aclose()


def _event(sink: Sink, index: int) -> dict[str, Any]:
    headers, event = sink.received[index]
    assert headers["authorization"] == "Bearer sink-token-1"
    assert headers["content-type"] == "application/cloudevents+json"
    assert event["specversion"] == "1.0" and event["type"] == EVENT_TYPE
    assert event["datacontenttype"] == "application/json"
    assert event["source"].endswith(f"/sessions/{event['data']['sessionId']}")
    assert event["id"] and event["time"].endswith("Z")
    return event


async def test_created_deleted_expired_and_terminated_sessions_are_notified(
    qod: tuple[Integrator, PolicyFunction],
    notifier: CloudEventNotifier,
    sink: Sink,
    clock: Clock,
    base: SubscriberBase,
) -> None:
    integrator, pcf = qod
    first = await integrator.create_session(CTX, _body(SINK))
    await notifier.drain()
    assert _event(sink, 0)["data"] == {"sessionId": str(first.sessionId), "qosStatus": "AVAILABLE"}
    await integrator.delete_session(CTX, str(first.sessionId))
    await notifier.drain()
    assert _event(sink, 1)["data"] == {
        "sessionId": str(first.sessionId),
        "qosStatus": "UNAVAILABLE",
        "statusInfo": "DELETE_REQUESTED",
    }

    second = await integrator.create_session(CTX, _body(SINK, duration=60))
    clock.now += 61  # the reminder wakes on the clock, the sweep marks it expired
    await _until(lambda: len(sink.received) == 4)
    assert _event(sink, 3)["data"] == {
        "sessionId": str(second.sessionId),
        "qosStatus": "UNAVAILABLE",
        "statusInfo": "DURATION_EXPIRED",
    }

    other = base.test_number("recent-swap")
    body = CreateSession.model_validate(
        {**_body(SINK).model_dump(mode="json", exclude_none=True), "device": {"phoneNumber": other}}
    )
    third = await integrator.create_session(CTX, body)
    held = integrator.sessions.get(str(third.sessionId))
    assert held is not None
    clock.now += 10
    pcf.sessions.delete(held.pcf_id)  # the network ends it before its time
    ended = await integrator.get_session(CTX, str(third.sessionId))
    assert (ended.qosStatus, ended.statusInfo) == ("UNAVAILABLE", "NETWORK_TERMINATED")
    # "the time when the session was terminated", not its planned end (YAML, expiresAt)
    assert ended.expiresAt.timestamp() == clock.now and ended.duration == 10
    await notifier.drain()
    assert _event(sink, 5)["data"]["statusInfo"] == "NETWORK_TERMINATED"
    assert len(sink.received) == 6


async def test_bounded_retries_and_no_sink_no_call(
    qod: tuple[Integrator, PolicyFunction], notifier: CloudEventNotifier, sink: Sink
) -> None:
    integrator, _ = qod
    sink.answers = [503, 503, 503, 503]
    await integrator.create_session(CTX, _body(SINK))
    await notifier.drain()
    assert len(sink.received) == 3 and notifier.deliveries[-1].attempts == 3
    assert notifier.deliveries[-1].status == 503
    sink.answers = [401]
    session = integrator.sessions.all()[0]
    notifier.status_changed(session, session.status)
    await notifier.drain()
    assert len(sink.received) == 4, "a 4xx other than 429 is not retried"
    silent = _body(SINK).model_copy(update={"sink": None, "sinkCredential": None})
    await integrator.delete_session(CTX, session.session_id)
    await notifier.drain()
    before = len(sink.received)
    await integrator.create_session(CTX, silent)
    await notifier.drain()
    assert len(sink.received) == before, "no sink, nothing sent"


async def test_an_expired_sink_token_sends_nothing(
    qod: tuple[Integrator, PolicyFunction], notifier: CloudEventNotifier, sink: Sink, clock: Clock
) -> None:
    integrator, _ = qod
    await integrator.create_session(CTX, _body(SINK, expires=clock() - 1))
    await notifier.drain()
    assert sink.received == []


# -- one real HTTPS listener on loopback -------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sink.pem", directory / "sink.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def https_sink(tmp_path: Path, sink: Sink) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    cert, key = _self_signed(tmp_path)
    config = uvicorn.Config(
        sink.app(),
        host="127.0.0.1",
        port=0,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await _until(lambda: server.started, bound=60.0)
    port = server.servers[0].sockets[0].getsockname()[1]
    trust = ssl.create_default_context(cafile=str(cert))
    yield f"https://127.0.0.1:{port}/notifications", trust
    server.should_exit = True
    await asyncio.wait_for(task, 10.0)


async def test_notifications_over_real_https_on_loopback(
    base: SubscriberBase,
    functions: dict[NetworkFunctionKind, Direct],
    clock: Clock,
    sink: Sink,
    https_sink: tuple[str, ssl.SSLContext],
) -> None:
    url, trust = https_sink
    functions[NetworkFunctionKind.POLICY_FUNCTION] = Direct(PolicyFunction(base, clock=clock))
    notifier = CloudEventNotifier(
        "https://op.example/quality-on-demand/v1/sessions",
        clock=clock,
        http=httpx.AsyncClient(verify=trust, timeout=5.0),
    )
    integrator = Integrator(base, GuardedExecutor(functions), calendar=clock, notifier=notifier)
    try:
        created = await integrator.create_session(CTX, _body(url))
        await integrator.delete_session(CTX, str(created.sessionId))
        await notifier.drain()
        statuses = [e["data"].get("statusInfo", e["data"]["qosStatus"]) for _, e in sink.received]
        assert statuses == ["AVAILABLE", "DELETE_REQUESTED"]
        assert all(_event(sink, i) for i in range(2))
        assert [d.status for d in notifier.deliveries] == [204, 204]
    finally:
        await notifier.aclose()


def test_expiry_reminders_do_not_multiply_with_each_expiry() -> None:
    """Each sweep reminds again for every session still running; a reminder already pending
    for that moment is not made twice (ten sessions expiring in turn made 1,023 sweeps)."""
    from operators.integrator.notifications import CloudEventNotifier
    from tests.sim.virtual_time import run_in_virtual_time

    expiries = [10.0 * (n + 1) for n in range(10)]
    sweeps: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        notifier = CloudEventNotifier("https://op.example", clock=loop.time)

        def sweep() -> None:
            now = loop.time()
            sweeps.append(now)
            for at in expiries:  # what the integrator's sweep does for sessions still live
                if at > now:
                    notifier.remind(at, sweep)

        for at in expiries:  # one reminder per session created
            notifier.remind(at, sweep)
        await asyncio.sleep(expiries[-1] + 1)
        await notifier.aclose()

    run_in_virtual_time(main())
    assert sweeps == expiries


async def test_a_sink_answering_without_end_holds_no_memory() -> None:
    """A sink's answer is only its status: a body that never ends is never read (the whole
    answer was read into memory before, for as long as the sink kept sending)."""
    from operators.integrator.notifications import CloudEventNotifier

    served: list[int] = []

    class Endless(httpx.AsyncByteStream):  # 64 MiB stands for "without end"
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in range(1024):
                served.append(chunk)
                yield b"x" * 65536
                await asyncio.sleep(0)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Endless())

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    notifier = CloudEventNotifier("https://op.example", clock=lambda: 0.0, http=http)
    try:
        await notifier._deliver("https://app.example/sink", {"id": "1"}, {})
    finally:
        await http.aclose()
    assert [(d.status, d.attempts) for d in notifier.deliveries] == [(200, 1)]
    assert len(served) < 4, f"{len(served)} chunks of the answer were read"


async def test_deliveries_under_way_are_bounded() -> None:
    """A sink that never answers holds each delivery through its retries: past the bound a
    notification is recorded as not sent (0 attempts) instead of one more task."""
    from operators.integrator import notifications

    never = asyncio.Event()

    class Stalling(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await never.wait()
            return httpx.Response(204)

    http = httpx.AsyncClient(transport=Stalling())
    notifier = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0,
                                                http=http)
    try:
        for n in range(notifications.IN_FLIGHT + 5):  # over enough sinks to fill the bound
            notifier.send(f"https://app{n % 20}.example/sink", {"id": str(n)})
        await asyncio.sleep(0)
        assert len(notifier._tasks) == notifications.IN_FLIGHT
        assert [(d.attempts, d.status) for d in notifier.deliveries] == [(0, None)] * 5
    finally:
        await notifier.aclose()
        await http.aclose()


async def test_a_stalling_sink_fills_only_its_own_share_of_the_bound() -> None:
    """One application whose endpoint stalls must not have every other application's
    notifications dropped: it gets ``IN_FLIGHT_PER_SINK`` deliveries under way, the others
    still go out, and the count per origin is given back whatever ends a delivery."""
    from operators.integrator import notifications

    never = asyncio.Event()
    answered: list[str] = []

    class OneStalls(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "stalls.example":
                await never.wait()
            answered.append(str(request.url))
            return httpx.Response(204)

    http = httpx.AsyncClient(transport=OneStalls())
    notifier = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0,
                                                http=http)
    share = notifications.IN_FLIGHT_PER_SINK
    try:
        for n in range(share + 3):  # the same origin, however the path and port are written
            sink = ("https://stalls.example/a" if n % 2 else "https://stalls.example:443/b")
            notifier.send(sink, {"id": str(n)})
        assert [(d.attempts, d.status) for d in notifier.deliveries] == [(0, None)] * 3
        notifier.send("https://other.example/sink", {"id": "other"})
        await _until(lambda: len(notifier.deliveries) == 4)
        assert notifier.deliveries[-1].sink == "https://other.example/sink"
        assert notifier.deliveries[-1].status == 204
        assert notifier._per_origin == {"https://stalls.example:443": share}
    finally:
        await notifier.aclose()
        await http.aclose()
    await _until(lambda: not notifier._per_origin)  # cancelled deliveries give it back too


async def test_the_count_per_sink_is_given_back_when_deliveries_end() -> None:
    from operators.integrator import notifications

    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    notifier = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0,
                                                http=http)
    try:
        for n in range(notifications.IN_FLIGHT_PER_SINK * 2):
            notifier.send("https://app.example/sink", {"id": str(n)})
            await notifier.drain()
        assert notifier._per_origin == {}
        assert all(d.status == 204 for d in notifier.deliveries)
    finally:
        await notifier.aclose()
        await http.aclose()


async def test_the_count_per_sink_is_given_back_however_a_delivery_ends() -> None:
    """Failed deliveries, unparseable sinks (counted under their own string) and deliveries
    cancelled by ``aclose``, while backing off or before they first ran, all give back their
    count, so the count per origin neither leaks nor grows without end."""
    from operators.integrator import notifications

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.example":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503 if request.url.host == "busy.example" else 204)

    async def at_once(_: float) -> None:
        return None

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    failing = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0,
                                               http=http, attempts=2, sleep=at_once)
    sinks = ["https://down.example/s", "https://busy.example/s", "not a url", "https://[::1/x"]
    try:
        for sink in sinks:
            failing.send(sink, {"id": sink})
        assert failing._per_origin == {"https://down.example:443": 1,
                                       "https://busy.example:443": 1,
                                       "not a url": 1, "https://[::1/x": 1}
        await failing.drain()
        assert failing._per_origin == {}
        assert {(d.sink, d.attempts, d.status) for d in failing.deliveries} == {
            ("https://down.example/s", 2, None), ("https://busy.example/s", 2, 503),
            ("not a url", 2, None), ("https://[::1/x", 2, None)}
    finally:
        await failing.aclose()

    never = asyncio.Event()  # a retry's backoff waits until aclose cancels it
    backing_off = 0

    async def stalls(_: float) -> None:
        nonlocal backing_off
        backing_off += 1
        await never.wait()

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))  # aclose closed the first
    stalled = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0,
                                               http=http, sleep=stalls)
    share = notifications.IN_FLIGHT_PER_SINK
    try:
        for n in range(share + 1):
            stalled.send("https://busy.example/s", {"id": str(n)})
        await _until(lambda: backing_off == share)
        assert [(d.attempts, d.status) for d in stalled.deliveries] == [(0, None)]
        stalled.send("https://late.example/s", {"id": "late"})  # cancelled before it runs
        assert stalled._per_origin == {"https://busy.example:443": share,
                                       "https://late.example:443": 1}
    finally:
        await stalled.aclose()
        await http.aclose()
    await _until(lambda: not stalled._per_origin and not stalled._tasks)


async def test_a_notification_after_close_is_recorded_as_not_sent() -> None:
    """A session ending during shutdown: nothing is sent with the closed client (which
    raised in a task nobody awaited), and nothing is reminded."""
    from operators.integrator import notifications

    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    notifier = notifications.CloudEventNotifier("https://op.example", clock=lambda: 0.0)
    notifier.use_http(http)
    await notifier.aclose()
    await http.aclose()
    notifier.send("https://app.example/sink", {"id": "late"})
    notifier.remind(10.0, lambda: None)
    assert not notifier._tasks and not notifier._reminders and not notifier._per_origin
    assert [(d.sink, d.attempts, d.status) for d in notifier.deliveries] == [
        ("https://app.example/sink", 0, None)]
