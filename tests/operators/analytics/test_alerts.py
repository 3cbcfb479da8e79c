"""Alerts as signed webhooks: Standard Webhooks signatures checked (tampering, wrong secret,
stale timestamps refused), and the sender against a real HTTP receiver on loopback: signed
POSTs, retries on 5xx and refused connections, no retry on 4xx, a bounded queue that drops
the oldest, a stop that drains within its bound."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from operators.analytics.alerts import (
    Alert,
    WebhookSender,
    signed_body,
    verify_signature,
    webhook_key,
)

SECRET = b"whsec-test-secret"
NOW = 1_790_000_000.0


def _alert(client: str = "app-1", bucket: float = NOW - 3600) -> Alert:
    return Alert(
        "volume_spike",
        client,
        "sim-swap",
        "dev-1",
        "org-1",
        bucket,
        NOW,
        12.5,
        800.0,
        60.0,
        "800 calls against a usual 60.0 for this hour",
    )


def test_the_body_is_the_alert_and_the_signature_verifies() -> None:
    alert = _alert()
    body, headers = signed_body(alert, SECRET, at=NOW)
    assert json.loads(body) == alert.as_json()
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert headers["webhook-signature"].startswith("v1,")
    assert verify_signature(body, headers, SECRET, now=NOW + 10)
    upper = {name.title(): value for name, value in headers.items()}
    assert verify_signature(body, upper, SECRET, now=NOW)  # header names are case-insensitive


def test_tampering_a_wrong_secret_and_a_stale_or_future_timestamp_are_refused() -> None:
    body, headers = signed_body(_alert(), SECRET, at=NOW)
    assert not verify_signature(body.replace(b"800", b"900"), headers, SECRET, now=NOW)
    assert not verify_signature(body, headers, b"another-secret", now=NOW)
    assert not verify_signature(body, headers, SECRET, now=NOW + 301)
    assert not verify_signature(body, headers, SECRET, now=NOW - 301)
    assert verify_signature(body, headers, SECRET, now=NOW + 30, tolerance=60)
    replayed = {**headers, "webhook-timestamp": str(int(NOW) + 200)}
    assert not verify_signature(body, replayed, SECRET, now=NOW + 200)
    assert not verify_signature(body, {}, SECRET, now=NOW)


def test_a_rotated_secret_may_sign_alongside_the_old_one() -> None:
    body, headers = signed_body(_alert(), SECRET, at=NOW)
    _, new = signed_body(_alert(), b"new-secret", at=NOW)
    both = {
        **headers,
        "webhook-signature": f"{new['webhook-signature']} {headers['webhook-signature']}",
    }
    assert verify_signature(body, both, SECRET, now=NOW)
    assert verify_signature(body, both, b"new-secret", now=NOW)


@pytest.mark.parametrize(
    "changed",
    [
        {"webhook-signature": "v1,\u00e9t\u00e9"},  # not ASCII
        {"webhook-signature": "v1,\udcff"},  # a lone surrogate: not even UTF-8
        {"webhook-id": "msg_\udcff\u00e9"},
        {"webhook-timestamp": "\u00b2"},  # a digit to str.isdigit, not to int()
        {"webhook-timestamp": "\u0661\u0662\u0663"},  # Arabic-Indic digits
        {"webhook-timestamp": "9" * 5000},  # int() refuses over 4300 digits
        {"webhook-timestamp": "9" * 400},  # a float overflows
        {"webhook-timestamp": "-1"},
        {"webhook-timestamp": " 1790000000"},
    ],
)
def test_odd_headers_are_refused_never_raised_on(changed: dict[str, str]) -> None:
    body, headers = signed_body(_alert(), SECRET, at=NOW)
    assert verify_signature(body, {**headers, **changed}, SECRET, now=NOW) is False


def test_standard_webhooks_whsec_secrets_sign_with_their_decoded_key() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    assert webhook_key(secret) == webhook_key(secret.encode()) == key
    body, headers = signed_body(_alert(), secret, at=NOW)
    # the key is the decoded bytes: what a Standard Webhooks receiver library uses
    assert headers == signed_body(_alert(), key, at=NOW)[1]
    assert verify_signature(body, headers, secret, now=NOW)
    assert verify_signature(body, headers, key, now=NOW)
    assert not verify_signature(body, headers, secret.encode()[6:], now=NOW)
    # a raw secret is used as it is
    assert webhook_key("raw secret of 16+") == b"raw secret of 16+"
    assert verify_signature(*signed_body(_alert(), "raw", at=NOW), b"raw", now=NOW)


@pytest.mark.parametrize(
    ("secret", "named"),
    [
        ("whsec_not base64!", "the part after whsec_ is not valid base64"),
        ("whsec_", "whsec_ is followed by no key"),
        ("", "webhook secret is empty"),
    ],
)
def test_a_bad_secret_is_refused_when_the_sender_is_built(secret: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        WebhookSender("http://127.0.0.1:9/hook", secret)


def test_the_id_is_stable_per_alert_so_retries_deduplicate() -> None:
    _, first = signed_body(_alert(), SECRET, at=NOW)
    _, retry = signed_body(_alert(), SECRET, at=NOW + 5)
    _, other = signed_body(_alert(client="app-2"), SECRET, at=NOW)
    assert first["webhook-id"] == retry["webhook-id"] != other["webhook-id"]


BAD_GZIP = 999
"""A script entry: answer 200 with a body that claims gzip and is not (unreadable)."""


@dataclass
class Receiver:
    """The alert consumer: records what arrives, answers from ``script`` then 200."""

    script: list[int] = field(default_factory=list)
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        status = self.script.pop(0) if self.script else 200
        self.answered.append(status)
        if status == BAD_GZIP:
            return Response(b"not gzip at all", status_code=200,
                            headers={"content-encoding": "gzip"})
        if status < 300:
            self.received.append((body, dict(request.headers)))
        return Response(status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


async def _until(condition: Callable[[], bool], bound: float = 30.0) -> None:
    async with asyncio.timeout(bound):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def hook_url(receiver: Receiver) -> AsyncIterator[str]:
    config = uvicorn.Config(
        receiver.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await _until(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    await asyncio.wait_for(task, 10.0)


async def test_alerts_arrive_signed_and_in_order(receiver: Receiver, hook_url: str) -> None:
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW)
    await sender.start()
    alerts = [_alert(client=f"app-{k}") for k in range(5)]
    for alert in alerts:
        sender.submit(alert)
    await _until(lambda: len(receiver.received) == 5)
    await sender.stop()
    for (body, headers), alert in zip(receiver.received, alerts, strict=True):
        assert verify_signature(body, headers, SECRET, now=NOW)
        assert json.loads(body)["client_id"] == alert.client_id
        assert headers["content-type"] == "application/json"
    assert (sender.sent, sender.failed, sender.dropped) == (5, 0, 0)


async def test_5xx_answers_are_retried_with_the_same_id(receiver: Receiver, hook_url: str) -> None:
    receiver.script = [503, 500]
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, backoff=0.01)
    await sender.start()
    sender.submit(_alert())
    await _until(lambda: sender.sent == 1)
    await sender.stop()
    assert receiver.answered == [503, 500, 200]
    assert sender.attempts == 3 and sender.failed == 0
    ((_, headers),) = receiver.received
    assert headers["webhook-id"] == _alert().id


async def test_a_4xx_is_the_receivers_refusal_and_not_retried(
    receiver: Receiver, hook_url: str
) -> None:
    receiver.script = [400]
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, backoff=0.01)
    await sender.start()
    sender.submit(_alert(client="refused"))
    sender.submit(_alert(client="accepted"))
    await _until(lambda: sender.sent == 1)
    await sender.stop()
    assert receiver.answered == [400, 200]
    assert (sender.sent, sender.failed, sender.attempts) == (1, 1, 2)


async def test_retries_stop_after_max_attempts(receiver: Receiver, hook_url: str) -> None:
    receiver.script = [500] * 10
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, backoff=0.01, max_attempts=3)
    await sender.start()
    sender.submit(_alert())
    await _until(lambda: sender.failed == 1)
    await sender.stop()
    assert receiver.answered == [500, 500, 500] and sender.sent == 0


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port certainly refusing connections: bound (so nobody else takes it) but never
    listening, for as long as the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


async def test_a_refused_connection_is_retried_then_counted_failed(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook"
    sender = WebhookSender(url, SECRET, backoff=0.01, max_attempts=4)
    await sender.start()
    sender.submit(_alert())
    await _until(lambda: sender.failed == 1)
    await sender.stop()
    assert (sender.attempts, sender.sent) == (4, 0)


async def test_a_full_queue_drops_the_oldest(receiver: Receiver, hook_url: str) -> None:
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, max_pending=2)
    for k in range(5):  # before start: nothing is sent, the queue holds two
        sender.submit(_alert(client=f"app-{k}"))
    assert (sender.pending, sender.dropped) == (2, 3)
    await sender.start()
    await _until(lambda: sender.sent == 2)
    await sender.stop()
    assert [json.loads(body)["client_id"] for body, _ in receiver.received] == ["app-3", "app-4"]


async def test_stop_gives_up_on_what_it_cannot_deliver_within_its_bound(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook"
    sender = WebhookSender(url, SECRET, backoff=5.0, max_attempts=5, drain_timeout=0.2)
    await sender.start()
    for k in range(3):
        sender.submit(_alert(client=f"app-{k}"))
    async with asyncio.timeout(10):
        await sender.stop()
    assert (sender.sent, sender.failed, sender.pending) == (0, 3, 0)


async def test_submit_from_another_thread_wakes_the_sender(
    receiver: Receiver, hook_url: str
) -> None:
    client = httpx.AsyncClient(timeout=5.0)
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, client=client)
    await sender.start()
    await asyncio.to_thread(sender.submit, _alert(client="from-a-thread"))
    await _until(lambda: sender.sent == 1)
    await sender.stop()
    assert not client.is_closed  # a client passed in stays the caller's to close
    await client.aclose()


async def test_an_answer_that_cannot_be_read_is_a_failed_attempt_not_the_senders_end(
    receiver: Receiver, hook_url: str
) -> None:
    """A receiver answering a body httpx cannot decode (a bad gzip) made the sending task
    die for good: every later alert queued up and was dropped unseen."""
    receiver.script = [BAD_GZIP]
    sender = WebhookSender(hook_url, SECRET, clock=lambda: NOW, backoff=0.01)
    await sender.start()
    sender.submit(_alert(client="first"))
    sender.submit(_alert(client="second"))
    await _until(lambda: sender.sent == 2)
    await sender.stop()
    assert receiver.answered == [BAD_GZIP, 200, 200]
