"""The policy function (PCF): QoS sessions created, read, extended and deleted, with expiry.

Session state lives in memory in each :class:`PolicyFunction` instance: it is lost on restart
and not shared between replicas of one operator. That is enough for one process (and for the
simulator, where each operator has one PCF); persisting sessions in the operator's database is
left for when replicas must share them.
"""

from __future__ import annotations

from dataclasses import replace

from operators.subscriber_base import SubscriberBase
from operators.types import Clock

from .errors import SessionUnknown, SubscriberUnknown
from .records import (
    CreateQosSession,
    DeleteQosSession,
    ExtendQosSession,
    PcfRequest,
    QosSessionRecord,
    QosSessionState,
    ReadQosSession,
)

__all__ = ["PolicyFunction"]


class PolicyFunction:
    """Holds QoS sessions; a session is gone once ``clock()`` reaches its expiry.

    ``clock`` is the realisation's clock (wall time live, an epoch plus ``env.now`` in SimPy),
    so sessions expire in the time that the function lives in. Session ids count up per
    instance, so the same sequence of requests gives the same ids in both modes.
    """

    name = "pcf"

    def __init__(self, subscribers: SubscriberBase, clock: Clock | None = None) -> None:
        self.subscribers = subscribers
        self.clock: Clock = clock if clock is not None else subscribers.clock
        self._sessions: dict[str, QosSessionRecord] = {}
        self._created = 0

    def __call__(self, request: PcfRequest) -> QosSessionRecord:
        match request:
            case CreateQosSession():
                return self._create(request)
            case ReadQosSession():
                return self._live(request.session_id)
            case ExtendQosSession():
                session = self._live(request.session_id)
                extended = replace(session, expires_at=session.expires_at + request.additional)
                self._sessions[session.session_id] = extended
                return extended
            case DeleteQosSession():
                session = self._live(request.session_id)
                del self._sessions[session.session_id]
                return replace(session, state=QosSessionState.DELETED)

    def active_sessions(self) -> int:
        """How many sessions have not expired or been deleted."""
        now = self.clock()
        return sum(1 for s in self._sessions.values() if s.expires_at > now)

    def _create(self, request: CreateQosSession) -> QosSessionRecord:
        if request.duration <= 0:
            raise ValueError("a QoS session needs a positive duration")
        subscriber = self.subscribers.get(request.msisdn)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no subscriber {request.msisdn}")
        self._created += 1
        now = self.clock()
        session = QosSessionRecord(
            session_id=f"{self.name}-{self._created:08d}",
            msisdn=subscriber.msisdn,
            qos_profile=request.qos_profile,
            started_at=now,
            expires_at=now + request.duration,
            state=QosSessionState.ACTIVE,
        )
        self._sessions[session.session_id] = session
        return session

    def _live(self, session_id: str) -> QosSessionRecord:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionUnknown(self.name, f"no session {session_id}")
        if session.expires_at <= self.clock():
            del self._sessions[session_id]
            raise SessionUnknown(self.name, f"session {session_id} expired")
        return session
