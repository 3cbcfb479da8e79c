"""Chaining with degradation, protective refusals, and the live driver's cancellations.

That the live driver decides as the SimPy one does is shown in
``tests/sim/scenario/test_callback_tiers.py``, which runs both on one clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from operators.camara import CallContext
from operators.camara.common import Device, Point
from operators.camara.location import VerifyCircle, VerifyLocationRequest
from operators.camara.sim_swap import CreateCheckSimSwap
from operators.core import Hlr, NetworkFunctionKind
from operators.errors import CamaraError
from operators.integrator import (
    BackendGuard,
    GuardedExecutor,
    GuardSettings,
    Integrator,
    run_async,
)
from operators.integrator import operations as ops
from operators.policies import CircuitBreakerConfig
from operators.subscriber_base import SubscriberBase

from .conftest import Direct

HLR = NetworkFunctionKind.SIM_DATA_REGISTER
CTX = CallContext(client_id="app-1")


def _verify_body(base: SubscriberBase, role: str) -> VerifyLocationRequest:
    sub = base.get(base.test_number(role))
    assert sub is not None
    center = Point(latitude=sub.location.latitude, longitude=sub.location.longitude)
    area = VerifyCircle(areaType="CIRCLE", center=center, radius=sub.location.accuracy * 2)
    return VerifyLocationRequest.model_validate(
        {"device": Device(phoneNumber=sub.msisdn), "area": area.model_dump()}
    )


async def test_location_verification_degrades_when_the_hlr_is_down(
    integrator: Integrator, functions: dict[NetworkFunctionKind, Direct], base: SubscriberBase
) -> None:
    body = _verify_body(base, "approves")
    fresh = await integrator.verify_location(CTX, body)
    functions[HLR].down = True
    degraded = await integrator.verify_location(CTX, body)
    assert degraded.verificationResult == fresh.verificationResult == "TRUE"
    # without the HLR the answer no longer claims a fresh fix: the estimate's own time
    assert degraded.lastLocationTime < fresh.lastLocationTime
    with pytest.raises(CamaraError) as refused:
        await integrator.verify_location(CTX, body.model_copy(update={"maxAge": 0}))
    assert refused.value.code == "LOCATION_VERIFICATION.UNABLE_TO_FULFILL_MAX_AGE"


async def test_location_server_down_is_503(
    integrator: Integrator, functions: dict[NetworkFunctionKind, Direct], base: SubscriberBase
) -> None:
    functions[NetworkFunctionKind.LOCATION_SERVER].down = True
    with pytest.raises(CamaraError) as error:
        await integrator.verify_location(CTX, _verify_body(base, "approves"))
    assert (error.value.status, error.value.code) == (503, "UNAVAILABLE")


def _tight(clock: Any) -> BackendGuard:
    settings = GuardSettings(
        max_concurrent=1,
        max_waiting=0,
        breaker=CircuitBreakerConfig(
            minimum_number_of_calls=2, sliding_window_size=2, wait_duration_in_open_state=30
        ),
    )
    return BackendGuard("hlr", clock, settings)


async def test_open_breaker_answers_503_without_calling_the_backend(
    base: SubscriberBase, functions: dict[NetworkFunctionKind, Direct]
) -> None:
    now = [0.0]
    guard = _tight(lambda: now[0])
    calls = []
    hlr = functions[HLR]

    class Counting(Direct):
        async def call(self, request: Any) -> Any:
            calls.append(request)
            return await hlr.call(request)

    counting = Counting(Hlr(base))
    hlr.down = True
    integrator = Integrator(
        base, GuardedExecutor({HLR: counting}, {HLR: guard}), calendar=base.clock
    )
    body = CreateCheckSimSwap(phoneNumber=base.test_number("approves"))
    for _ in range(2):
        with pytest.raises(CamaraError):
            await integrator.check_sim_swap(CTX, body)
    assert guard.breaker.state == "OPEN" and len(calls) == 2
    with pytest.raises(CamaraError) as error:
        await integrator.check_sim_swap(CTX, body)
    assert error.value.code == "UNAVAILABLE" and "circuit open" in error.value.message
    assert len(calls) == 2


async def test_full_buffer_answers_503_at_once(base: SubscriberBase) -> None:
    guard = _tight(lambda: 0.0)
    release = asyncio.Event()

    class Slow(Direct):
        async def call(self, request: Any) -> Any:
            await release.wait()
            return self.handler(request)

    functions = {HLR: Slow(Hlr(base))}
    first = asyncio.create_task(
        run_async(ops.reachability_status(base.test_number("approves")), functions, {HLR: guard})
    )
    await asyncio.sleep(0)
    with pytest.raises(CamaraError) as error:
        await run_async(
            ops.reachability_status(base.test_number("approves")), functions, {HLR: guard}
        )
    assert "buffer full" in error.value.message
    release.set()
    assert (await first).reachable is True


async def test_a_cancelled_waiter_leaves_the_buffer(base: SubscriberBase) -> None:
    """A caller that goes away while parked frees its place and teaches the breaker nothing."""
    settings = GuardSettings(max_concurrent=1, max_waiting=1, max_wait=60.0)
    guard = BackendGuard("hlr", lambda: 0.0, settings)
    release = asyncio.Event()

    class Slow(Direct):
        async def call(self, request: Any) -> Any:
            await release.wait()
            return self.handler(request)

    functions = {HLR: Slow(Hlr(base))}
    number = base.test_number("approves")
    running = asyncio.create_task(
        run_async(ops.reachability_status(number), functions, {HLR: guard})
    )
    await asyncio.sleep(0)
    parked = asyncio.create_task(
        run_async(ops.reachability_status(number), functions, {HLR: guard})
    )
    await asyncio.sleep(0)
    assert (guard.buffer.running, guard.buffer.waiting) == (1, 1)
    parked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parked
    assert (guard.buffer.running, guard.buffer.waiting) == (1, 0)
    release.set()
    assert (await running).reachable is True
    assert guard.buffer.running == 0
    assert guard.breaker.metrics().number_of_buffered_calls == 1  # only the call that ran


async def test_a_cancelled_call_frees_its_slot_for_the_next_waiter(base: SubscriberBase) -> None:
    settings = GuardSettings(max_concurrent=1, max_waiting=1, max_wait=60.0)
    guard = BackendGuard("hlr", lambda: 0.0, settings)
    hang = asyncio.Event()

    class Hanging(Direct):
        async def call(self, request: Any) -> Any:
            if not hang.is_set():
                hang.set()
                await asyncio.Event().wait()  # never answers
            return self.handler(request)

    functions = {HLR: Hanging(Hlr(base))}
    number = base.test_number("approves")
    stuck = asyncio.create_task(run_async(ops.reachability_status(number), functions, {HLR: guard}))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(
        run_async(ops.reachability_status(number), functions, {HLR: guard})
    )
    await asyncio.sleep(0)
    stuck.cancel()
    assert (await waiting).reachable is True  # promoted into the slot the cancelled call held
    assert (guard.buffer.running, guard.buffer.waiting) == (0, 0)


async def test_qod_session_expires_to_unavailable_then_disappears(
    base: SubscriberBase, functions: dict[NetworkFunctionKind, Direct]
) -> None:
    from operators.camara.quality_on_demand import CreateSession
    from operators.core import PolicyFunction

    now = [1_000_000.0]
    functions[NetworkFunctionKind.POLICY_FUNCTION] = Direct(
        PolicyFunction(base, clock=lambda: now[0])
    )
    integrator = Integrator(base, GuardedExecutor(functions), calendar=lambda: now[0])
    created = await integrator.create_session(
        CTX,
        CreateSession.model_validate(
            {
                "device": {"phoneNumber": base.test_number("approves")},
                "qosProfile": "QOS_S",
                "applicationServer": {"ipv4Address": "198.51.100.1"},
                "duration": 60,
            }
        ),
    )
    sid = str(created.sessionId)
    now[0] += 61
    expired = await integrator.get_session(CTX, sid)
    assert (expired.qosStatus, expired.statusInfo) == ("UNAVAILABLE", "DURATION_EXPIRED")
    with pytest.raises(CamaraError) as error:
        from operators.camara.quality_on_demand import ExtendSessionDuration

        await integrator.extend_session(
            CTX, sid, ExtendSessionDuration(requestedAdditionalDuration=5)
        )
    assert error.value.code == "QUALITY_ON_DEMAND.SESSION_EXTENSION_NOT_ALLOWED"
    now[0] += 400
    with pytest.raises(CamaraError) as gone:
        await integrator.get_session(CTX, sid)
    assert gone.value.code == "NOT_FOUND"
    with pytest.raises(CamaraError):
        await integrator.get_session(CallContext(client_id="other"), sid)


async def test_a_qod_call_reads_only_its_own_numbers_sessions(
    base: SubscriberBase,
    functions: dict[NetworkFunctionKind, Direct],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading every stored session on each QoD call made its cost grow with the sessions
    kept; a call now reads its number's, and the rows due to change, whatever their number
    (a reminder may never run in this process: a restart, another data centre's session)."""
    from operators.camara.quality_on_demand import CreateSession, RetrieveSessionsInput
    from operators.core import PolicyFunction
    from operators.integrator.qod_sessions import DatabaseQodSessions
    from operators.storage import Database

    now = [1_000_000.0]
    functions[NetworkFunctionKind.POLICY_FUNCTION] = Direct(
        PolicyFunction(base, clock=lambda: now[0])
    )
    store = DatabaseQodSessions(Database())
    integrator = Integrator(
        base, GuardedExecutor(functions), calendar=lambda: now[0], sessions=store
    )

    def body(number: str, duration: int) -> CreateSession:
        return CreateSession.model_validate(
            {
                "device": {"phoneNumber": number},
                "qosProfile": "QOS_S",
                "applicationServer": {"ipv4Address": "198.51.100.1"},
                "duration": duration,
            }
        )

    def read_all() -> list[Any]:
        raise AssertionError("a call read every stored session")

    monkeypatch.setattr(store, "all", read_all)
    mine, other = base.test_number("approves"), base.test_number("recent-swap")
    short = str((await integrator.create_session(CTX, body(other, 30))).sessionId)
    sid = str((await integrator.create_session(CTX, body(mine, 60))).sessionId)
    with pytest.raises(CamaraError) as twice:
        await integrator.create_session(CTX, body(mine, 60))
    assert twice.value.status == 409
    (listed,) = await integrator.retrieve_sessions(
        CTX, RetrieveSessionsInput.model_validate({"device": {"phoneNumber": mine}})
    )
    assert str(listed.sessionId) == sid
    now[0] += 31  # the other number's session ended; a call about mine catches it up
    assert (await integrator.get_session(CTX, sid)).qosStatus == "AVAILABLE"
    caught_up = store.get(short)
    assert caught_up is not None and caught_up.status.value == "UNAVAILABLE"
    now[0] += 30
    expired = await integrator.get_session(CTX, sid)
    assert (expired.qosStatus, expired.statusInfo) == ("UNAVAILABLE", "DURATION_EXPIRED")
    now[0] += 400
    with pytest.raises(CamaraError) as gone:
        await integrator.get_session(CTX, sid)
    assert gone.value.code == "NOT_FOUND"
    assert store.get(sid) is None and store.get(short) is None  # past the retention


