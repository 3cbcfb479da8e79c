"""A live federation (each party its own process on loopback) for the Locust runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from federation.config import default_federation
from federation.launcher import FederationProcesses, descriptor
from federation.ports import free_port_block


@pytest.fixture(scope="package")
def live_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default federation started as ``ogsim up`` starts it; yields its descriptor."""
    run_dir = tmp_path_factory.mktemp("federation")
    processes = FederationProcesses.prepare(default_federation(), free_port_block(6), run_dir)
    try:
        processes.start()
        processes.wait_ready(90)
        application = processes.register_demo_application()
        path = run_dir / "descriptor.json"
        path.write_text(json.dumps(descriptor(processes, application), indent=2))
        yield path
    finally:
        processes.stop()
