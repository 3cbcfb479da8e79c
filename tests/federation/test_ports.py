"""Ports for a live federation: chosen outside the kernel's ephemeral range (where every
outgoing connection takes its local port) and bound by the launcher, not the child."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from federation import ports
from federation.config import default_federation
from federation.launcher import FederationProcesses, party_ports
from federation.ports import (
    HIGHEST,
    candidate_ranges,
    ephemeral_range,
    free_port_block,
    is_free,
    listening_socket,
)


def test_a_block_is_free_and_outside_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    for _ in range(20):
        base = free_port_block(6)
        block = range(base, base + 6)
        assert all(not low <= port <= high for port in block)
        assert all(is_free(port) for port in block)


def test_every_candidate_block_fits_outside_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    for candidates in candidate_ranges(6):
        for start in (candidates.start, candidates.stop - 1):  # the extremes of each range
            block = range(start, start + 6)
            assert block[-1] <= HIGHEST
            assert block[-1] < low or block[0] > high


def test_a_block_skips_a_port_that_is_taken() -> None:
    base = free_port_block(3)
    with listening_socket(base + 1):
        assert not is_free(base + 1)
        for _ in range(50):
            other = free_port_block(3)
            assert base + 1 not in range(other, other + 3)
    assert is_free(base + 1)


def test_a_child_serves_on_the_socket_it_was_handed(tmp_path: Path) -> None:
    """The same hand-over ``FederationProcesses.start_party`` makes: the child never binds."""
    port = free_port_block(1)
    child = (
        "import socket, sys\n"
        "server = socket.socket(fileno=int(sys.argv[1]))\n"
        "connection, _ = server.accept()\n"
        "connection.sendall(b'served by the child')\n"
        "connection.close()\n"
    )
    with listening_socket(port) as sock:
        process = subprocess.Popen(
            [sys.executable, "-c", child, str(sock.fileno())], pass_fds=(sock.fileno(),)
        )
    try:
        assert not is_free(port)  # the child holds it after the launcher closed its copy
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            assert client.recv(100) == b"served by the child"
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


def test_a_kernel_without_room_outside_its_range_still_gets_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Some hosts hand out nearly every port (``1024 65535``): fall back to the kernel's own
    choice rather than refuse to start anything."""
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (1024, 65535))
    assert candidate_ranges(4) == []
    base = free_port_block(4)
    assert base + 3 <= HIGHEST
    assert all(is_free(port) for port in range(base, base + 4))


def test_the_launcher_keeps_no_copy_of_a_party_socket(tmp_path: Path) -> None:
    """Once the party's process has the socket, the port is the process's alone: when it
    dies the port is free again (a restarted party binds it anew)."""
    processes = FederationProcesses.prepare(default_federation(), free_port_block(4), tmp_path)
    party = processes.config.operators[0].id
    port = party_ports(processes.config)[party]
    processes.start_party(party)
    process = processes.processes[party]
    try:
        assert not is_free(port)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert is_free(port)


def test_up_names_the_party_whose_port_is_taken(tmp_path: Path) -> None:
    base = free_port_block(4)
    with listening_socket(base + 1):
        result = subprocess.run(
            [sys.executable, "-m", "sim.cli", "up", "--base-port", str(base),
             "--run-dir", str(tmp_path / "run"), "--descriptor", str(tmp_path / "f.json")],
            capture_output=True, text=True, timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{base + 1}" in output
    assert "Traceback" not in output
    assert not (tmp_path / "f.json").exists()


@pytest.mark.parametrize("command", ["party", "pool"])
def test_the_launcher_documents_the_inherited_socket(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "federation.launcher", command, "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and "--fd" in result.stdout
