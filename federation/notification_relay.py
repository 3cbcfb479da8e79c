"""QoD notifications of sessions created through the aggregator, relayed to the application.

The operator sends a session's status changes to the session's ``sink`` with the operator's
session id, which the application never saw (it holds the hub's). So when the hub creates a
session at an operator, :meth:`NotificationRelay.prepare` keeps the application's ``sink`` and
``sinkCredential`` and puts the hub's relay endpoint (``/qod-notifications/{hub session id}``)
and a credential of its own in their place: a fresh secret per session, of which the hub keeps
only the hash. A CloudEvent arriving there with that secret as its bearer token is rewritten
(``data.sessionId`` and ``source`` name the hub's session) and sent on to the application's
sink with the application's credential by the operators' own
:class:`~operators.integrator.CloudEventNotifier` (background delivery, bounded retries).

A relay outlives the hub's session record (a deletion is notified after the session is gone)
until the credential expires. A body the operator would refuse (an invalid sink or credential,
a ``PLAIN`` or ``REFRESHTOKEN`` credential) is forwarded untouched, so the application gets
the operator's own error. The operators accept only ``https`` sinks: a hub whose own URL is
not ``https`` (``ogsim up`` on plain HTTP) cannot be a sink and passes the body through.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from operators import CamaraError, Database, sink_problem
from operators.gateway import ThreatLimits
from operators.integrator import CloudEventNotifier

from .types import Clock

_AWARE: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

PATH = "/qod-notifications/{sessionId}"
"""The relay endpoint at the hub's API root."""

LIFETIME = 7 * 86400.0
"""Seconds a relay lives when the application's credential names no expiry."""

EVENT_TYPE = "org.camaraproject.quality-on-demand.v1.qos-status-changed"

LIMITS = ThreatLimits(
    max_body_bytes=16 * 1024,
    allowed_content_types=("application/cloudevents+json", "application/json"),
)
"""What the relay endpoint reads: one structured CloudEvent, through the gateway's bounds."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS aggregator_qod_relays (
    session_id TEXT PRIMARY KEY,
    application TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    sink TEXT NOT NULL,
    access_token TEXT,
    operator_session_id TEXT,
    expires_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Relay:
    """Where one hub session's notifications go: the application's sink and token."""

    session_id: str
    application: str
    secret_hash: str
    sink: str
    access_token: str | None
    operator_session_id: str | None
    expires_at: float


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


class NotificationRelay:
    """The hub's relays of QoD notifications, in its database, and their delivery."""

    def __init__(
        self,
        db: Database,
        *,
        api_root: str,
        notifier: CloudEventNotifier,
        clock: Clock,
    ) -> None:
        self.db = db
        self.api_root = api_root.rstrip("/")
        self.notifier = notifier
        self.clock = clock
        self.enabled = self.api_root.startswith("https://")
        db.ensure_schema(SCHEMA)

    def prepare(
        self,
        body: dict[str, Any],
        session_id: str,
        application: str,
        model: type[BaseModel] | None,
    ) -> dict[str, Any]:
        """The create body to send the operator: the hub's relay as its sink, when the
        application gave a sink the operator would accept (checked with ``model``)."""
        if not self.enabled or model is None or not body.get("sink"):
            return body
        try:
            model.model_validate(body)
        except ValidationError:
            return body  # the operator answers its own error
        if sink_problem(str(body["sink"])) is not None:
            return body  # the operator refuses it (INVALID_SINK): the hub never posts there
        credential = body.get("sinkCredential")
        token: str | None = None
        expires_at = self.clock() + LIFETIME
        if credential is not None:
            if credential.get("credentialType") != "ACCESSTOKEN":
                return body  # refused by the operator (INVALID_CREDENTIAL)
            token = str(credential["accessToken"])
            # as the operator's model read it: any RFC 3339 spelling (lower-case t and z),
            # or a number of seconds
            expires_at = _AWARE.validate_python(credential["accessTokenExpiresUtc"]).timestamp()
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        self.db.execute("DELETE FROM aggregator_qod_relays WHERE expires_at < ?", (now,))
        self.db.insert(
            "INSERT INTO aggregator_qod_relays (session_id, application, secret_hash, sink,"
            " access_token, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, application, _hash(secret), str(body["sink"]), token, expires_at),
        )
        return {
            **body,
            "sink": self.api_root + PATH.replace("{sessionId}", session_id),
            "sinkCredential": {
                "credentialType": "ACCESSTOKEN",
                "accessToken": secret,
                "accessTokenExpiresUtc": _utc(expires_at),
                "accessTokenType": "bearer",
            },
        }

    def bind(self, session_id: str, operator_session_id: str) -> None:
        """The operator's id of a relayed session, once the operator has answered."""
        self.db.execute(
            "UPDATE aggregator_qod_relays SET operator_session_id = ? WHERE session_id = ?",
            (operator_session_id, session_id),
        )

    def drop(self, session_id: str) -> None:
        """Forget a relay whose session was never created."""
        self.db.execute("DELETE FROM aggregator_qod_relays WHERE session_id = ?", (session_id,))

    def get(self, session_id: str) -> Relay | None:
        row = self.db.one("SELECT * FROM aggregator_qod_relays WHERE session_id = ?",
                          (session_id,))
        if row is None:
            return None
        return Relay(row["session_id"], row["application"], row["secret_hash"], row["sink"],
                     row["access_token"], row["operator_session_id"], row["expires_at"])

    def shown(self, info: dict[str, Any], session_id: str) -> dict[str, Any]:
        """An operator's session answer as the application sees it: the hub's id and, for a
        relayed session, the application's own sink instead of the relay."""
        shown = {**info, "sessionId": session_id}
        relay = self.get(session_id) if "sink" in info else None
        if relay is not None:
            shown["sink"] = relay.sink
        shown.pop("sinkCredential", None)
        return shown

    def receive(self, session_id: str, authorization: str | None, event: Any) -> None:
        """An operator's CloudEvent for a relayed session: checked, rewritten, sent on.

        401 without the session's relay credential (or for an unknown session: the relay
        says nothing about which exist), 400 for what is not a status-changed CloudEvent of
        that session."""
        relay = self.get(session_id)
        scheme, _, secret = (authorization or "").partition(" ")
        if (
            relay is None
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(_hash(secret.strip()), relay.secret_hash)
            or relay.expires_at <= self.clock()
        ):
            raise CamaraError(401, "UNAUTHENTICATED", "Request not authenticated due to"
                              " missing, invalid, or expired credentials.",
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        data = event.get("data") if isinstance(event, dict) else None
        if (
            not isinstance(data, dict)
            or event.get("type") != EVENT_TYPE
            or event.get("specversion") != "1.0"
            or not isinstance(data.get("sessionId"), str)
            or (relay.operator_session_id not in (None, data["sessionId"]))
        ):
            raise CamaraError(400, "INVALID_ARGUMENT",
                              "Not a status change of this session as a CloudEvent.")
        sessions = f"{self.api_root}/quality-on-demand/v1/sessions"
        relayed = {
            **event,
            "source": f"{sessions}/{session_id}",
            "data": {**data, "sessionId": session_id},
        }
        self.notifier.send(relay.sink, relayed, relay.access_token, relay.expires_at)
