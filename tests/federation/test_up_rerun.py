"""``ogsim up --run-dir`` a second time (the same key-encryption key): the demo application
the first run registered is reused with the private key kept in the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from federation.client import ApplicationClient
from federation.config import default_federation
from federation.launcher import DEMO_KEY_FILE, FederationProcesses, PartyStartError
from federation.ports import free_port_block
from operators.identity import KeySealing


async def started_application(run_dir: Path, port: int) -> dict[str, Any]:
    """Start the default federation in ``run_dir``, register the demo application, get a
    token with its key (so the key is the registered one), stop."""
    processes = FederationProcesses.prepare(default_federation(), port, run_dir)
    try:
        processes.start()
        processes.wait_ready(90)
        application = processes.register_demo_application()
        async with httpx.AsyncClient(timeout=10) as http:
            client = await ApplicationClient.discover(
                application["clientId"],
                ECKey.import_key(application["privateJwk"]),
                application["issuer"],
                http,
            )
            await client.client_credentials("sim-swap:check dpv:FraudPreventionAndDetection")
        return application
    finally:
        processes.stop()


async def test_a_second_up_in_the_same_run_dir_reuses_the_demo_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KeySealing.ENV, KeySealing.generate())
    run_dir = tmp_path / "run"
    port = free_port_block(6)
    first = await started_application(run_dir, port)
    assert (run_dir / DEMO_KEY_FILE).read_text().startswith(KeySealing.PREFIX)  # sealed
    # was: 400 "client_id 'demo-app' is already registered"
    second = await started_application(run_dir, port)
    assert second["clientId"] == first["clientId"] == "demo-app"
    assert second["publicJwk"] == first["publicJwk"]


def test_a_run_dir_without_the_kept_key_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = FederationProcesses.prepare(default_federation(), 8100, tmp_path)
    registered = {"jwks": {"keys": []}, "disabled": False}
    with pytest.raises(PartyStartError, match=f"not kept in .*{DEMO_KEY_FILE}.*--run-dir"):
        processes._kept_demo_key(registered)
    processes._keep_demo_key(ECKey.generate_key("P-256", private=True))
    with pytest.raises(PartyStartError, match="with another key than the one kept"):
        processes._kept_demo_key(registered)
