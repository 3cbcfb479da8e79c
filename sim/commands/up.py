"""``ogsim up``: the whole federation live, each party its own process on a loopback port.

Starts every operator (all its data centres behind its load-balanced front) and the
aggregator as separate uvicorn processes that reach each other only over HTTP, registers a
demo application with the aggregator, writes the descriptor JSON (every URL, the test
numbers, the application's credentials with its private key), and stops every process
cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from federation.config import default_federation, load_federation
from federation.launcher import FederationProcesses, descriptor

console = Console()


def up(
    config: Annotated[
        Path | None,
        typer.Option(help="federation YAML (default: the built-in three-operator federation)"),
    ] = None,
    descriptor_path: Annotated[
        Path, typer.Option("--descriptor", help="where to write the descriptor JSON")
    ] = Path("ogsim-federation.json"),
    base_port: Annotated[
        int, typer.Option(min=1024, max=65000, help="first port; operators, then the aggregator")
    ] = 8100,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="databases and logs of the parties (default: a temporary folder)"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every party")] = 60.0,
) -> None:
    """Start every operator and the aggregator as separate processes, until Ctrl-C."""
    federation = load_federation(config) if config else default_federation()
    scratch = None
    if run_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="ogsim-up-")
        run_dir = Path(scratch.name)
    processes = FederationProcesses.prepare(federation, base_port, run_dir)
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        processes.start()
        processes.wait_ready(timeout)
        application = processes.register_demo_application()
        described = descriptor(processes, application)
        descriptor_path.parent.mkdir(parents=True, exist_ok=True)
        descriptor_path.write_text(json.dumps(described, indent=2))
        _print(described, descriptor_path)
        while not stop.wait(0.5):
            for party, process in processes.processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{party} exited with {process.returncode}[/red]")
                    stop.set()
    finally:
        codes = processes.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        console.print(f"stopped: {', '.join(f'{p} ({c})' for p, c in codes.items())}")
        if scratch is not None:
            scratch.cleanup()


def _print(described: dict[str, object], path: Path) -> None:
    table = Table(title="ogsim federation (live, one process per party)")
    for column in ("party", "issuer", "test number (approves)"):
        table.add_column(column)
    for operator in described["operators"]:  # type: ignore[attr-defined]
        table.add_row(operator["id"], operator["issuer"], operator["testNumbers"]["approves"])
    for aggregator in described["aggregators"]:  # type: ignore[attr-defined]
        table.add_row(aggregator["id"], aggregator["issuer"], "-")
    console.print(table)
    console.print(f"descriptor: {path} (demo application credentials included); Ctrl-C stops")


if __name__ == "__main__":
    typer.run(up)
