"""``ogsim up``: three operator processes and the aggregator on loopback ports, a call
through them with the descriptor's credentials, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import ECKey

from federation.client import ApplicationClient
from federation.config import PORTED_NUMBER
from federation.ports import free_port_block

STOP_BOUND = 120


def logs(tmp_path: Path) -> str:
    """Every party's log, for a failure message that says which party lingered."""
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted((tmp_path / "run").glob("*.log"))
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_up_starts_calls_and_stops_the_processes(tmp_path: Path) -> None:
    path = tmp_path / "federation.json"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "up",
            "--descriptor",
            str(path),
            "--base-port",
            str(free_port_block(4)),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            if up.poll() is not None or time.monotonic() > deadline:
                output = up.stdout.read().decode() if up.stdout else ""
                pytest.fail(f"ogsim up did not write its descriptor: {output[-2000:]}")
            time.sleep(0.2)
        time.sleep(0.1)
        described = json.loads(path.read_text())
        pids = [o["pid"] for o in described["operators"]] + [described["aggregator"]["pid"]]
        assert len(pids) == 4 and all(alive(pid) for pid in pids)
        assert len({o["issuer"] for o in described["operators"]}) == 3

        application = described["application"]
        async with httpx.AsyncClient(timeout=10) as http:
            client = await ApplicationClient.discover(
                application["clientId"],
                ECKey.import_key(application["privateJwk"]),
                application["issuer"],
                http,
            )
            token = (
                await client.client_credentials("sim-swap:check dpv:FraudPreventionAndDetection")
            )["access_token"]
            url = described["aggregator"]["apiRoot"] + "/sim-swap/v2/check"
            headers = {"Authorization": f"Bearer {token}"}
            for operator in described["operators"]:
                number = operator["testNumbers"]["recent-swap"]
                response = await http.post(url, json={"phoneNumber": number}, headers=headers)
                assert response.status_code == 200, (operator["id"], response.text)
                assert response.json() == {"swapped": True}
            phone = described["operators"][0]["handsets"]["approves"]
            assert (await http.get(phone.partition("?")[0])).status_code == 403
            assert (await http.get(phone)).status_code == 200, "the descriptor's link opens it"
            ported = await http.post(url, json={"phoneNumber": PORTED_NUMBER}, headers=headers)
            assert ported.status_code == 200, ported.text
            settlement = await http.get(
                described["aggregator"]["settlement"],
                headers={"Authorization": "Bearer admin-secret"},
            )
            assert {r["operator"]: r["billable"] for r in settlement.json()} == {
                "telco-es": 2,
                "telco-fr": 1,
                "telco-gb": 1,
            }

        up.send_signal(signal.SIGTERM)
        try:  # beyond the launcher's own bound (30 s, then it kills a lingering party)
            code = up.wait(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ogsim up still running {STOP_BOUND} s after SIGTERM\n{logs(tmp_path)}")
        assert code == 0, logs(tmp_path)
        assert not [pid for pid in pids if alive(pid)], "every party process stopped"
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


def test_sigterm_during_start_up_stops_the_parties_started_so_far(tmp_path: Path) -> None:
    """The signal used to be noted only once every party was ready and the descriptor
    written; now the start-up gives up at once and stops what it started."""
    path = tmp_path / "federation.json"
    up = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "up", "--descriptor", str(path),
         "--base-port", str(free_port_block(4)), "--run-dir", str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run" / "hub.log").exists():  # the last party is starting
            if up.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ogsim up did not start its parties")
            time.sleep(0.05)
        up.send_signal(signal.SIGTERM)
        try:
            output, _ = up.communicate(timeout=STOP_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ogsim up still running {STOP_BOUND} s after SIGTERM\n{logs(tmp_path)}")
        said = " ".join(output.decode().split())
        assert up.returncode == 128 + signal.SIGTERM, said
        assert "SIGTERM during start-up" in said and "stopped: telco-es (" in said, said
        assert not path.exists(), "no descriptor of a federation that was stopped"
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
