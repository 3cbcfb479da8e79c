"""``ogsim loadtest`` and ``ogsim reconcile``: headless Locust against the live federation.

``loadtest`` starts the federation itself (each party its own process, as ``ogsim up``) or
uses one already up (``--descriptor``), runs ``loadtests/locustfile.py`` headless — in one
process, or as a Locust master with ``--workers N`` worker processes on loopback — writes
Locust's CSV and HTML reports to ``--results``, prints a summary, reconciles the exact call
counts with metering and settlement, and exits non-zero when a threshold given on the
command line (``--max-failure-ratio``, ``--max-p95``) is broken or the counts differ.
Flags that Locust has keep Locust's names (``--users``, ``--spawn-rate``, ``--run-time``,
``--stop-timeout``).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from federation.launcher import free_port_block

console = Console()
REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
SUMMARY = "summary.json"
RECONCILIATION = "reconciliation.json"


def _loadtests() -> None:
    """Make the repository's ``loadtests`` folder importable (it is not an installed package)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def seconds(text: str) -> float:
    """Locust's time spans: ``90``, ``30s``, ``5m``, ``1h30m``."""
    total, number = 0.0, ""
    for char in text.strip():
        if char.isdigit() or char == ".":
            number += char
            continue
        factor = {"s": 1, "m": 60, "h": 3600}.get(char)
        if factor is None or not number:
            raise typer.BadParameter(f"{text!r} is not a time span like 30s, 5m or 1h30m")
        total += float(number) * factor
        number = ""
    return total + (float(number) if number else 0.0)


@contextmanager
def federation(descriptor: Path | None, results: Path, base_port: int | None) -> Iterator[Path]:
    """The descriptor of a running federation: the given one, or one started for the run."""
    if descriptor is not None:
        yield descriptor
        return
    from federation.config import default_federation
    from federation.launcher import FederationProcesses
    from federation.launcher import descriptor as describe

    port = base_port or free_port_block(8)
    processes = FederationProcesses.prepare(default_federation(), port, results / "federation")
    try:
        processes.start()
        processes.wait_ready(90)
        application = processes.register_demo_application()
        path = results / "federation.json"
        path.write_text(json.dumps(describe(processes, application), indent=2))
        console.print(f"federation started on 127.0.0.1:{port}… (descriptor {path})")
        yield path
    finally:
        codes = processes.stop()
        console.print(f"federation stopped: {', '.join(f'{p} ({c})' for p, c in codes.items())}")


@dataclass
class LocustRun:
    """The Locust processes of one run and what they left in ``results``."""

    command: list[str]
    returncode: int
    workers: list[int] = field(default_factory=list)


