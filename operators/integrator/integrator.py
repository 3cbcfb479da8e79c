"""The integrator: the operator's :class:`~operators.camara.CamaraServices`, live.

It resolves the device (:func:`~operators.camara.resolve_device`), runs the operation's flow
(:mod:`operators.integrator.operations`) through an executor that guards each backend (live:
:class:`~operators.integrator.live.GuardedExecutor`), and keeps what CAMARA needs and the PCF
does not hold: which client owns a QoS session, its application server and ports, its CAMARA
session id. QoD sessions live in memory per integrator (like the PCF's); an expired session
is reported ``UNAVAILABLE`` / ``DURATION_EXPIRED`` for ``EXPIRED_RETENTION`` seconds, then
forgotten (404).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from operators.camara.common import (
    MISMATCH_CHECKED,
    PHONE_ONLY,
    Device,
    DeviceDirectory,
    DeviceResponse,
    IdentifierRules,
    resolve_device,
)
from operators.camara.consent_info import RetrieveStatusRequestBody, RetrieveStatusResponseBody
from operators.camara.context import CallContext
from operators.camara.device_status import (
    ReachabilityStatusResponse,
    RequestReachabilityStatus,
    RoamingStatusRequest,
    RoamingStatusResponse,
)
from operators.camara.kyc_match import KycMatchRequest, KycMatchResponse
from operators.camara.location import (
    RetrievalLocationRequest,
    RetrievedLocation,
    VerifyLocationRequest,
    VerifyLocationResponse,
)
from operators.camara.number_verification import (
    NumberVerificationMatchResponse,
    NumberVerificationRequestBody,
    NumberVerificationShareResponse,
    not_authenticated_by_network,
)
from operators.camara.qos_profiles import QosProfile, QosProfileDeviceRequest, QosProfileStatus
from operators.camara.quality_on_demand import (
    CreateSession,
    ExtendSessionDuration,
    QosStatus,
    RetrieveSessionsInput,
    SessionInfo,
    StatusInfo,
)
from operators.camara.sim_swap import (
    CheckSimSwapInfo,
    CreateCheckSimSwap,
    CreateSimSwapDate,
    SimSwapInfo,
)
from operators.core import QosSessionRecord
from operators.errors import CamaraError
from operators.outbound_hosts import sink_problem
from operators.types import Clock

from . import operations as ops
from .coverage import Coverage
from .flow import Flow
from .notifications import NoNotifications, QodNotifier
from .qod_sessions import MemoryQodSessions, QodSession, QodSessionStore, due_to_change
from .qos_catalogue import default_profiles

__all__ = ["EXPIRED_RETENTION", "Executor", "Integrator"]

T = TypeVar("T")
EXPIRED_RETENTION = 360.0
"""Seconds an expired QoD session stays readable, as the QoD definition allows."""

Executor = Callable[[Flow[Any]], Awaitable[Any]]
"""Runs one operation's flow to its result (live: a ``GuardedExecutor``)."""

ConsentStatusSource = Callable[[CallContext, str, RetrieveStatusRequestBody],
                               RetrieveStatusResponseBody]
"""Consent Info's answer for (call, subscriber, request): the identity server decides."""


