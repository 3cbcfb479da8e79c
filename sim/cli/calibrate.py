"""The calibration command: ``ogsim calibrate``, the simulation checked against live.

Drives headless Locust on loopback (through :mod:`loadtests`, as ``ogsim loadtest`` does)
at a ladder of user counts against a federation (``--descriptor`` of one already up, or one
started here), reads each operator's metrics and CPU around every step, and hands the
steps to :func:`sim.calibration.calibrate`, which fits, writes and simulates.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from loadtests import LOCUSTFILE, federation_for_run, read_summary, run_locust
from sim.calibration import Calibration, calibrate
from sim.calibration_live import LiveStep, measure_step

__all__ = ["QUICK_LADDER", "app", "calibrate_command", "live_ladder", "render"]

PANEL = "Calibration (simulation against live)"
LADDER = (4, 12, 24, 48, 80, 120)
QUICK_LADDER = (4, 12)
WARM_UP = 3
"""Seconds after the first calls before a step is measured (users spawn, fetch tokens)."""
START_ALLOWANCE = 12
"""Seconds Locust is given to start before its first calls (it imports much; busy machines)."""
CLASSES = ["AntiFraudApp", "LocationApp", "QodApp"]
"""Direct callers only: the simulation's calibrated topology has no aggregator tier."""

console = Console()


def _operators(descriptor: Path) -> dict[str, tuple[str, int | None]]:
    data = json.loads(descriptor.read_text())
    return {op["id"]: (op["apiRoot"], op.get("pid")) for op in data["operators"]}


def live_ladder(
    descriptor: Path,
    results: Path,
    ladder: tuple[int, ...],
    step_seconds: int,
    warm_up: int = WARM_UP,
) -> list[LiveStep]:
    """Run Locust at each user count of ``ladder`` and measure the operators around it.

    Locust runs in a thread (it is a child process; the thread only waits for it) for its
    start, the warm-up and the measured window, so the window sees steady users.
    """
    operators = _operators(descriptor)
    steps = []
    with httpx.Client(timeout=10.0) as http:
        for users in ladder:
            folder = results / f"users-{users}"

            def start(users: int = users, folder: Path = folder) -> Callable[[], dict[str, Any]]:
                def run() -> None:
                    run_locust(
                        locustfile=LOCUSTFILE,
                        descriptor=descriptor,
                        results=folder,
                        users=users,
                        spawn_rate=float(users),
                        run_time=f"{START_ALLOWANCE + warm_up + step_seconds}s",
                        stop_timeout=2,
                        user_classes=CLASSES,
                    )

                thread = threading.Thread(target=run, name=f"locust-{users}", daemon=True)
                thread.start()

                def finish() -> dict[str, Any]:
                    thread.join()
                    served: dict[str, Any] = read_summary(folder).get("served", {})
                    return served

                return finish

            step = measure_step(
                http, operators, users, float(step_seconds), start, time.sleep, float(warm_up)
            )
            console.print(
                f"{users:4d} users: {step.throughput:7.1f} calls/s at the gateways",
                highlight=False,
            )
            steps.append(step)
    return steps


def _number(value: float, percent: bool = False) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:+.0%}" if percent else f"{value:.1f}"


def render(calibration: Calibration) -> Table:
    """Live beside simulated, with the relative errors."""
    table = Table(title="ogsim calibrate: live against simulated")
    for name in ["level", "users", "live /s", "sim /s", "err", "live p50", "sim p50", "err"]:
        table.add_column(name, justify="right")
    for name in ["live p95", "sim p95", "err"]:
        table.add_column(name, justify="right")
    for row in calibration.rows:
        errors = row.errors
        table.add_row(
            row.level,
            str(row.users),
            _number(row.live_throughput),
            _number(row.sim_throughput),
            _number(errors["throughput"], True),
            _number(row.live_p50_ms),
            _number(row.sim_p50_ms),
            _number(errors["p50"], True),
            _number(row.live_p95_ms),
            _number(row.sim_p95_ms),
            _number(errors["p95"], True),
        )
    return table


def calibrate_command(
    descriptor: Annotated[
        Path | None,
        typer.Option(help="descriptor of a federation already up (default: start one)"),
    ] = None,
    quick: Annotated[bool, typer.Option(help="two short steps (about a minute in all)")] = False,
    out: Annotated[Path, typer.Option(help="folder for the scenario, table and plot")] = Path(
        "calibration"
    ),
    users: Annotated[
        list[int] | None, typer.Option(help="the ladder of user counts (repeatable)")
    ] = None,
    step_seconds: Annotated[int | None, typer.Option(min=2, help="seconds per step")] = None,
    think_scale: Annotated[float, typer.Option(help="Locust think-time scale")] = 0.2,
) -> None:
    """Measure the live federation at a ladder of loads, fit the simulation, compare."""
    ladder = tuple(users) if users else (QUICK_LADDER if quick else LADDER)
    seconds = step_seconds or (6 if quick else 25)
    os.environ["OGSIM_THINK_SCALE"] = str(think_scale)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ogsim-calibrate-") as scratch:
        results = Path(scratch)
        with federation_for_run(descriptor, results, None, console.print) as described:
            steps = live_ladder(described, results, ladder, seconds)
    try:
        calibration = calibrate(steps, out, sim_seconds=20.0 if quick else 60.0)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    console.print(render(calibration))
    for tier in calibration.tiers:
        console.print(
            f"{tier['operator']}: gateway {tier['cpu_per_call_ms']:.2f} ms CPU per call, "
            f"latency {tier['latency_fit']}, grants {tier['identity_fit']}",
            highlight=False,
        )
    console.print(f"written: {', '.join(str(p) for p in calibration.files)}", highlight=False)


app = typer.Typer()
app.command("calibrate", rich_help_panel=PANEL)(calibrate_command)