def _locust_env(
    descriptor: Path,
    results: Path,
    run_id: str,
    seed: int,
    shape: str | None,
    fail_data_centre: str | None,
    shape_env: dict[str, str],
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OGSIM_DESCRIPTOR": str(descriptor.resolve()),
            "OGSIM_RESULTS": str(results.resolve()),
            "OGSIM_RUN_ID": run_id,
            "OGSIM_SEED": str(seed),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    env.pop("OGSIM_SHAPE", None)
    if shape:
        env["OGSIM_SHAPE"] = shape
        env.update(shape_env)
    if fail_data_centre:
        env["OGSIM_FAIL_DATA_CENTRE"] = fail_data_centre
    return env


def run_locust(
    *,
    locustfile: Path,
    descriptor: Path,
    results: Path,
    users: int,
    spawn_rate: float,
    run_time: str,
    shape: str | None = None,
    shape_env: dict[str, str] | None = None,
    workers: int = 0,
    stop_timeout: float = 20.0,
    seed: int = 2024,
    fail_data_centre: str | None = None,
    user_classes: list[str] | None = None,
    run_id: str | None = None,
) -> LocustRun:
    """One headless Locust run (local, or a master and ``workers`` workers on loopback)."""
    results.mkdir(parents=True, exist_ok=True)
    for stale in [*results.glob("calls-*.json"), results / "run.json"]:
        stale.unlink(missing_ok=True)
    run_id = run_id or secrets.token_hex(4)
    env = _locust_env(descriptor, results, run_id, seed, shape, fail_data_centre, shape_env or {})
    base = [sys.executable, "-m", "locust", "-f", str(locustfile)]
    command = [
        *base,
        "--headless",
        "--run-time",
        run_time,
        "--stop-timeout",
        f"{round(stop_timeout)}s",
        "--csv",
        str(results / "locust"),
        "--csv-full-history",
        "--html",
        str(results / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    if not shape:
        command += ["--users", str(users), "--spawn-rate", str(spawn_rate)]
    master_port = 0
    if workers:
        master_port = free_port_block(2)
        command += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(workers),
        ]
    command += list(user_classes or [])
    log = (results / "locust.log").open("wb")
    master = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    children: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(workers):
            worker_log = (results / f"locust-worker-{index}.log").open("wb")
            children.append(
                subprocess.Popen(
                    [
                        *base,
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(master_port),
                        "--loglevel",
                        "WARNING",
                    ],
                    env=env,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            )
        limit = seconds(run_time) + stop_timeout + 120
        code = master.wait(timeout=limit)
        for child in children:
            try:
                child.wait(timeout=stop_timeout + 30)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=10)
    finally:
        for process in [master, *children]:
            if process.poll() is None:
                process.kill()
                process.wait()
    return LocustRun(command, code, [c.returncode for c in children])


# -- summary and thresholds -------------------------------------------------------------------


def read_summary(results: Path) -> dict[str, Any]:
    """What the locustfile's master (or local runner) wrote at quitting."""
    path = results / SUMMARY
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: Locust did not finish (see locust.log)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def print_summary(results: Path, summary: dict[str, Any]) -> None:
    table = Table(title="Locust (per request type and name)")
    for column in ("type", "name", "requests", "failures", "p50 ms", "p95 ms", "req/s"):
        table.add_column(column, justify="left" if column in ("type", "name") else "right")
    with (results / "locust_stats.csv").open() as handle:
        for row in csv.DictReader(handle):
            table.add_row(
                row["Type"],
                row["Name"],
                row["Request Count"],
                row["Failure Count"],
                row["50%"],
                row["95%"],
                f"{float(row['Requests/s']):.1f}",
            )
    console.print(table)
    served = summary["served"]
    console.print(
        f"served calls: {served['requests']} ({served['rps']:.1f}/s), real failures "
        f"{served['failures']} ({served['failureRatio']:.2%}), p95 {served['p95']:.0f} ms; "
        f"throttled (429) {summary['throttled']}, protective 503 {summary['protective']}"
    )


def thresholds(
    summary: dict[str, Any], max_failure_ratio: float | None, max_p95: float | None
) -> list[str]:
    """The thresholds a run broke, in words (empty when it passed)."""
    served = summary["served"]
    broken = []
    if max_failure_ratio is not None and served["failureRatio"] > max_failure_ratio:
        broken.append(f"failure ratio {served['failureRatio']:.2%} > {max_failure_ratio:.2%}")
    if max_p95 is not None and served["p95"] > max_p95:
        broken.append(f"p95 {served['p95']:.0f} ms > {max_p95:.0f} ms")
    return broken


def run_reconciliation(descriptor: Path, results: Path, admin_secret: str) -> bool:
    _loadtests()
    from loadtests.federation_view import DescriptorError, load_descriptor
    from loadtests.reconciliation import reconcile as compare
    from loadtests.reconciliation import render

    try:
        described = load_descriptor(descriptor)
        with httpx.Client(timeout=15.0) as http:
            report = compare(described, results, http, admin_secret=admin_secret)
    except (DescriptorError, FileNotFoundError) as error:
        console.print(f"[red]{error}[/red]", soft_wrap=True)
        raise typer.Exit(2) from error
    except httpx.TransportError as error:
        console.print(f"[red]the federation in {descriptor} does not answer: {error}[/red]")
        raise typer.Exit(2) from error
    (results / RECONCILIATION).write_text(json.dumps(report.as_json(), indent=1))
    print(render(report))
    return report.matches


# -- the commands -----------------------------------------------------------------------------


def loadtest(
    descriptor: Annotated[
        Path | None,
        typer.Option(help="descriptor of a federation already up (default: start one)"),
    ] = None,
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="peak users")] = 10,
    spawn_rate: Annotated[
        float, typer.Option("--spawn-rate", "-r", min=0.1, help="users started per second")
    ] = 5.0,
    run_time: Annotated[str, typer.Option("--run-time", "-t", help="e.g. 30s, 5m")] = "30s",
    shape: Annotated[
        str | None,
        typer.Option(help="load shape instead of --users: step, spike or soak (OGSIM_SHAPE_*)"),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, help="distributed: a Locust master and this many workers")
    ] = 0,
    results: Annotated[
        Path, typer.Option(help="folder for Locust's CSV/HTML reports and the counters")
    ] = Path("ogsim-loadtest"),
    max_failure_ratio: Annotated[
        float | None, typer.Option(help="fail when real failures exceed this share (0.01)")
    ] = None,
    max_p95: Annotated[
        float | None, typer.Option(help="fail when the p95 of served calls exceeds this (ms)")
    ] = None,
    fail_data_centre: Annotated[
        str | None,
        typer.Option(help="OPERATOR/DC@SECONDS: take a data centre down mid-run"),
    ] = None,
    stop_timeout: Annotated[
        float, typer.Option(help="seconds users get to finish their task at the end")
    ] = 20.0,
    seed: Annotated[int, typer.Option(help="seed of the Faker subscriber choices")] = 2024,
    user_class: Annotated[
        list[str] | None, typer.Option(help="run only these user classes (repeatable)")
    ] = None,
    reconcile_counts: Annotated[
        bool, typer.Option("--reconcile/--no-reconcile", help="compare counts afterwards")
    ] = True,
    base_port: Annotated[
        int | None, typer.Option(help="first port of a federation started here")
    ] = None,
    admin_secret: Annotated[str, typer.Option(help="admin credential of the parties")] = (
        "admin-secret"
    ),
    locustfile: Annotated[Path, typer.Option(help="the Locust file")] = LOCUSTFILE,
) -> None:
    """Run Locust headless against the live federation; reports, thresholds, reconciliation."""
    results.mkdir(parents=True, exist_ok=True)
    with federation(descriptor, results, base_port) as described:
        run = run_locust(
            locustfile=locustfile,
            descriptor=described,
            results=results,
            users=users,
            spawn_rate=spawn_rate,
            run_time=run_time,
            shape=shape,
            workers=workers,
            stop_timeout=stop_timeout,
            seed=seed,
            fail_data_centre=fail_data_centre,
            user_classes=user_class,
        )
        try:
            summary = read_summary(results)
        except FileNotFoundError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from error
        print_summary(results, summary)
        matches = True
        if reconcile_counts:
            matches = run_reconciliation(described, results, admin_secret)
    console.print(f"reports: {results / 'report.html'}, {results / 'locust_stats.csv'}")
    broken = thresholds(summary, max_failure_ratio, max_p95)
    for reason in broken:
        console.print(f"[red]threshold broken: {reason}[/red]")
    if not matches:
        console.print("[red]reconciliation: counts differ[/red]")
    if broken or not matches:
        raise typer.Exit(1)
    if run.returncode not in (0, 1):
        raise typer.Exit(2)


def reconcile(
    descriptor: Annotated[
        Path, typer.Option(help="descriptor of the federation the run used")
    ] = Path("ogsim-federation.json"),
    results: Annotated[
        Path, typer.Option(help="the run's folder (run.json and calls-*.json)")
    ] = Path("ogsim-loadtest"),
    admin_secret: Annotated[str, typer.Option(help="admin credential of the parties")] = (
        "admin-secret"
    ),
) -> None:
    """Compare a Locust run's exact counts with metering and settlement; exit 1 if they differ."""
    if not run_reconciliation(descriptor, results, admin_secret):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(loadtest)
