"""QoD session notifications: status changes sent to the session's ``sink`` as CloudEvents.

The QoD definition's ``callbacks.notifications`` is a ``POST`` of a structured CloudEvent
(``application/cloudevents+json``, ``specversion`` 1.0, type
``org.camaraproject.quality-on-demand.v1.qos-status-changed``, data ``sessionId``,
``qosStatus`` and, when UNAVAILABLE, ``statusInfo``) with the ``sinkCredential``'s access
token as ``Authorization: Bearer``. :class:`CloudEventNotifier` delivers them in the
background with an httpx client and bounded retries, so an API call never waits for an
application's endpoint; :class:`NoNotifications` is the do-nothing default. Each notifier also
keeps the reminders the integrator asks for (``remind``): when a session's duration is due, a
sweep marks it expired, and that change is notified like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from operators.camara.quality_on_demand import QosStatus, StatusInfo
from operators.types import Clock

from .qod_sessions import QodSession

__all__ = [
    "EVENT_TYPE",
    "CloudEventNotifier",
    "Delivery",
    "NoNotifications",
    "QodNotifier",
    "status_changed_event",
]

EVENT_TYPE = "org.camaraproject.quality-on-demand.v1.qos-status-changed"
CONTENT_TYPE = "application/cloudevents+json"


class QodNotifier(Protocol):
    """Where the integrator reports a session's status changes and asks to be reminded."""

    def status_changed(
        self, session: QodSession, status: QosStatus, info: StatusInfo | None = None
    ) -> None: ...

    def remind(self, at: float, sweep: Callable[[], Any]) -> None: ...


class NoNotifications:
    """Sends nothing and keeps no reminders (unit tests, the simulation)."""

    def status_changed(
        self, session: QodSession, status: QosStatus, info: StatusInfo | None = None
    ) -> None:
        return None

    def remind(self, at: float, sweep: Callable[[], Any]) -> None:
        return None


DELIVERIES_KEPT = 1000
"""How many deliveries' fates a notifier remembers."""
IN_FLIGHT = 1000
"""How many deliveries a notifier has under way at most (each may wait out its retries)."""
IN_FLIGHT_PER_SINK = 100
"""How many of them may go to one sink origin: an application whose endpoint stalls holds
each of its deliveries through the timeout and the retries, and on its own would fill
``IN_FLIGHT`` and have every other application's notifications dropped. A tenth leaves the
rest to at least nine others, and is still far more than a sink that answers has under way."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification's fate: where, what, how many attempts, the last HTTP status."""

    sink: str
    event: dict[str, Any]
    attempts: int
    status: int | None


