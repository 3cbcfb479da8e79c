"""``ogsim corporate-idp`` serves the demo company's identity provider until stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from federation.ports import free_port

BOUND = 60.0
"""Generous bound on the process starting and stopping (never a fixed sleep)."""


def test_corporate_idp_serves_discovery_and_stops_on_sigterm() -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "corporate-idp", "--port", str(port),
         "--portal", "http://127.0.0.1:8080"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + BOUND
        discovery = None
        while discovery is None:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the IdP did not start"
            try:
                discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
            except httpx.TransportError:
                time.sleep(0.1)
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == issuer
        assert "S256" in discovery.json()["code_challenge_methods_supported"]
        refused = httpx.post(f"{issuer}/admin/users/bob/disable", timeout=5)
        assert refused.status_code == 401  # the admin API needs its credential
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=BOUND)
    assert process.returncode == 0, output
    assert "ogsim-portal /" in output and "bob / bob-password" in output
