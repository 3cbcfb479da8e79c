"""CPU per CAMARA call of the full gateway chain, in process, with no server or load generator.

``gateway_throughput.py`` compares the chain with a bare endpoint under wrk, which is the fair
figure but moves with this machine's speed from one hour to the next (the bare endpoint alone
has ranged from 3,400 to 6,700 req/s on the same code). To tell whether a change made the chain
cheaper, this script posts the same SIM Swap checks straight into the operator's ASGI app (the
app ``gateway_throughput.py`` serves: three-legged CIBA token, unlimited plan, zero-time
backend, metering to a WAL SQLite file) and reports the process's CPU time per call, the best
of several rounds. Run it from two checkouts, alternated, to compare them::

    PYTHONPATH=. .venv/bin/python benchmarks/gateway_cpu_per_call.py [--calls 6000] [--rounds 3]

Every answer is checked (200 and the exact body); the usage events metered must equal the
calls made. It runs on asyncio's own loop, not uvloop, and skips uvicorn's HTTP parsing, so the
figure is the chain's share only; compare it with itself, not with ``gateway_throughput.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway_throughput as bench

Message = dict[str, Any]
App = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
BASE = "http://127.0.0.1:8999"
BATCH = 32
"""Calls in flight at once, as wrk's 32 connections keep them."""


async def start_lifespan(app: App) -> Callable[[], Awaitable[None]]:
    """Run the app's start-up (the group commit and the writers start there); return its stop."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def prepare(app: App) -> str:
    """Register the benchmark's client through the admin API and get its token, in process."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    original = httpx.AsyncClient

    class InProcess(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **settings: Any) -> None:
            super().__init__(*args, **{**settings, "transport": transport})

    httpx.AsyncClient = InProcess  # type: ignore[misc]
    try:
        return await bench.prepare_full(BASE)
    finally:
        httpx.AsyncClient = original  # type: ignore[misc]


def check_call(app: App, token: str) -> Callable[[], Awaitable[None]]:
    """One SIM Swap check as wrk sends it, its answer checked."""
    body = bench.REQUEST_BODY.encode()
    headers = [
        (b"host", b"127.0.0.1:8999"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]

    async def call() -> None:
        sent: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:  # the client waits for its answer; nothing more comes
                await asyncio.Event().wait()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": bench.PATH,
            "raw_path": bench.PATH.encode(), "query_string": b"", "root_path": "",
            "headers": list(headers), "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8999), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
        answer = b"".join(m.get("body", b"") for m in sent[1:])
        if sent[0]["status"] != 200 or json.loads(answer) != bench.EXPECTED:
            raise SystemExit(f"unexpected answer {sent[0]['status']}: {answer[:200]!r}")

    return call


async def metered(app: App) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:  # type: ignore[arg-type]
        response = await http.get("/admin/usage", headers=bench.ADMIN)
        response.raise_for_status()
        return sum(
            int(row["calls"])
            for row in response.json()
            if row["clientId"] == bench.CLIENT_ID and row["api"] == "sim-swap"
        )


async def measure(calls: int, rounds: int, folder: Path) -> None:
    app = bench.full_app(8999, str(folder / "op.sqlite3"))
    stop = await start_lifespan(app)
    try:
        call = check_call(app, await prepare(app))
        for _ in range(300):  # warm the caches, as wrk's warm-up does
            await call()
        before = await metered(app)
        batches = max(1, calls // BATCH)
        results: list[tuple[float, float]] = []
        for round_ in range(1, rounds + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                await asyncio.gather(*(call() for _ in range(BATCH)))
            cpu = (time.process_time() - cpu) / (batches * BATCH)
            wall = (time.perf_counter() - wall) / (batches * BATCH)
            results.append((cpu, wall))
            print(f"round {round_}: {cpu * 1e6:.1f} µs CPU, {wall * 1e6:.1f} µs wall per call")
        made = rounds * batches * BATCH
        events = await metered(app) - before
        print(
            f"best: {min(results)[0] * 1e6:.1f} µs CPU per call over {made:,} checked calls;"
            f" usage events {events:,} ({'match' if events == made else 'MISMATCH'})"
        )
        if events != made:
            raise SystemExit(1)
    finally:
        await stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=6000, help="calls per round (>= 32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported")
    args = parser.parse_args(argv)
    if args.calls < BATCH or args.rounds < 1:
        parser.error(f"--calls must be at least {BATCH} and --rounds at least 1")
    with tempfile.TemporaryDirectory(prefix="ogsim-cpu-") as folder:
        asyncio.run(measure(args.calls, args.rounds, Path(folder)))


if __name__ == "__main__":
    main()
