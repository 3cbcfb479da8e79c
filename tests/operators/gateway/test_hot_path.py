"""The gateway's fast paths give the answers of the slow ones they replace.

orjson parses first, the standard library's strict parser takes over for anything unusual;
the CAMARA routes behind a gateway await its context directly instead of FastAPI's dependency
solving; the metrics keep their labelled series; the group commit reports what it cost.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from operators.camara import CallContext, build_camara_routers
from operators.camara.json_body import decode_json_object
from operators.errors import CamaraError
from operators.gateway.metering import (
    LONG_COMMIT,
    CommitTiming,
    GroupCommit,
    UsageEvent,
    UsageLedger,
)
from operators.gateway.metrics import GatewayMetrics
from operators.request_body import BodyRefusedError, ThreatLimits, members, parse_json
from operators.storage import Database

LIMITS = ThreatLimits(max_depth=5, max_keys=20, max_string_length=64)


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        (b"{}", 0),
        (b'{"a": 1, "b": {"c": [1, 2]}}', 3),
        (b'{"a:b": "x:y", "c": "\\"q:"}', 2),  # colons and escaped quotes inside strings
        (b'[{"a": 1}, {"a": 2}]', 2),
    ],
)
def test_members_counts_colons_outside_strings(raw: bytes, count: int) -> None:
    assert members(raw) == count


@pytest.mark.parametrize(
    "raw",
    [
        b'{"maxAge": 24}',
        b'{"a": "x:\\"y", "b": [1, 2.5, true, null], "c": {"d": -0.0}}',
        b'{"big": 99999999999999999999999, "u64": 18446744073709551615}',
        b'{"e": 1.5e300, "s": "\\u00e9t\\u00e9"}',
        b"[1, 2, 3]",
    ],
)
def test_parse_json_gives_what_the_standard_library_gives(raw: bytes) -> None:
    parsed = parse_json(raw, LIMITS)
    assert parsed == json.loads(raw)
    assert repr(parsed) == repr(json.loads(raw))  # integers stay integers, however wide


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": 1, "a": 2}', "repeats a key"),
        (b'{"a": {"b": 1, "b": 1}}', "repeats a key"),
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"a": "' + b"x" * 65 + b'"}', "longer than 64"),
        (b"[[[[[[1]]]]]]", "depth 6 exceeds 5"),
        (b'{"a": 1,}', "not valid JSON"),
    ],
)
def test_parse_json_refusals_keep_their_messages(raw: bytes, message: str) -> None:
    with pytest.raises(BodyRefusedError) as caught:
        parse_json(raw, LIMITS)
    assert message in caught.value.message


def test_decode_json_object_refuses_a_repeated_key_orjson_would_keep() -> None:
    with pytest.raises(CamaraError) as caught:
        decode_json_object(b'{"maxAge": 24, "maxAge": 48}')
    assert "duplicate key 'maxAge'" in caught.value.message
    with pytest.raises(CamaraError) as caught:
        decode_json_object(b'{"a": {"b": null}}')
    assert "a.b: must not be null" in caught.value.message
    assert decode_json_object(b'{"a": "x:y", "b": [1]}') == {"a": "x:y", "b": [1]}


class _Services:
    """Just enough of CamaraServices for SIM Swap's check."""

    def __getattr__(self, name: str) -> object:
        async def answer(ctx: CallContext, *args: object) -> None:
            raise CamaraError(404, "NOT_FOUND", f"{name} for {ctx.client_id}")

        return answer


def test_a_gateway_context_is_awaited_directly_and_its_refusal_rendered() -> None:
    seen: list[str] = []

    async def context(request: Request) -> CallContext:
        seen.append(request.url.path)
        if request.headers.get("authorization") is None:
            raise CamaraError(401, "UNAUTHENTICATED", "no token")
        return CallContext(client_id="app-1", correlator="c-1")

    app = FastAPI()

    @app.exception_handler(CamaraError)
    async def on_camara(request: Request, exc: CamaraError) -> object:
        from operators.camara.correlator import render_error

        return render_error(exc)

    for router in build_camara_routers(_Services(), context):  # type: ignore[arg-type]
        app.include_router(router)
    client = TestClient(app)
    answer = client.post("/sim-swap/v2/check", json={"maxAge": 24}, headers={"authorization": "x"})
    assert answer.status_code == 404
    assert answer.json()["message"] == "check_sim_swap for app-1"
    assert answer.headers["x-correlator"] == "c-1"
    refused = client.post("/sim-swap/v2/check", json={"maxAge": 24})
    assert (refused.status_code, refused.json()["code"]) == (401, "UNAUTHENTICATED")
    assert seen == ["/sim-swap/v2/check"] * 2
    assert "/sim-swap/v2/check" in app.openapi()["paths"]