class Integrator:
    """Translates CAMARA calls into backend calls and back; implements ``CamaraServices``."""

    def __init__(
        self,
        directory: DeviceDirectory,
        execute: Executor,
        *,
        calendar: Clock = time.time,
        profiles: tuple[QosProfile, ...] | None = None,
        require_id_document: bool = False,
        namespace: str = "ogsim",
        sessions: QodSessionStore | None = None,
        may_process: Callable[[str, str | None], bool] | None = None,
        notifier: QodNotifier | None = None,
        coverage: Coverage | None = None,
    ) -> None:
        """``may_process(msisdn, purpose)`` is asked for every device a two-legged call names,
        so a subscriber's objection (opt-out) binds calls whose token names no subscriber.
        ``notifier`` hears each QoD session's status changes (default: nobody); ``coverage``
        is where the network can locate a device (default: everywhere)."""
        self.coverage = coverage
        self.notifier: QodNotifier = notifier if notifier is not None else NoNotifications()
        self.may_process = may_process
        self.directory = directory
        self.execute = execute
        self.calendar = calendar
        self.profiles = profiles if profiles is not None else default_profiles()
        self.require_id_document = require_id_document
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, namespace)
        self.sessions: QodSessionStore = sessions if sessions is not None else MemoryQodSessions()
        self._device_locks: dict[str, asyncio.Lock] = {}
        self.consent_status: ConsentStatusSource | None = None
        """Answers Consent Info from the identity server's records (set by the operator)."""
        self.sandbox_gate: Callable[[str], CamaraError | None] = _no_sandbox_reach
        """Asked for every device a sandbox application's call names: the operator's rule
        (documented test numbers only); by default a sandbox reaches nothing."""

    async def _run(self, flow: Flow[T]) -> T:
        result: T = await self.execute(flow)
        return result

    def _device(
        self, ctx: CallContext, device: Device | None, rules: IdentifierRules | None = None
    ) -> tuple[str, DeviceResponse | None]:
        resolved = resolve_device(ctx.msisdn, device, self.directory, rules or IdentifierRules())
        if ctx.sandbox and (refusal := self.sandbox_gate(resolved.msisdn)) is not None:
            raise refusal
        if (
            ctx.msisdn is None
            and self.may_process is not None
            and not self.may_process(resolved.msisdn, ctx.purpose)
        ):
            raise CamaraError(
                403,
                "PERMISSION_DENIED",
                "The subscriber objected to processing for this purpose.",
            )
        return resolved.msisdn, resolved.device

    # -- SIM swap, device status ---------------------------------------------------------

    async def check_sim_swap(self, ctx: CallContext, body: CreateCheckSimSwap) -> CheckSimSwapInfo:
        msisdn, _ = self._device(ctx, _phone(body.phoneNumber), PHONE_ONLY)
        return await self._run(ops.check_sim_swap(msisdn, body.maxAge, self.calendar()))

    async def retrieve_sim_swap_date(
        self, ctx: CallContext, body: CreateSimSwapDate
    ) -> SimSwapInfo:
        msisdn, _ = self._device(ctx, _phone(body.phoneNumber), PHONE_ONLY)
        return await self._run(ops.retrieve_sim_swap_date(msisdn))

    async def reachability_status(
        self, ctx: CallContext, body: RequestReachabilityStatus
    ) -> ReachabilityStatusResponse:
        msisdn, _ = self._device(ctx, body.device, MISMATCH_CHECKED)
        return await self._run(ops.reachability_status(msisdn))

    async def roaming_status(
        self, ctx: CallContext, body: RoamingStatusRequest
    ) -> RoamingStatusResponse:
        msisdn, _ = self._device(ctx, body.device, MISMATCH_CHECKED)
        return await self._run(ops.roaming_status(msisdn))

    # -- number verification ---------------------------------------------------------------

    def _network_authenticated(self, ctx: CallContext) -> str:
        # How the token was obtained is admission's decision (Operation.network_authenticated,
        # made for the simulation too); here the device's number must come from the token.
        if ctx.msisdn is None:
            raise not_authenticated_by_network()
        return ctx.msisdn

    async def verify_number(
        self, ctx: CallContext, body: NumberVerificationRequestBody
    ) -> NumberVerificationMatchResponse:
        msisdn = self._network_authenticated(ctx)
        verified = await self._run(
            ops.verify_number(msisdn, body.phoneNumber, body.hashedPhoneNumber)
        )
        return NumberVerificationMatchResponse(devicePhoneNumberVerified=verified)

    async def device_phone_number(self, ctx: CallContext) -> NumberVerificationShareResponse:
        return NumberVerificationShareResponse(devicePhoneNumber=self._network_authenticated(ctx))

    # -- location --------------------------------------------------------------------------

    async def verify_location(
        self, ctx: CallContext, body: VerifyLocationRequest
    ) -> VerifyLocationResponse:
        msisdn, device = self._device(ctx, body.device)
        return await self._run(
            ops.verify_location(
                msisdn, body.area, body.maxAge, self.calendar(), device, self.coverage
            )
        )

    async def retrieve_location(
        self, ctx: CallContext, body: RetrievalLocationRequest
    ) -> RetrievedLocation:
        # location-retrieval.yaml: identifiers of different devices get no error (so no API
        # consumer can correlate them); its feature's C01.08 wants IDENTIFIER_MISMATCH, which
        # the YAML does not define: the YAML is followed (loadtests/conformance/deviations.py)
        msisdn, device = self._device(ctx, body.device)
        flow = ops.retrieve_location(msisdn, body.maxAge, body.maxSurface, self.calendar(), device)
        return await self._run(flow)

    # -- QoS profiles ----------------------------------------------------------------------

    def _profile(self, name: str) -> QosProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    async def retrieve_qos_profiles(
        self, ctx: CallContext, body: QosProfileDeviceRequest
    ) -> list[QosProfile]:
        if body.device is not None or ctx.msisdn is not None:  # none named: every profile
            msisdn, _ = self._device(ctx, body.device)
            # a device with no data connection has no profile (qos-profiles feature 06)
            if not await self._run(ops.has_data_connectivity(msisdn)):
                return []
        # none matching is an empty list: a 404 is for an unknown device only
        return [
            p
            for p in self.profiles
            if (body.name is None or p.name == body.name)
            and (body.status is None or p.status is body.status)
        ]

    async def get_qos_profile(self, ctx: CallContext, name: str) -> QosProfile:
        profile = self._profile(name)
        if profile is None:
            raise CamaraError(404, "NOT_FOUND", f"QoS profile {name} not found.")
        return profile

    # -- quality on demand -----------------------------------------------------------------

    async def create_session(self, ctx: CallContext, body: CreateSession) -> SessionInfo:
        credential = body.sinkCredential
        if credential is not None and credential.credentialType != "ACCESSTOKEN":
            raise CamaraError(
                400, "INVALID_CREDENTIAL", "Only Access token is supported as sinkCredential."
            )
        if body.sink is not None and (problem := sink_problem(body.sink)) is not None:
            # the operator posts to it on the application's word: never where only its own
            # network reaches (a metadata service, in any spelling)
            raise CamaraError(400, "INVALID_SINK", f"sink: {problem}")
        msisdn, device = self._device(ctx, body.device)
        profile = self._profile(body.qosProfile)
        if profile is None:
            raise CamaraError(400, "INVALID_ARGUMENT", f"Unknown qosProfile {body.qosProfile}.")
        if profile.status is not QosProfileStatus.ACTIVE:
            raise CamaraError(
                422,
                "QUALITY_ON_DEMAND.QOS_PROFILE_NOT_APPLICABLE",
                f"The QoS profile {profile.name} is {profile.status.value}.",
            )
        low = profile.minDuration.seconds() if profile.minDuration else 1.0
        high = profile.maxDuration.seconds() if profile.maxDuration else float("inf")
        if not low <= body.duration <= high:
            raise CamaraError(
                400,
                "QUALITY_ON_DEMAND.DURATION_OUT_OF_RANGE",
                "The requested duration is out of the allowed range for the specific QoS profile",
            )
        lock = self._device_locks.setdefault(msisdn, asyncio.Lock())
        async with lock:  # the check and the write must not interleave with another create
            return await self._create_session(ctx, body, msisdn, device, profile)

    async def _create_session(
        self,
        ctx: CallContext,
        body: CreateSession,
        msisdn: str,
        device: DeviceResponse | None,
        profile: QosProfile,
    ) -> SessionInfo:
        if any(s.status is QosStatus.AVAILABLE for s in self._live_sessions(msisdn)):
            raise CamaraError(409, "CONFLICT", "A QoS session already exists for this device.")
        record = await self._run(ops.create_qos_session(msisdn, profile.name, body.duration))
        session = QodSession(
            session_id=str(uuid.uuid5(self._namespace, record.session_id)),
            pcf_id=record.session_id,
            client_id=ctx.client_id,
            msisdn=msisdn,
            request=body,
            device=device,
            started_at=record.started_at,
            expires_at=record.expires_at,
        )
        try:
            self.sessions.put(session)
        except sqlite3.IntegrityError:  # another replica created one for this device meanwhile
            await self._run(ops.delete_qos_session(record.session_id))
            raise CamaraError(
                409, "CONFLICT", "A QoS session already exists for this device."
            ) from None
        self.notifier.status_changed(session, QosStatus.AVAILABLE)
        self.notifier.remind(session.expires_at, self.sweep)
        return _info(session)

    def _live_sessions(self, msisdn: str | None = None) -> list[QodSession]:
        """Sessions still known, of one number or (for the sweep) all, after
        :meth:`_age_due`.

        A call reads only its number's sessions: reading (and parsing) every stored session
        on every QoD call made each call's cost grow with the sessions kept, live ones and
        expired ones for :data:`EXPIRED_RETENTION`."""
        aged = self._age_due()
        stored = self.sessions.all() if msisdn is None else self.sessions.for_msisdn(msisdn)
        live = []
        for session in stored:
            if session.session_id in aged:  # read before its update (a held effect) landed
                current = aged[session.session_id]
                if current is None:
                    continue
                session = current
            live.append(session)
        return live

    def _age_due(self) -> dict[str, QodSession | None]:
        """Every session whose state is due to change, brought up to date (by id; None when
        forgotten). Any QoD call catches up so, as before: a reminder lives in the process
        that set it, so after a restart, or for a session another data centre's replica
        created, it may never run. Only the due rows are read."""
        now = self.calendar()
        due = self.sessions.due(now, EXPIRED_RETENTION)
        return {session.session_id: self._aged(session, now) for session in due}

    def _aged(self, session: QodSession, now: float) -> QodSession | None:
        """``session`` as of ``now``: marked expired once its duration ended (notified),
        forgotten (None) once the retention after that has passed too."""
        if not due_to_change(session, now, EXPIRED_RETENTION):
            return session
        if session.status is QosStatus.AVAILABLE:
            session = self._ended(session, StatusInfo.DURATION_EXPIRED)
        if due_to_change(session, now, EXPIRED_RETENTION):  # ended long enough ago, too
            self.sessions.delete(session.session_id)
            return None
        return session

    def sweep(self) -> None:
        """Mark sessions whose duration ended (notifying each), forget old ones; remind again
        for sessions extended meanwhile."""
        for s in self._live_sessions():
            if s.status is QosStatus.AVAILABLE:
                self.notifier.remind(s.expires_at, self.sweep)

    def _ended(self, session: QodSession, info: StatusInfo) -> QodSession:
        """The session turned UNAVAILABLE for ``info``: stored, and its sink told. Ended by
        the network, its ``expiresAt`` (and so its ``duration``) becomes when that was seen,
        as quality-on-demand.yaml asks of an UNAVAILABLE session: the PCF keeps nothing of
        a session it dropped, so the moment it was noticed is the latest it can have been."""
        if info is StatusInfo.NETWORK_TERMINATED:
            session = replace(session, expires_at=min(session.expires_at, self.calendar()))
        ended = replace(session, status=QosStatus.UNAVAILABLE, status_info=info)
        self.sessions.put(ended)
        self.notifier.status_changed(ended, QosStatus.UNAVAILABLE, info)
        return ended

    def _owned(self, ctx: CallContext, session_id: str) -> QodSession:
        """The session, if this caller owns it: 404 unknown, 403 another client's (as the
        QoD features ask: "QoS session not created by the API client given in the token")."""
        aged = self._age_due()
        session = aged[session_id] if session_id in aged else self.sessions.get(session_id)
        if session is None:
            raise CamaraError(404, "NOT_FOUND", "The specified resource is not found.")
        if session.client_id != ctx.client_id or (
            ctx.msisdn is not None and session.msisdn != ctx.msisdn
        ):
            raise CamaraError(
                403, "PERMISSION_DENIED", "The QoS session was not created by this API client."
            )
        return session

    async def _refresh(self, session: QodSession) -> QodSession:
        """Ask the PCF; a session it no longer knows ended with its duration, or, before its
        end, was terminated by the network."""
        if session.status is not QosStatus.AVAILABLE:
            return session
        try:
            record = await self._run(ops.read_qos_session(session.pcf_id))
        except CamaraError as error:
            if error.code != "NOT_FOUND":
                raise
            early = session.expires_at > self.calendar()
            return self._ended(
                session,
                StatusInfo.NETWORK_TERMINATED if early else StatusInfo.DURATION_EXPIRED,
            )
        return self._track(session, record)

    def _track(self, session: QodSession, record: QosSessionRecord) -> QodSession:
        updated = replace(session, started_at=record.started_at, expires_at=record.expires_at)
        self.sessions.put(updated)
        return updated

    async def get_session(self, ctx: CallContext, session_id: str) -> SessionInfo:
        return _info(await self._refresh(self._owned(ctx, session_id)))

    async def delete_session(self, ctx: CallContext, session_id: str) -> None:
        session = self._owned(ctx, session_id)
        if session.status is QosStatus.AVAILABLE:
            try:
                await self._run(ops.delete_qos_session(session.pcf_id))
            except CamaraError as error:
                if error.code != "NOT_FOUND":
                    raise
            self.notifier.status_changed(
                session, QosStatus.UNAVAILABLE, StatusInfo.DELETE_REQUESTED
            )
        self.sessions.delete(session_id)

    async def extend_session(
        self, ctx: CallContext, session_id: str, body: ExtendSessionDuration
    ) -> SessionInfo:
        session = await self._refresh(self._owned(ctx, session_id))
        if session.status is not QosStatus.AVAILABLE:
            raise CamaraError(
                409,
                "QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED",
                "Extending the session duration is not allowed in the current state "
                f"({session.status.value}). The session must be in the AVAILABLE state.",
            )
        profile = self._profile(session.request.qosProfile)
        cap = profile.maxDuration.seconds() if profile and profile.maxDuration else float("inf")
        current = session.expires_at - session.started_at
        additional = min(float(body.requestedAdditionalDuration), max(0.0, cap - current))
        if additional <= 0:
            return _info(session)
        record = await self._run(ops.extend_qos_session(session.pcf_id, additional))
        return _info(self._track(session, record))

    async def retrieve_sessions(
        self, ctx: CallContext, body: RetrieveSessionsInput
    ) -> list[SessionInfo]:
        msisdn, _ = self._device(ctx, body.device)
        await self._run(ops.require_data_connectivity(msisdn))
        mine = [s for s in self._live_sessions(msisdn) if s.client_id == ctx.client_id]
        return [_info(await self._refresh(s)) for s in mine]

    # -- KYC -------------------------------------------------------------------------------

    async def retrieve_consent_status(
        self, ctx: CallContext, body: RetrieveStatusRequestBody
    ) -> RetrieveStatusResponseBody:
        """Consent Info: identified like the other APIs (a token's subscriber, or the body's
        number two-legged), but never refused for an objection: reporting it is the answer."""
        resolved = resolve_device(ctx.msisdn, _phone(body.phoneNumber), self.directory, PHONE_ONLY)
        if self.consent_status is None:
            raise CamaraError(503, "UNAVAILABLE", "Consent Info is not available here.")
        return self.consent_status(ctx, resolved.msisdn, body)

    async def kyc_match(self, ctx: CallContext, body: KycMatchRequest) -> KycMatchResponse:
        """KYC's own rule: a three-legged call may repeat the number, but it must match."""
        ops.refuse_empty_claim(body)
        if ctx.msisdn is not None:
            if body.phoneNumber is not None and body.phoneNumber != ctx.msisdn:
                raise CamaraError(
                    403, "INVALID_TOKEN_CONTEXT", "phoneNumber is not consistent with access token."
                )
            msisdn, _ = self._device(ctx, None, PHONE_ONLY)
        else:
            msisdn, _ = self._device(ctx, _phone(body.phoneNumber), PHONE_ONLY)
        return await self._run(
            ops.kyc_match(msisdn, body, require_id_document=self.require_id_document)
        )


def _phone(number: str | None) -> Device | None:
    return Device(phoneNumber=number) if number is not None else None


def _info(session: QodSession) -> SessionInfo:
    request = session.request
    available = session.status is QosStatus.AVAILABLE
    return SessionInfo(
        sessionId=uuid.UUID(session.session_id),
        device=session.device,
        applicationServer=request.applicationServer,
        devicePorts=request.devicePorts,
        applicationServerPorts=request.applicationServerPorts,
        qosProfile=request.qosProfile,
        sink=request.sink,
        duration=max(1, round(session.expires_at - session.started_at)),
        startedAt=datetime.fromtimestamp(session.started_at, UTC),
        expiresAt=datetime.fromtimestamp(session.expires_at, UTC),
        qosStatus=session.status,
        statusInfo=None if available else session.status_info,
    )


def _no_sandbox_reach(_msisdn: str) -> CamaraError | None:
    return CamaraError(
        403, "PERMISSION_DENIED", "This operator opens no test numbers to sandbox applications."
    )
