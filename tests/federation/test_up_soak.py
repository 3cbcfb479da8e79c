"""A soak of ``ogsim up``: under a steady stream of calls its databases stop growing.

Every call through the aggregator costs the serving operator an access token (the operators'
tokens here live two seconds, shorter than the aggregator's reuse margin, so the hub asks for
a new one each time) and seen assertion ``jti``s. Without housekeeping the token table grows by
one row per call for as long as the federation runs; with it (every half second here) it holds
about one token lifetime's worth, and no ``jti`` outlives its assertion. The test drives the
real processes for a bounded number of rounds and reads an operator's SQLite file from outside,
read-only.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from joserfc.jwk import ECKey

from federation.client import ApplicationClient
from federation.config import default_federation
from federation.ports import free_port_block
from operators.config import TokenLifetimes

ROUNDS = 12
CALLS_PER_ROUND = 25
PURGED = ("identity_access_tokens",)
"""Tables whose rows die within the test (seen ``jti``s live as long as their assertions, a
minute here: for them the test checks that none is kept past its expiry)."""


def _rows(database: Path) -> dict[str, int]:
    """Rows of the purged tables, read-only (the WAL lets a reader in beside the writer)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in PURGED}


def _dead_jtis(database: Path, slack: float) -> int:
    """Seen ``jti``s kept longer than their expiry plus ``slack`` seconds."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        query = "SELECT COUNT(*) FROM identity_seen_jti WHERE expires_at < ?"
        return int(db.execute(query, (time.time() - slack,)).fetchone()[0])


async def test_a_busy_federation_keeps_its_purged_tables_bounded(tmp_path: Path) -> None:
    config = default_federation()
    short = TokenLifetimes(access_token=2, clock_skew=1)
    config = config.model_copy(
        update={
            "operators": tuple(
                op.model_copy(update={"lifetimes": short, "housekeeping_interval": 0.5})
                for op in config.operators
            )
        }
    )
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    descriptor, run_dir = tmp_path / "federation.json", tmp_path / "run"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "up",
            "--config",
            str(path),
            "--descriptor",
            str(descriptor),
            "--base-port",
            str(free_port_block(4)),
            "--run-dir",
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not descriptor.exists():
            if up.poll() is not None or time.monotonic() > deadline:
                output = up.stdout.read().decode() if up.stdout else ""
                pytest.fail(f"ogsim up did not start: {output[-2000:]}")
            time.sleep(0.2)
        time.sleep(0.2)
        described = json.loads(descriptor.read_text())
        application = described["application"]
        database = run_dir / "telco-es.sqlite3"
        roles = ("approves", "recent-swap", "never-swapped", "roaming")
        numbers = [described["operators"][0]["testNumbers"][role] for role in roles]
        async with httpx.AsyncClient(timeout=30) as http:
            client = await ApplicationClient.discover(
                application["clientId"],
                ECKey.import_key(application["privateJwk"]),
                application["issuer"],
                http,
            )
            url = described["aggregator"]["apiRoot"] + "/sim-swap/v2/check"
            issued = 0
            seen: list[dict[str, int]] = []
            for _ in range(ROUNDS):
                token = (
                    await client.client_credentials(
                        "sim-swap:check dpv:FraudPreventionAndDetection"
                    )
                )["access_token"]
                for i in range(CALLS_PER_ROUND):
                    response = await http.post(
                        url,
                        json={"phoneNumber": numbers[i % len(numbers)], "maxAge": 240},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert response.status_code == 200, response.text
                    issued += 1
                seen.append(_rows(database))
        # Wait (bounded) for the last tokens to pass their lifetime, skew and one purge.
        settled = _rows(database)
        deadline = time.monotonic() + 60
        while any(settled[t] > issued // 10 for t in PURGED) and time.monotonic() < deadline:
            time.sleep(0.5)
            settled = _rows(database)
        peak = {t: max(s[t] for s in seen) for t in PURGED}
        print(f"soak: {issued} calls, peak rows {peak}, after the load {settled}")
        assert issued == ROUNDS * CALLS_PER_ROUND
        for table in PURGED:
            # Without purging the table would hold one row per call (``issued``).
            assert settled[table] <= issued // 10, (table, settled, issued)
            assert peak[table] < issued, (table, peak, issued)
        assert _dead_jtis(database, slack=5.0) == 0
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=120) == 0  # beyond the launcher's 30 s bound per party
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