def test_metrics_keep_counting_per_series() -> None:
    metrics = GatewayMetrics("op")
    for status in (200, 200, 403):
        metrics.observe("sim-swap", "checkSimSwap", status, 0.002)
    text = metrics.exposition().decode()
    series = 'api="sim-swap",operation="checkSimSwap"'
    assert f'ogsim_gateway_requests_total{{{series},status="200"}} 2.0' in text
    assert f'ogsim_gateway_requests_total{{{series},status="403"}} 1.0' in text
    assert f"ogsim_gateway_request_seconds_count{{{series}}} 3.0" in text


async def test_group_commit_reports_its_batches_and_events() -> None:
    commits = GroupCommit(UsageLedger(Database()))
    events = [
        UsageEvent("app", f"c-{i}", "sim-swap", "check", "p", 0.1, "EUR", 200, 1.0)
        for i in range(4)
    ]
    outcomes = await asyncio.gather(*(commits.record(event) for event in events))
    assert outcomes == [True] * 4
    assert (commits.timing.batches, commits.timing.events) == (1, 4)
    assert commits.timing.seconds >= commits.timing.slowest > 0


def test_commit_timing_counts_the_long_batches() -> None:
    timing = CommitTiming()
    for seconds in (0.0003, LONG_COMMIT, 0.0004, 0.009):
        timing.add(10, seconds)
    assert (timing.batches, timing.events, timing.long) == (4, 40, 2)
    assert timing.slowest == 0.009


def test_settling_the_heap_freezes_start_up_objects_and_spaces_young_collections() -> None:
    import gc

    from operators.gateway.gateway import YOUNG_COLLECTION, settle_heap

    settle_heap()
    settle_heap()  # once per process: a second call changes nothing
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] >= YOUNG_COLLECTION


def test_a_new_correlator_is_a_time_ordered_uuid_in_its_text_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import itertools
    import uuid

    from operators.camara import correlator
    from operators.camara.correlator import PATTERN, new_correlator

    # the generator's clock, not the machine's: a millisecond passes every ten correlators
    ticks = itertools.count()
    start_ms = 1_764_547_200_000
    monkeypatch.setattr(
        correlator.time, "time_ns", lambda: (start_ms + next(ticks) // 10) * 1_000_000
    )
    made = [new_correlator() for _ in range(2000)]
    assert len(set(made)) == 2000
    for index, text in enumerate(made):
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == text and PATTERN.match(text)
        assert parsed.int >> 80 == start_ms + index // 10  # the Unix time in milliseconds
    tails = [uuid.UUID(text).int & ((1 << 62) - 1) for text in made[:10]]
    assert tails != sorted(tails), "the bits after the time are random, not a counter"


def test_body_read_deadlines_keep_no_event_loop_alive() -> None:
    """The per-loop table of body-read deadlines lets a closed loop go once another loop
    reads a body (its pending timer held the loop, so every loop that ever read a body stayed
    in memory)."""
    import asyncio
    import gc
    import weakref

    from operators import request_body

    async def use_deadlines() -> weakref.ref[asyncio.AbstractEventLoop]:
        loop = asyncio.get_running_loop()
        deadlines = request_body._deadlines_of(loop)
        task = asyncio.current_task()
        assert task is not None
        deadlines.watch(task, 30.0)
        deadlines.forget(task)
        return weakref.ref(loop)

    gone = [asyncio.run(use_deadlines()) for _ in range(3)]
    gc.collect()
    assert all(ref() is None for ref in gone[:-1]), "closed loops are let go"
