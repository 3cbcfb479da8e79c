"""The aggregator's settlement survives SIGKILL: the federation's processes on loopback ports,
the aggregator killed in the middle of a stream of concurrent calls and restarted on its
database; every 2xx through the hub has exactly one settlement row, a row whose answer no
client saw belongs to a call cut off by the kill, and a correlator replayed after the restart
adds no row (the operator replays its stored answer). SIGTERM stops every party with 0."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from federation import default_federation
from federation.client import ApplicationClient
from federation.launcher import FederationProcesses, descriptor
from federation.ports import free_port_block

WORKERS = 3
CALLS_PER_WORKER = 50
KILL_AFTER = 60


def settlement(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    with sqlite3.connect(path) as conn:
        return {
            (a, c): (s, b)
            for a, c, s, b in conn.execute(
                "SELECT application, correlator, status, billable FROM aggregator_settlement"
            )
        }


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[FederationProcesses]:
    processes = FederationProcesses.prepare(default_federation(), free_port_block(4), tmp_path)
    yield processes
    codes = processes.stop(timeout=120)  # generous: a loaded machine shuts down slowly
    assert all(code == 0 for code in codes.values()), codes  # a clean stop on SIGTERM


async def stream(
    processes: FederationProcesses, application: dict[str, Any], seen: dict[str, Any]
) -> None:
    described = descriptor(processes, application)
    hub = described["aggregator"]
    aggregator_id = hub["id"]
    numbers = [o["testNumbers"]["recent-swap"] for o in described["operators"]]
    async with httpx.AsyncClient(timeout=15.0) as http:
        client = await ApplicationClient.discover(
            application["clientId"], ECKey.import_key(application["privateJwk"]),
            application["issuer"], http,
        )
        token = (await client.client_credentials(
            "sim-swap:check dpv:FraudPreventionAndDetection"))["access_token"]
        seen["token"] = token
        done = 0
        killed = asyncio.Event()

        async def calls(worker: int) -> None:
            nonlocal done
            for n in range(CALLS_PER_WORKER):
                correlator = f"hub-{worker}-{n}"
                number = seen["numbers"][correlator] = numbers[(worker + n) % len(numbers)]
                try:
                    r = await http.post(
                        f"{hub['apiRoot']}/sim-swap/v2/check",
                        json={"phoneNumber": number},
                        headers={"Authorization": f"Bearer {token}", "x-correlator": correlator,
                                 "Idempotency-Key": correlator},
                    )
                except httpx.TransportError:
                    seen["cut_off"].add(correlator)
                    continue
                seen["answered"][correlator] = (r.status_code, r.content)
                done += 1
                if done == KILL_AFTER and not killed.is_set():
                    process = processes.processes[aggregator_id]
                    process.send_signal(signal.SIGKILL)
                    assert process.wait(timeout=30) == -signal.SIGKILL
                    killed.set()

        await asyncio.gather(*(calls(w) for w in range(WORKERS)))
        assert killed.is_set()


async def replay(hub: str, token: str, calls: dict[str, str]) -> list[str]:
    """Each call again, the same request under the same correlator (by correlator: number)."""
    flags = []
    async with httpx.AsyncClient(timeout=15.0) as http:
        for correlator, number in calls.items():
            r = await http.post(
                f"{hub}/sim-swap/v2/check", json={"phoneNumber": number},
                headers={"Authorization": f"Bearer {token}", "x-correlator": correlator,
                         "Idempotency-Key": correlator},
            )
            assert r.status_code == 200, r.text
            flags.append(r.headers.get("idempotent-replayed", ""))
    return flags


def test_sigkill_of_the_aggregator_loses_and_doubles_no_settlement(
    federation: FederationProcesses,
) -> None:
    federation.start()
    federation.wait_ready(120)
    application = federation.register_demo_application()
    aggregator_id = federation.config.aggregators[0].id
    database = federation.run_dir / f"{aggregator_id}.sqlite3"
    seen: dict[str, Any] = {"answered": {}, "cut_off": set(), "numbers": {}}
    asyncio.run(stream(federation, application, seen))

    federation.start_party(aggregator_id)  # the same port, the same database, the same key
    federation.wait_ready(120)
    rows = settlement(database)
    app = application["clientId"]
    ok = {c: v for c, v in seen["answered"].items() if 200 <= v[0] < 300}
    missing = [c for c in ok if rows.get((app, c), (0, 0))[1] != 1]
    assert not missing, f"{len(missing)} answered calls have no billable row: {missing[:5]}"
    unseen = {c for (_, c) in rows} - set(seen["answered"])
    assert unseen <= seen["cut_off"], unseen - seen["cut_off"]

    described = descriptor(federation, application)
    sample = sorted(ok)[::10]
    flags = asyncio.run(replay(described["aggregator"]["apiRoot"], seen["token"],
                               {c: seen["numbers"][c] for c in sample}))
    after = settlement(database)
    assert after == rows  # replays add no row and change none
    assert flags == ["true"] * len(sample), "each is the operator's stored answer, not a rerun"
    print(
        f"kill -9 of the aggregator: {len(seen['answered'])} calls answered ({len(ok)} 2xx), "
        f"{len(seen['cut_off'])} cut off by the kill; {len(rows)} settlement rows found, "
        f"{len(ok)} billable for the 2xx answers ({len(unseen)} for calls cut off after "
        f"their row, 0 doubled); {len(sample)} correlators replayed after the restart "
        f"(replayed by the operator: {flags.count('true')}), no new row"
    )
