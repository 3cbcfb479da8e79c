"""Alerts and their delivery: a signed webhook POST, as Standard Webhooks describes it.

The receiver checks ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
``"{webhook-id}.{webhook-timestamp}.{body}"``) and refuses a timestamp outside its tolerance,
which stops replays. The id is derived from the alert, so retries of one alert carry the
same id and a receiver can drop duplicates.

A secret is either Standard Webhooks' ``whsec_<base64>`` form, whose key is the decoded
bytes (what the receiver's Standard Webhooks library will use), or any other string or bytes,
used as they are (:func:`webhook_key`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from operators.background import cancel_and_wait

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertKind",
    "WebhookSender",
    "signed_body",
    "verify_signature",
    "webhook_key",
]

SECRET_PREFIX = "whsec_"
MAX_TIMESTAMP_DIGITS = 15
"""A longer timestamp is refused before int() (which refuses over 4300 digits) or float
arithmetic (which overflows past ~308) could raise."""

AlertKind = Literal[
    "volume_spike", "error_spike", "enumeration", "off_hours", "new_source", "quota_farming"
]
ALERT_KINDS: tuple[AlertKind, ...] = (
    "volume_spike",
    "error_spike",
    "enumeration",
    "off_hours",
    "new_source",
    "quota_farming",
)


@dataclass(frozen=True)
class Alert:
    """One detector's verdict on one bucket of one application (and API)."""

    kind: AlertKind
    client_id: str
    api: str
    """The API called; for quota_farming the API farmed (a farm is one developer's
    applications near their quota of one API), ``client_id`` its first application."""
    developer_id: str
    org_id: str
    bucket_start: float
    """The bucket that was scored."""
    raised_at: float
    """Clock time when raised (the bucket's end at the earliest)."""
    score: float
    observed: float
    baseline: float
    detail: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def id(self) -> str:
        """Stable across retries and replays: what a receiver deduplicates on."""
        key = f"{self.kind}|{self.client_id}|{self.api}|{self.developer_id}|{self.bucket_start!r}"
        return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def webhook_key(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret``: the base64-decoded rest of a ``whsec_`` secret, else its
    UTF-8 bytes (or the bytes given). Raises ValueError naming what is wrong."""
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not raw.startswith(SECRET_PREFIX.encode()):
        if not raw:
            raise ValueError("webhook secret is empty")
        return raw
    try:
        key = base64.b64decode(raw[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("webhook secret: the part after whsec_ is not valid base64") from None
    if not key:
        raise ValueError("webhook secret: whsec_ is followed by no key")
    return key


def _bytes(text: str) -> bytes:
    """Any header value as bytes, never raising (lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


def _signature(message_id: str, timestamp: str, body: bytes, key: bytes) -> bytes:
    signed = _bytes(message_id) + b"." + _bytes(timestamp) + b"." + body
    return b"v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def signed_body(alert: Alert, secret: str | bytes, *, at: float) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the three Standard Webhooks headers, signed as of ``at``."""
    return _signed(alert, webhook_key(secret), at)


def _signed(alert: Alert, key: bytes, at: float) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(alert.as_json(), sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(at))
    return body, {
        "content-type": "application/json",
        "webhook-id": alert.id,
        "webhook-timestamp": timestamp,
        "webhook-signature": _signature(alert.id, timestamp, body, key).decode(),
    }


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    now: float,
    tolerance: float = 300,
) -> bool:
    """True when one of the ``v1`` signatures matches and the timestamp is within
    ``tolerance`` seconds of ``now`` (either side: clocks drift both ways). Whatever the
    headers hold, the answer is False rather than an exception: signatures are compared as
    bytes, and the timestamp must be a few ASCII digits ("²" is a digit to str.isdigit but
    not to int()). Only a bad ``secret`` (the receiver's own) raises, as in
    :func:`webhook_key`."""
    lower = {name.lower(): value for name, value in headers.items()}
    message_id = lower.get("webhook-id", "")
    timestamp = lower.get("webhook-timestamp", "")
    if (
        not message_id
        or not (timestamp.isascii() and timestamp.isdigit())
        or len(timestamp) > MAX_TIMESTAMP_DIGITS
        or abs(now - int(timestamp)) > tolerance
    ):
        return False
    expected = _signature(message_id, timestamp, body, webhook_key(secret))
    return any(
        hmac.compare_digest(_bytes(candidate), expected)
        for candidate in lower.get("webhook-signature", "").split()
    )


class WebhookSender:
    """Posts alerts to one URL from a background task; the caller never waits.

    The queue is bounded: when ``max_pending`` alerts wait, the oldest is dropped (and counted
    in :attr:`dropped`), since a flood of alerts is worth less than the newest. A delivery is
    retried on a connection error or a 5xx with capped exponential backoff, at most
    ``max_attempts`` times; a 4xx is the receiver's refusal and is not retried.
    :meth:`submit` may be called from any thread. A bad ``whsec_`` secret is refused here,
    at once, not at the first delivery.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
        max_pending: int = 1000,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        drain_timeout: float = 10.0,
    ) -> None:
        if max_pending < 1 or max_attempts < 1:
            raise ValueError("max_pending and max_attempts must be >= 1")
        self.url = url
        self._key = webhook_key(secret)
        self._clock = clock
        self._client = client
        self._own_client = client is None
        self._pending: deque[Alert] = deque()
        self._max_pending = max_pending
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.attempts = 0

    @property
    def pending(self) -> int:
        return len(self._pending) + (1 if self._busy else 0)

    def submit(self, alert: Alert) -> None:
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(alert)
        self._notify()

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="webhook-sender")
        if self._pending:
            self._wake.set()

    async def stop(self) -> None:
        """Delivers what is queued for at most ``drain_timeout`` seconds, then gives up on
        the rest (counted as failed) and closes the client it opened."""
        task, self._task = self._task, None
        if task is not None:
            deadline = asyncio.get_running_loop().time() + self._drain_timeout
            while self.pending and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            cut_short = self._busy
            await cancel_and_wait(task)
            self.failed += 1 if cut_short else 0
        with self._lock:
            self.failed += len(self._pending)
            self._pending.clear()
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    if not self._pending:
                        break
                    alert = self._pending.popleft()
                    self._busy = True
                try:
                    await self._deliver(alert)
                finally:
                    self._busy = False

    async def _deliver(self, alert: Alert) -> None:
        assert self._client is not None
        for attempt in range(self._max_attempts):
            if attempt:
                await asyncio.sleep(min(self._max_backoff, self._backoff * 2 ** (attempt - 1)))
            body, headers = _signed(alert, self._key, self._clock())
            self.attempts += 1
            try:
                answer = await self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError:  # unreachable, or an answer that cannot be read (a bad
                continue              # gzip): a failed attempt, never the sender's end
            if answer.status_code < 300:
                self.sent += 1
                return
            if answer.status_code < 500:
                break
        self.failed += 1
