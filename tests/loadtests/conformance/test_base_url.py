"""``ogsim conformance --base-url`` against ``ogsim serve`` in another process, end to end.

The served operator is the in-process run's operator (same config), reached only over HTTP;
two applications are registered through its admin API, and every token comes from the token
command ogsim ships (``ogsim token``), fed by the variables the runner sets. The verdicts
must be those of the in-process run, scenario by scenario, except where the in-process run
mints an expired token by shifting the operator's clock: a black box cannot, so the command
refuses and the scenario is skipped with that reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from federation.client import new_client_key
from federation.ports import free_port_block
from loadtests.conformance.ogsim_operator import conformance_config, register_client
from sim.cli import app
from sim.cli.qa import run_conformance_command

API = "sim-swap"
ADMIN_SECRET = conformance_config().admin_secret


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``ogsim serve`` with the conformance config in a child process; stopped afterwards."""
    config = tmp_path / "operator.yaml"
    config.write_text(yaml.safe_dump(conformance_config().model_dump(mode="json")))
    port = free_port_block(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{origin}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                why = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"ogsim serve did not start: {why}")
            time.sleep(0.2)
        yield origin
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _register(origin: str, keys: Path) -> None:
    """The runner's two applications ("primary", "secondary"), each key in ``<name>.jwk``."""
    async with httpx.AsyncClient(base_url=origin, timeout=10) as http:
        for name in ("primary", "secondary"):
            key = new_client_key()
            await register_client(http, f"{origin}/oauth", ADMIN_SECRET, f"conformance-{name}", key)
            (keys / f"{name}.jwk").write_text(json.dumps(key.as_dict(private=True)))


def _outcomes(output: str) -> tuple[dict[str, str], dict[str, str]]:
    """From the ``-v`` output: each scenario's outcome, and why each skipped one was."""
    line = re.compile(rf"^(passed|failed|skipped|error)\s+{API}\s+(@\S+)\s*$")
    skip = re.compile(rf"^SKIPPED {API} (@\S+): (.*)$")
    lines = output.splitlines()
    outcomes = {m[2]: m[1] for m in map(line.match, lines) if m}
    return outcomes, {m[1]: m[2] for m in map(skip.match, lines) if m}


def test_the_same_verdicts_as_in_process(served: str, tmp_path: Path, camara_dir: Path) -> None:
    asyncio.run(_register(served, tmp_path))
    ogsim = f"{shlex.quote(sys.executable)} -m sim.cli"
    token_command = (
        f"{ogsim} token --issuer {served}/oauth --client-id conformance-$OGSIM_CLIENT "
        f"--key {shlex.quote(str(tmp_path))}/$OGSIM_CLIENT.jwk"
    )
    result = CliRunner().invoke(
        app,
        [
            "conformance",
            "--base-url",
            served,
            "--token-command",
            token_command,
            "--admin-secret",
            ADMIN_SECRET,
            "--camara-dir",
            str(camara_dir),
            "--api",
            API,
            "--verbose",
        ],
    )
    assert result.exit_code == 0, result.output
    remote, why = _outcomes(result.output)

    expected = asyncio.run(run_conformance_command(camara_dir, [API]))
    local = {r.scenario.tag: r.outcome for r in expected.results}
    assert set(remote) == set(local) and len(local) > 20
    differ = {tag: (local[tag], remote[tag]) for tag in local if local[tag] != remote[tag]}
    expired = {t for t in differ if remote[t] == "skipped" and "expired tokens" in why[t]}
    assert set(differ) == expired, {t: (*differ[t], why.get(t)) for t in differ}
    assert sum(o == "passed" for o in remote.values()) >= len(local) - len(expired) - 5
