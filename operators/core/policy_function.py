"""The policy function (PCF): QoS sessions created, read, extended and deleted, with expiry.

Sessions live in a :class:`~.qos_session_store.QosSessionStore`: in memory with counted ids by
default (the simulator's one PCF per operator), or in the operator's database, shared by the
PCF replicas of every data centre and kept across restarts (the live operators).
"""

from __future__ import annotations

from dataclasses import replace

from operators.subscriber_base import SubscriberBase
from operators.types import Clock

from .errors import SessionUnknown, SubscriberUnknown
from .qos_session_store import MemoryQosSessions, QosSessionStore
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

    def __init__(
        self,
        subscribers: SubscriberBase,
        clock: Clock | None = None,
        sessions: QosSessionStore | None = None,
    ) -> None:
        self.subscribers = subscribers
        self.clock: Clock = clock if clock is not None else subscribers.clock
        self.sessions: QosSessionStore = (
            sessions if sessions is not None else MemoryQosSessions(self.name)
        )

    def __call__(self, request: PcfRequest) -> QosSessionRecord:
        match request:
            case CreateQosSession():
                return self._create(request)
            case ReadQosSession():
                return self._live(request.session_id)
            case ExtendQosSession():
                session = self._live(request.session_id)
                extended = replace(session, expires_at=session.expires_at + request.additional)
                self.sessions.put(extended)
                return extended
            case DeleteQosSession():
                session = self._live(request.session_id)
                self.sessions.delete(session.session_id)
                return replace(session, state=QosSessionState.DELETED)

    def active_sessions(self) -> int:
        """How many sessions have not expired or been deleted."""
        return self.sessions.active(self.clock())

    def _create(self, request: CreateQosSession) -> QosSessionRecord:
        if request.duration <= 0:
            raise ValueError("a QoS session needs a positive duration")
        subscriber = self.subscribers.get(request.msisdn)
        if subscriber is None:
            raise SubscriberUnknown(self.name, f"no subscriber {request.msisdn}")
        now = self.clock()
        session = QosSessionRecord(
            session_id=self.sessions.new_id(),
            msisdn=subscriber.msisdn,
            qos_profile=request.qos_profile,
            started_at=now,
            expires_at=now + request.duration,
            state=QosSessionState.ACTIVE,
        )
        self.sessions.put(session)
        return session

    def _live(self, session_id: str) -> QosSessionRecord:
        session = self.sessions.get(session_id)
        if session is None:
            raise SessionUnknown(self.name, f"no session {session_id}")
        if session.expires_at <= self.clock():
            self.sessions.delete(session_id)
            raise SessionUnknown(self.name, f"session {session_id} expired")
        return session
