"""Choosing and holding loopback ports for the processes of a live federation.

A port "free" when it is chosen can be taken before the process that should serve on it
binds it; that process may need a second or two to import itself first. Two things narrow
that window to nothing:

* ports are chosen **below the kernel's ephemeral range**, which it hands to every outgoing
  connection and every ``bind(port=0)``: a busy test run or load test opens thousands of
  those, and a listening bind fails on a port one of them holds;
* the launcher binds the listening socket itself and hands it to the child process
  (:func:`listening_socket`, ``--fd``), so the child never binds at all.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
LOWEST = 20000
"""Ports below this are left to services people install (databases, brokers, dev servers)."""
HIGHEST = 65000
"""The highest port a block may reach (``ogsim up --base-port`` stops there too)."""
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL = (32768, 60999)
"""Linux's default range, assumed where the kernel's setting cannot be read."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def candidate_ranges(count: int) -> list[range]:
    """Where a block of ``count`` ports may start: outside the ephemeral range, between
    :data:`LOWEST` and :data:`HIGHEST`."""
    low, high = ephemeral_range()
    ranges = [range(LOWEST, low - count + 1), range(high + 1, HIGHEST - count + 2)]
    return [r for r in ranges if len(r) > 0]


def is_free(port: int, host: str = HOST) -> bool:
    """Whether a listening socket could bind ``port`` now (nothing holds it, not even a
    connection lingering in TIME_WAIT)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, host: str = HOST) -> int:
    """A first port with ``count`` free consecutive loopback ports from it, outside the
    ephemeral range where there is room (checked, not reserved: bind them with
    :func:`listening_socket`). Every candidate start is equally likely, so concurrent
    callers (test workers) seldom pick overlapping blocks."""
    ranges = candidate_ranges(count)
    total = sum(len(r) for r in ranges)
    if not total:  # a kernel whose ephemeral range leaves no room: take what bind(0) gives
        return _kernel_block(count, host)
    chooser = random.SystemRandom()
    for _ in range(200):
        offset = chooser.randrange(total)
        for candidates in ranges:
            if offset < len(candidates):
                base = candidates[offset]
                break
            offset -= len(candidates)
        if all(is_free(port, host) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no free block of {count} loopback ports")


def _kernel_block(count: int, host: str) -> int:
    """A free block starting at a port the kernel chose (inside the ephemeral range)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = int(probe.getsockname()[1])
        if base + count - 1 <= HIGHEST and all(
            is_free(port, host) for port in range(base, base + count)
        ):
            return base
    raise RuntimeError(f"no free block of {count} loopback ports")


def free_port(host: str = HOST) -> int:
    """One free loopback port outside the ephemeral range."""
    return free_port_block(1, host)


def listening_socket(port: int, host: str = HOST) -> socket.socket:
    """A socket listening on ``host:port``, inheritable, for a child process to serve on.

    SO_REUSEADDR as uvicorn sets it, so a party started again after a crash gets its port
    back although the old connections linger in TIME_WAIT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