def test_a_half_open_breaker_lets_through_its_permitted_probes_and_no_more() -> None:
    """A caller admitted while CLOSED that goes away during HALF_OPEN gives back no probe:
    only a probe of the current HALF_OPEN stretch frees a probe again (RESILIENCE.md: HALF_OPEN
    admits exactly the permitted number)."""
    now = [0.0]
    settings = GuardSettings(
        max_concurrent=8,
        max_waiting=0,
        breaker=CircuitBreakerConfig(
            minimum_number_of_calls=2, sliding_window_size=2, wait_duration_in_open_state=2,
            permitted_number_of_calls_in_half_open_state=1,
        ),
    )
    guard = BackendGuard("hlr", lambda: now[0], settings)
    closed_era = guard.admit()
    for _ in range(2):
        failing = guard.admit()
        guard.end(failing, True, 0.5)
    assert guard.breaker.state == "OPEN"
    now[0] = 3.0
    probe = guard.admit()
    assert guard.breaker.state == "HALF_OPEN"
    guard.withdraw(closed_era)  # its caller timed out long ago
    with pytest.raises(CamaraError) as refused:
        guard.admit()
    assert "circuit open" in refused.value.message
    guard.withdraw(probe)  # the probe itself gave up: its place is free again
    again = guard.admit()
    guard.end(again, False, 0.1)
    assert guard.breaker.state == "CLOSED"


def test_the_shedder_learns_from_calls_that_timed_out() -> None:
    """Behind a backend that stopped answering, the shedder's service-time estimate must
    grow from the timeouts; before, it kept the last fast answer's and admitted everyone."""
    settings = GuardSettings(max_concurrent=1, max_waiting=50, call_timeout=5.0, shed_target=0.5)
    guard = BackendGuard("hlr", lambda: 0.0, settings)
    fast = guard.admit()
    guard.end(fast, False, 0.01)
    for _ in range(3):
        hung = guard.admit()
        guard.time_out(hung, 5.0)  # held its server for the whole timeout
    running = guard.admit()
    waiting = guard.admit()  # the queue is empty before it: nothing to shed yet
    with pytest.raises(CamaraError) as shed:
        guard.admit()  # one waiter ahead of ~5 s each is far past the 0.5 s target
    assert "load shed" in shed.value.message
    guard.withdraw(waiting)
    guard.end(running, False, 0.01)