def status_changed_event(
    session: QodSession, status: QosStatus, info: StatusInfo | None, *, source: str, at: float
) -> dict[str, Any]:
    """The CloudEvent of a status change, exactly as the QoD callback defines it."""
    data: dict[str, Any] = {"sessionId": session.session_id, "qosStatus": status.value}
    if status is QosStatus.UNAVAILABLE and info is not None:
        data["statusInfo"] = info.value
    return {
        "id": str(uuid.uuid4()),
        "source": f"{source.rstrip('/')}/{session.session_id}",
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "time": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


class CloudEventNotifier:
    """Delivers status changes to sinks in background tasks; retries a bounded number of times.

    ``clock`` is the epoch clock (event times, token expiry, reminders); ``http`` the client
    (made on first use when not given: real HTTP); ``sleep`` waits between attempts and for
    reminders (a test may pass one that returns at once). A delivery is retried on a transport
    error, a 5xx or a 429, never on another 4xx; an expired sink token sends nothing.
    """

    def __init__(
        self,
        source: str,
        *,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("at least one attempt")
        self.source = source
        self.clock = clock
        self.http = http
        self._owns_http = True  # closed by aclose, unless lent through use_http
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self.deliveries: deque[Delivery] = deque(maxlen=DELIVERIES_KEPT)
        """The latest deliveries' fates (a process serving for weeks keeps no more)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        """Set by :meth:`aclose`: what is sent afterwards is recorded as not sent."""
        self._per_origin: dict[str, int] = {}
        """Deliveries under way per sink origin; an origin leaves when its count is zero."""
        self._reminders: set[asyncio.Task[None]] = set()
        self._due: set[float] = set()
        """The moments a reminder is pending for."""

    def status_changed(
        self, session: QodSession, status: QosStatus, info: StatusInfo | None = None
    ) -> None:
        sink = session.request.sink
        if sink is None:
            return
        credential = session.request.sinkCredential
        token = credential.accessToken if credential is not None else None
        expires = credential.accessTokenExpiresUtc if credential is not None else None
        event = status_changed_event(session, status, info, source=self.source, at=self.clock())
        self.send(sink, event, token, None if expires is None else expires.timestamp())

    def send(
        self,
        sink: str,
        event: dict[str, Any],
        access_token: str | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Deliver one CloudEvent to ``sink`` in the background, with ``access_token`` as the
        bearer (an aggregator relays an operator's events this way); nothing once the token
        has expired (``expires_at``, epoch seconds), as the YAML says."""
        headers = {"content-type": CONTENT_TYPE}
        if access_token:
            if expires_at is not None and expires_at <= self.clock():
                return  # the application's token has expired: it stops receiving (as the YAML)
            headers["authorization"] = f"Bearer {access_token}"
        origin = _origin(sink)
        if (self._closed or len(self._tasks) >= IN_FLIGHT
                or self._per_origin.get(origin, 0) >= IN_FLIGHT_PER_SINK):
            # sinks that stall (timeouts and retries) must not pile up tasks without end, nor
            # one application's crowd out the others': past either bound (or once closed, its
            # client with it) a notification is recorded as not sent, and dropped
            self.deliveries.append(Delivery(sink, event, 0, None))
            return
        task = self._spawn(self._deliver(sink, event, headers))
        if task is not None:
            self._per_origin[origin] = self._per_origin.get(origin, 0) + 1
            # a callback, not a finally in the delivery: a task cancelled before it first
            # ran never runs its coroutine's finally
            task.add_done_callback(lambda _: self._delivered(origin))

    def _delivered(self, origin: str) -> None:
        """One delivery to ``origin`` ended (sent, given up or cancelled)."""
        left = self._per_origin[origin] - 1
        if left:
            self._per_origin[origin] = left
        else:
            del self._per_origin[origin]

    def use_http(self, http: httpx.AsyncClient) -> None:
        """Deliver with ``http`` (a federation member's own client), which stays its owner's."""
        if self.http is not None and self._owns_http:
            self._spawn(self.http.aclose())
        self.http = http
        self._owns_http = False

    def remind(self, at: float, sweep: Callable[[], Any]) -> None:
        """Run ``sweep`` at ``at``, once: the sweep reminds again for every session still
        running, so a reminder already pending for that moment is not made twice (each
        expiry would otherwise double every later reminder)."""
        if at in self._due or self._closed:
            return

        async def later() -> None:
            try:
                await self.sleep(max(0.0, at - self.clock()))
            finally:
                self._due.discard(at)
            result = sweep()
            if asyncio.iscoroutine(result):
                await result

        if self._spawn(later(), self._reminders) is not None:
            self._due.add(at)

    def _spawn(
        self, work: Any, tasks: set[asyncio.Task[None]] | None = None
    ) -> asyncio.Task[None] | None:
        """Run ``work`` on the running loop; None (and nothing runs) without one."""
        held = self._tasks if tasks is None else tasks
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no running loop (a synchronous caller): nothing to send with
            work.close()
            return None
        held.add(task)
        task.add_done_callback(held.discard)
        return task

    async def _deliver(self, sink: str, event: dict[str, Any], headers: dict[str, str]) -> None:
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=self.timeout)
        status: int | None = None
        attempt = 0
        while attempt < self.attempts:
            attempt += 1
            try:
                # the status is all a sink's answer is for: its body is never read, so a sink
                # streaming without end holds no memory here
                async with self.http.stream("POST", sink, json=event, headers=headers) as answer:
                    status = answer.status_code
                if status < 500 and status != 429:
                    break
            except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError):
                # unreachable, a URL httpx cannot use, a token with characters a header
                # cannot carry: a failed attempt, recorded, never a task dying unseen
                status = None
            if attempt < self.attempts:
                await self.sleep(self.backoff * 2 ** (attempt - 1))
        self.deliveries.append(Delivery(sink, event, attempt, status))

    async def drain(self) -> None:
        """Wait for every notification under way to be delivered or given up: for tests."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is under way and close its client (not one lent by ``use_http``)."""
        self._closed = True
        pending = [*self._tasks, *self._reminders]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.http is not None and self._owns_http:
            await self.http.aclose()


def _origin(sink: str) -> str:
    """``scheme://host:port`` of a sink, what its deliveries are counted under (a URL that
    cannot be parsed, or has no scheme or host, is its own origin: its deliveries fail, but
    are counted all the same, and not pooled with every other such sink's)."""
    try:
        parts = urlsplit(sink)
        port = parts.port
    except ValueError:
        return sink
    scheme, host = parts.scheme.lower(), parts.hostname
    if not scheme or not host:
        return sink
    port = port or {"http": 80, "https": 443}.get(scheme)
    if ":" in host:  # an IPv6 address keeps its brackets, so its port stays its own
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or ''}"
