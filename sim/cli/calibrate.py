"""The calibration command: ``ogsim calibrate``, the simulation checked against live.

Drives headless Locust on loopback (through :mod:`loadtests`, as ``ogsim loadtest`` does)
against a federation (``--descriptor`` of one already up, or one started here): first users
calling one cheap operation back to back (the saturation step), then the same operation at
shares of the throughput that reached (the load levels). It reads each operator's metrics,
CPU and scheduler statistics around every step, and hands the steps to
:func:`sim.calibration.calibrate`, which fits, writes and simulates.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table

from loadtests import (
    LOCUSTFILE,
    DescriptorError,
    federation_for_run,
    load_descriptor,
    read_summary,
    run_locust,
)
from operators import ConfigFileError
from sim.calibration import Calibration, WhatIf, calibrate
from sim.calibration_live import (
    HUB,
    LiveBackends,
    LiveStep,
    Party,
    cpu_seconds,
    idle_cpu,
    live_backends,
    measure_step,
)
from sim.cli.options import probe_out, refuse_unwritable

__all__ = [
    "LEVELS",
    "QUICK_LEVELS",
    "Load",
    "app",
    "calibrate_command",
    "federation_step",
    "live_ladder",
    "render",
    "render_tiers",
    "render_what_if",
]

PANEL = "Calibration (simulation against live)"
SATURATING_USERS = 24
"""Users calling back to back in the saturation step: enough that every gateway always has
work queued, few enough that Locust's own process stays well under a core."""
SATURATING_WORKERS = 2
"""Locust worker processes in the full run's saturation step (the quick one runs one local
process: it starts faster)."""
ONE_LOCUST_RATE = 400.0
"""Calls/s above which a level runs on the saturation step's Locust workers: one process
delivered 493 of 738 calls/s asked (2026-12-01), and about 500 at most in earlier runs."""
LEVEL_USERS = 20
"""Users sharing each level's rate (each at its share, Locust's constant throughput)."""
LEVELS = (0.15, 0.45, 0.75)
"""The load levels, as shares of the saturation throughput live measured first."""
QUICK_LEVELS = (0.5,)
WARM_UP = 3
"""Seconds after the first calls before a step is measured (users spawn, fetch tokens)."""
START_LIMIT = 30
"""Seconds Locust is given to start before its first calls (it imports much; busy machines):
the step waits that long for them, and Locust's run time leaves room for it."""
STOP_MARGIN = 15
"""Seconds Locust's run time leaves beyond the window (the readings take a while); it is
told to stop as soon as the window closes."""
FEDERATION_CLASSES = ["AntiFraudApp", "LocationApp", "QodApp", "AggregatorApp"]
"""The federation step's users: every tier (grants, CIBA, backends, the aggregator's hop)."""
FEDERATION_USERS = 30
"""Realistic users in the federation step (a call a second or so each: a light load)."""
IDLE_SECONDS = 3.0
"""Seconds each party's idle event loop is watched before the federation step."""
FEDERATION_WARM_UP = 6
"""Seconds after the first calls before the federation step is measured (CIBA rounds)."""
CLASSES = ["SaturatingApp"]
"""One cheap call (device reachability) with a cached token: the gateways, not Locust's
realistic users (tokens, CIBA, a call a second each), reach saturation first."""

console = Console()


@dataclass(frozen=True)
class Load:
    """One rung: this many saturating users, each at ``rate`` calls/s (0: back to back)."""

    users: int
    rate: float

    @property
    def saturating(self) -> bool:
        return self.rate <= 0

    def describe(self) -> str:
        if self.saturating:
            return f"{self.users} users back to back"
        return f"{self.users} users at {self.users * self.rate:.1f} calls/s"


def _operators(descriptor: Path) -> dict[str, Party]:
    data = json.loads(descriptor.read_text())
    return {
        op["id"]: (op["apiRoot"], op.get("pid"), tuple(op.get("dataCentres", ())))
        for op in data["operators"]
    }


