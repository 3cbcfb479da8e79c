"""The interface the CAMARA routers call: one coroutine per operation, CAMARA models in and out.

The integrator (:mod:`operators.integrator`) implements it; a test may implement it with a
stub. Every method raises :class:`~operators.errors.CamaraError` for a CAMARA error answer.
"""

from __future__ import annotations

from typing import Protocol

from .consent_info import RetrieveStatusRequestBody, RetrieveStatusResponseBody
from .context import CallContext
from .device_status import (
    ReachabilityStatusResponse,
    RequestReachabilityStatus,
    RoamingStatusRequest,
    RoamingStatusResponse,
)
from .kyc_match import KycMatchRequest, KycMatchResponse
from .location import (
    RetrievalLocationRequest,
    RetrievedLocation,
    VerifyLocationRequest,
    VerifyLocationResponse,
)
from .number_verification import (
    NumberVerificationMatchResponse,
    NumberVerificationRequestBody,
    NumberVerificationShareResponse,
)
from .qos_profiles import QosProfile, QosProfileDeviceRequest
from .quality_on_demand import (
    CreateSession,
    ExtendSessionDuration,
    RetrieveSessionsInput,
    SessionInfo,
)
from .sim_swap import CheckSimSwapInfo, CreateCheckSimSwap, CreateSimSwapDate, SimSwapInfo

__all__ = ["CamaraServices"]


class CamaraServices(Protocol):
    """Everything the CAMARA API layer asks of the operator behind it."""

    async def check_sim_swap(
        self, ctx: CallContext, body: CreateCheckSimSwap
    ) -> CheckSimSwapInfo: ...

    async def retrieve_sim_swap_date(
        self, ctx: CallContext, body: CreateSimSwapDate
    ) -> SimSwapInfo: ...

    async def verify_number(
        self, ctx: CallContext, body: NumberVerificationRequestBody
    ) -> NumberVerificationMatchResponse: ...

    async def device_phone_number(self, ctx: CallContext) -> NumberVerificationShareResponse: ...

    async def reachability_status(
        self, ctx: CallContext, body: RequestReachabilityStatus
    ) -> ReachabilityStatusResponse: ...

    async def roaming_status(
        self, ctx: CallContext, body: RoamingStatusRequest
    ) -> RoamingStatusResponse: ...

    async def verify_location(
        self, ctx: CallContext, body: VerifyLocationRequest
    ) -> VerifyLocationResponse: ...

    async def retrieve_location(
        self, ctx: CallContext, body: RetrievalLocationRequest
    ) -> RetrievedLocation: ...

    async def create_session(self, ctx: CallContext, body: CreateSession) -> SessionInfo: ...

    async def get_session(self, ctx: CallContext, session_id: str) -> SessionInfo: ...

    async def delete_session(self, ctx: CallContext, session_id: str) -> None: ...

    async def extend_session(
        self, ctx: CallContext, session_id: str, body: ExtendSessionDuration
    ) -> SessionInfo: ...

    async def retrieve_sessions(
        self, ctx: CallContext, body: RetrieveSessionsInput
    ) -> list[SessionInfo]: ...

    async def retrieve_qos_profiles(
        self, ctx: CallContext, body: QosProfileDeviceRequest
    ) -> list[QosProfile]: ...

    async def get_qos_profile(self, ctx: CallContext, name: str) -> QosProfile: ...

    async def kyc_match(self, ctx: CallContext, body: KycMatchRequest) -> KycMatchResponse: ...

    async def retrieve_consent_status(
        self, ctx: CallContext, body: RetrieveStatusRequestBody
    ) -> RetrieveStatusResponseBody: ...
