"""Sans-IO operation flows and their two drivers: asyncio (live) and generator (SimPy).

An operation is written once as a generator that yields :class:`BackendCall` and is sent the
backend's record (or has the CAMARA error of a failed call thrown into it, which it may catch
to degrade). :func:`run_async` drives it against awaitable network functions
(:class:`operators.core.LiveNetworkFunction`); :func:`run_process` is itself a generator that a
SimPy process runs, against functions whose ``call`` yields SimPy events
(``sim.core.SimNetworkFunction``). Both go through the same :class:`BackendGuard` per backend,
so admission, refusal and breaker decisions are the same code in both modes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from operators.core import BackendError, NetworkFunctionKind, SessionUnknown, SubscriberUnknown
from operators.errors import CamaraError
from operators.policies import TicketState

from .protection import BackendGuard, Outcome

__all__ = [
    "AsyncFunction",
    "BackendCall",
    "Flow",
    "GeneratorFunction",
    "SimEnvironment",
    "run_async",
    "run_process",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackendCall:
    """One request to one network function, in that function's own request format."""

    kind: NetworkFunctionKind
    request: Any


Flow = Generator[BackendCall, Any, T]


class AsyncFunction(Protocol):
    def call(self, request: Any) -> Awaitable[Any]: ...


class GeneratorFunction(Protocol):
    def call(self, request: Any) -> Generator[Any, Any, Any]: ...


class SimEnvironment(Protocol):
    """What the generator driver uses of ``simpy.Environment`` (operators never import simpy)."""

    @property
    def now(self) -> float: ...

    def event(self) -> Any: ...

    def timeout(self, delay: float) -> Any: ...

    def process(self, generator: Generator[Any, Any, Any]) -> Any: ...

    def any_of(self, events: list[Any]) -> Any: ...


def translate_backend_error(error: BackendError) -> tuple[CamaraError, bool]:
    """The CAMARA error for a backend error, and whether it counts as the backend failing."""
    if isinstance(error, SubscriberUnknown):
        return CamaraError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found."), False
    if isinstance(error, SessionUnknown):
        return CamaraError(404, "NOT_FOUND", "The specified resource is not found."), False
    return CamaraError(503, "UNAVAILABLE", f"{error.function} unavailable: {error.code}"), True


def _advance(flow: Flow[T], value: Any, error: CamaraError | None) -> BackendCall | T:
    """Send a record or throw an error into the flow; a finished flow gives its result."""
    try:
        step = flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as done:
        result: T = done.value
        return result
    return step


async def run_async(
    flow: Flow[T],
    functions: Mapping[NetworkFunctionKind, AsyncFunction],
    guards: Mapping[NetworkFunctionKind, BackendGuard],
) -> T:
    """Drive ``flow`` live: each backend call guarded, awaited, and bounded by its timeout."""
    step = _advance(flow, None, None)
    while isinstance(step, BackendCall):
        value: Any = None
        error: CamaraError | None = None
        try:
            value = await _guarded_async(guards[step.kind], functions[step.kind], step.request)
        except CamaraError as exc:
            error = exc
        step = _advance(flow, value, error)
    return step


async def _guarded_async(guard: BackendGuard, function: AsyncFunction, request: Any) -> Any:
    ticket = guard.admit()
    if ticket.state is TicketState.WAITING:
        promoted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not promoted.done():
                promoted.set_result(None)

        guard.on_promotion(ticket, wake)
        wait = max(0.0, ticket.deadline - guard.clock())
        try:
            await asyncio.wait_for(asyncio.shield(promoted), wait)
        except TimeoutError:
            if ticket.state is not TicketState.RUNNING:
                raise guard.give_up(ticket) from None
    started = guard.clock()
    outcome: Outcome | None = None
    try:
        async with asyncio.timeout(guard.settings.call_timeout):  # no task per call
            record = await function.call(request)
    except TimeoutError:
        outcome = Outcome(failed=True, duration=guard.clock() - started)
        raise guard.timeout() from None
    except BackendError as exc:
        camara, failed = translate_backend_error(exc)
        outcome = Outcome(failed=failed, duration=guard.clock() - started)
        raise camara from exc
    else:
        outcome = Outcome(failed=False, duration=guard.clock() - started)
        return record
    finally:
        guard.finish(ticket, outcome)


def run_process(
    env: SimEnvironment,
    flow: Flow[T],
    functions: Mapping[NetworkFunctionKind, GeneratorFunction],
    guards: Mapping[NetworkFunctionKind, BackendGuard],
) -> Generator[Any, Any, T]:
    """Drive ``flow`` in virtual time; ``env.process(run_process(...))`` runs one operation."""
    step = _advance(flow, None, None)
    while isinstance(step, BackendCall):
        value: Any = None
        error: CamaraError | None = None
        try:
            value = yield from _guarded_process(
                env, guards[step.kind], functions[step.kind], step.request
            )
        except CamaraError as exc:
            error = exc
        step = _advance(flow, value, error)
    return step


def _guarded_process(
    env: SimEnvironment, guard: BackendGuard, function: GeneratorFunction, request: Any
) -> Generator[Any, Any, Any]:
    ticket = guard.admit()
    if ticket.state is TicketState.WAITING:
        promoted = env.event()

        def wake_event() -> None:
            if not promoted.triggered:
                promoted.succeed()

        guard.on_promotion(ticket, wake_event)
        yield env.any_of([promoted, env.timeout(max(0.0, ticket.deadline - guard.clock()))])
        if ticket.state is not TicketState.RUNNING:
            raise guard.give_up(ticket)
    started = guard.clock()
    outcome: Outcome | None = None
    call = env.process(_capture(function.call(request)))
    try:
        yield env.any_of([call, env.timeout(guard.settings.call_timeout)])
        if not call.triggered:
            outcome = Outcome(failed=True, duration=guard.clock() - started)
            raise guard.timeout()
        ok, payload = call.value
        if ok:
            outcome = Outcome(failed=False, duration=guard.clock() - started)
            return payload
        camara, failed = translate_backend_error(payload)
        outcome = Outcome(failed=failed, duration=guard.clock() - started)
        raise camara from payload
    finally:
        guard.finish(ticket, outcome)


def _capture(call: Generator[Any, Any, Any]) -> Generator[Any, Any, tuple[bool, Any]]:
    """Run a backend call as its own process, turning its BackendError into a value."""
    try:
        record = yield from call
    except BackendError as exc:
        return False, exc
    return True, record