def _locust_cpu(process: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds of every Locust process so far (the master, then its workers, where the
    users run); NaN when none has started or one cannot be read."""
    try:
        return sum(cpu_seconds(p.pid) for p in process) if process else math.nan
    except (OSError, ValueError):
        return math.nan


def _hub(descriptor: Path) -> Party | None:
    """The aggregator as a party to measure: its origin (where ``/metrics`` is), its pid."""
    hub = json.loads(descriptor.read_text()).get("aggregator")
    if not hub:
        return None
    parts = urlsplit(hub["apiRoot"])
    return (f"{parts.scheme}://{parts.netloc}", hub.get("pid"), ())


def _measured_run(
    descriptor: Path,
    folder: Path,
    users: int,
    classes: list[str],
    extra_env: dict[str, str],
    step_seconds: int,
    operators: dict[str, Party],
    warm_up: int,
    workers: int = 0,
    saturating: bool = False,
    hub: Party | None = None,
) -> LiveStep:
    """Run Locust's ``classes`` and measure ``operators`` (and ``hub``) around it.

    Locust runs in a thread (it is a child process; the thread only waits for it) for its
    start, the warm-up and the measured window, and is told to stop (SIGTERM, after which it
    quits and writes its summary as at its run time's end) once the window is measured.
    """
    process: list[subprocess.Popen[bytes]] = []

    def start() -> Callable[[], dict[str, Any]]:
        def run() -> None:
            run_locust(
                locustfile=LOCUSTFILE,
                descriptor=descriptor,
                results=folder,
                users=users,
                spawn_rate=float(users),
                run_time=f"{START_LIMIT + warm_up + step_seconds + STOP_MARGIN}s",
                stop_timeout=2,
                user_classes=classes,
                extra_env=extra_env,
                started=process.append,
                workers=workers,
            )

        thread = threading.Thread(target=run, name=f"locust-{users}", daemon=True)
        thread.start()

        def finish() -> dict[str, Any]:
            if process and process[0].poll() is None:
                process[0].send_signal(signal.SIGTERM)
            thread.join()
            try:
                served: dict[str, Any] = read_summary(folder).get("served", {})
            except FileNotFoundError:
                served = {}
            return served

        return finish

    with httpx.Client(timeout=10.0) as http:
        return measure_step(
            http,
            operators,
            users,
            float(step_seconds),
            start,
            time.sleep,
            float(warm_up),
            saturating=saturating,
            start_limit=START_LIMIT,
            client_cpu=lambda: _locust_cpu(process),
            hub=hub,
            running=lambda: bool(process) and process[0].poll() is None,
        )


def _say(step: LiveStep, what: str) -> None:
    console.print(
        f"{what}: {step.throughput:7.1f} calls/s at the gateways "
        f"(machine {step.busy_cores:.2f} cores busy, Locust {step.client_cores:.2f}, "
        f"load average {step.load_average:.1f})",
        highlight=False,
    )


def live_step(
    descriptor: Path,
    results: Path,
    load: Load,
    step_seconds: int,
    operator: str,
    warm_up: int = WARM_UP,
    workers: int = 0,
) -> LiveStep:
    """Saturating users at ``load`` against ``operator``, measured there."""
    operators = {op: party for op, party in _operators(descriptor).items() if op == operator}
    step = _measured_run(
        descriptor,
        results / f"users-{load.users}-rate-{load.rate:g}",
        load.users,
        CLASSES,
        {
            "OGSIM_SATURATING_OPERATOR": operator,
            "OGSIM_SATURATING_USERS": str(load.users),
            "OGSIM_SATURATING_RATE": f"{max(load.rate, 0.0):.6g}",
        },
        step_seconds,
        operators,
        warm_up,
        workers,
        saturating=load.saturating,
    )
    _say(step, load.describe())
    return step


def federation_step(
    descriptor: Path, results: Path, users: int, step_seconds: int, warm_up: int
) -> LiveStep:
    """Locust's realistic users (CIBA, two-legged tokens, QoD, the aggregator's application)
    across every operator and the aggregator: the tiers the saturation ladder does not
    reach."""
    operators, hub_party = _operators(descriptor), _hub(descriptor)
    parties = {**operators, **({HUB: hub_party} if hub_party is not None else {})}
    idle = idle_cpu(parties, IDLE_SECONDS, time.sleep)
    step = _measured_run(
        descriptor,
        results / f"federation-{users}",
        users,
        FEDERATION_CLASSES,
        {},
        step_seconds,
        operators,
        warm_up,
        hub=hub_party,
    )
    step = replace(step, idle_cpu=idle)
    hub_rate = step.hub.call_count / step.seconds if step.hub is not None else 0.0
    _say(step, f"{users} realistic users ({hub_rate:.1f} calls/s through the aggregator)")
    return step


def live_ladder(
    descriptor: Path,
    results: Path,
    saturating_users: int,
    levels: tuple[float, ...],
    step_seconds: int,
    warm_up: int = WARM_UP,
    operator: str | None = None,
    saturating_workers: int = 0,
) -> list[LiveStep]:
    """The saturation step first (users back to back), then each level at its share of the
    throughput it reached: levels relative to what this machine sustains now.

    Every step calls one operator (``operator``, default the descriptor's first): its gateway
    is one event loop, so back-to-back users saturate it, where spread over three operators
    the one Locust process (about two thirds of a gateway's CPU per call) would saturate
    first. ``saturating_workers`` Locust worker processes (0: one local process) run the
    saturation step: one Locust process spends about the CPU per call a gateway does, so
    with the cores shared it can stop short of the gateway's limit."""
    operator = operator or next(iter(_operators(descriptor)))
    saturation = live_step(
        descriptor,
        results,
        Load(saturating_users, 0.0),
        step_seconds,
        operator,
        warm_up,
        saturating_workers,
    )
    steps = [saturation]
    peak = saturation.throughput
    for share in levels:
        if peak <= 0:
            break
        load = Load(LEVEL_USERS, share * peak / LEVEL_USERS)
        # one Locust process falls short of a high level's rate: the saturation step's workers
        workers = saturating_workers if share * peak > ONE_LOCUST_RATE else 0
        steps.append(live_step(descriptor, results, load, step_seconds, operator, warm_up, workers))
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


def render_tiers(calibration: Calibration) -> Table:
    """The federation step, tier by tier: simulated spans and fitted distributions."""
    table = Table(title="ogsim calibrate: each tier of the federation step")
    for name in ["tier", "model", "calls", "live p50", "model p50", "err"]:
        table.add_column(name, justify="right")
    for name in ["live p95", "model p95", "err"]:
        table.add_column(name, justify="right")
    for row in calibration.by_tier:
        errors = row.errors
        table.add_row(
            row.tier,
            row.basis,
            f"{row.calls:.0f}",
            _number(row.live_p50_ms),
            _number(row.model_p50_ms),
            _number(errors["p50"], True),
            _number(row.live_p95_ms),
            _number(row.model_p95_ms),
            _number(errors["p95"], True),
        )
    return table


def render_what_if(calibration: Calibration) -> Table:
    """The calibrated federation's answers, a variant a line."""
    table = Table(title="what the calibrated federation would do (simulated)")
    for name in ["variant", "offered /s", "served /s", "served", "p50 ms", "p95 ms"]:
        table.add_column(name, justify="right")
    for name in ["replicas (max)", "replica-hours", "failed (commonest)"]:
        table.add_column(name, justify="right")
    for row in calibration.what_if:
        table.add_row(
            row.variant,
            _number(row.offered_per_second),
            _number(row.goodput_per_second),
            f"{row.goodput_ratio:.1%}" if math.isfinite(row.goodput_ratio) else "-",
            _number(row.p50_ms),
            _number(row.p95_ms),
            f"{row.replicas_max:.0f}" if math.isfinite(row.replicas_max) else "-",
            f"{row.replica_hours:.3f}",
            row.failure_shares(),
        )
    return table


Measured = tuple[dict[str, LiveBackends], list[LiveStep], LiveStep | None]
"""What live gave: each operator's backends, the ladder's steps, the federation step."""


def _measure_live(
    descriptor: Path | None,
    users: int,
    levels: tuple[float, ...],
    seconds: int,
    *,
    saturating_workers: int,
    federation_users: int | None,
    federation_seconds: int,
) -> Measured:
    """The ladder (and, given ``federation_users``, the federation step) against the
    federation ``descriptor`` describes, or one started for the run and stopped after it."""
    with tempfile.TemporaryDirectory(prefix="ogsim-calibrate-") as scratch:
        results = Path(scratch)
        with federation_for_run(descriptor, results, None, console.print) as described:
            try:
                backends = live_backends(load_descriptor(described).run_dir)
            except ConfigFileError as error:  # the run folder's federation file is broken
                console.print(str(error), style="red", markup=False, soft_wrap=True)
                raise typer.Exit(2) from error
            steps = live_ladder(
                described, results, users, levels, seconds,
                saturating_workers=saturating_workers,
            )
            realistic = None
            if federation_users is not None:
                realistic = federation_step(
                    described, results, federation_users, federation_seconds,
                    FEDERATION_WARM_UP,
                )
    return backends, steps, realistic


def _check_descriptor(descriptor: Path | None) -> None:
    """Exit 2 naming ``--descriptor`` unless it is one ``ogsim up`` wrote: checked before
    the out folder is made (a missing or broken file used to end in a traceback)."""
    if descriptor is None:
        return
    try:
        load_descriptor(descriptor)
    except DescriptorError as error:
        console.print(f"--descriptor: {error}", style="red", markup=False, highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2) from error


def _unreachable(descriptor: Path | None, error: httpx.HTTPError) -> NoReturn:
    """Exit saying the federation cannot be measured (no answer, or not ogsim's metrics): 2
    naming ``--descriptor`` when it is the one given (its parties are down, or it describes
    something else), 1 when it is the one started here (a party that stopped)."""
    if descriptor is not None:
        console.print(f"--descriptor: cannot measure the federation in {descriptor} ({error}):"
                      " is it up? `ogsim up` starts one", style="red", markup=False,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(2) from error
    console.print(f"cannot measure the federation started for the calibration ({error})",
                  style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1) from error


def calibrate_command(
    descriptor: Annotated[
        Path | None,
        typer.Option(help="descriptor of a federation already up (default: start one)"),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="saturation and one short level (about a minute in all)")
    ] = False,
    out: Annotated[Path, typer.Option(help="folder for the scenario, table and plot")] = Path(
        "calibration"
    ),
    level: Annotated[
        list[float] | None,
        typer.Option(min=0.01, max=0.99, help="a load level as a share of saturation (repeatable)"),
    ] = None,
    users: Annotated[
        int, typer.Option(min=1, help="users calling back to back in the saturation step")
    ] = SATURATING_USERS,
    step_seconds: Annotated[int | None, typer.Option(min=2, help="seconds per step")] = None,
    federation: Annotated[
        bool,
        typer.Option(
            help="also run realistic users across every party and fit each tier (grants,"
            " backends, the aggregator)"
        ),
    ] = True,
    federation_users: Annotated[
        int, typer.Option(min=1, help="realistic users in the federation step")
    ] = FEDERATION_USERS,
    federation_seconds: Annotated[
        int | None,
        typer.Option(min=2, help="seconds the federation step is measured (default 60; quick 15)"),
    ] = None,
    what_if: Annotated[
        bool,
        typer.Option(
            help="then run the calibrated federation at more traffic and with a site lost"
        ),
    ] = True,
    what_if_scale: Annotated[
        float | None,
        typer.Option(
            min=1.0, help="traffic multiple the what-if asks about (default 100; 10 quick)"
        ),
    ] = None,
    what_if_seconds: Annotated[
        float | None,
        typer.Option(
            min=60.0,
            help="simulated seconds of each what-if run (default 240; 90 quick; at least 60:"
            " a new replica needs an autoscaler sync and its start-up before it serves)",
        ),
    ] = None,
) -> None:
    """Measure the live federation at saturation and at shares of it, fit the simulation,
    compare."""
    levels = tuple(sorted(level)) if level else (QUICK_LEVELS if quick else LEVELS)
    seconds = step_seconds or (5 if quick else 25)
    refuse_unwritable(out, "--out", console)
    _check_descriptor(descriptor)
    probe_out(out, "--out", console)  # made and written in now: the run lasts minutes
    try:
        backends, steps, realistic = _measure_live(
            descriptor,
            users,
            levels,
            seconds,
            saturating_workers=0 if quick else SATURATING_WORKERS,
            federation_users=federation_users if federation else None,
            federation_seconds=federation_seconds or (15 if quick else 60),
        )
    except httpx.HTTPError as error:
        _unreachable(descriptor, error)
    questions = None
    if what_if:
        questions = WhatIf(
            what_if_scale or (10.0 if quick else 100.0),
            what_if_seconds or (90.0 if quick else 240.0),
        )
    try:
        calibration = calibrate(
            steps,
            out,
            sim_seconds=10.0 if quick else 60.0,
            what_if=questions,
            progress=lambda line: console.print(line, highlight=False),
            federation=realistic,
            backends=backends,
        )
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
    if calibration.by_tier:
        console.print(render_tiers(calibration))
    if calibration.what_if:
        console.print(render_what_if(calibration))
    console.print(f"written: {', '.join(str(p) for p in calibration.files)}", highlight=False)


app = typer.Typer()
app.command("calibrate", rich_help_panel=PANEL)(calibrate_command)
