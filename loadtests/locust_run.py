"""One headless Locust run against a live federation, and what it left behind.

``ogsim loadtest`` and the capacity benchmark both drive Locust through here: the federation
(one given by its descriptor, or one started for the run, each party its own process), the
Locust processes (local, or a master and workers on loopback), the summary the locustfile
writes, the thresholds a run may break and the reconciliation of its exact counts. Nothing
here prints or parses command-line options; callers decide what to show.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from federation import (
    NO_AGGREGATOR,
    FederationConfig,
    FederationProcesses,
    PartyStartError,
    default_federation,
    descriptor,
    free_port_block,
)

from .federation_view import load_descriptor
from .reconciliation import Reconciliation, reconcile

__all__ = [
    "LOCUSTFILE",
    "RECONCILIATION",
    "RESULT_FILES",
    "SUMMARY",
    "LocustRun",
    "clear_results",
    "federation_for_run",
    "read_summary",
    "reconcile_run",
    "run_locust",
    "seconds",
    "thresholds",
]

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
"""The installed package's locustfile, wherever the command is started from."""
SUMMARY = "summary.json"
RECONCILIATION = "reconciliation.json"
RESULT_FILES = (
    SUMMARY,
    RECONCILIATION,
    "run.json",
    "report.html",
    "locust.log",
    "locust_*.csv",
    "locust-worker-*.log",
    "calls-*.json",
)
"""What a run writes in its results folder (names and patterns): all removed before the next
run there starts, so that a run that fails early cannot be read as the earlier one."""


def seconds(text: str) -> float:
    """Locust's time spans: ``90``, ``30s``, ``5m``, ``1h30m``; ValueError for anything else."""
    total, number = 0.0, ""
    for char in text.strip():
        if char in "0123456789.":  # isdigit() takes other scripts' digits, which Locust does not
            number += char
            continue
        factor = {"s": 1, "m": 60, "h": 3600}.get(char)
        if factor is None or not number:
            raise ValueError(f"{text!r} is not a time span like 30s, 5m or 1h30m")
        total += float(number) * factor
        number = ""
    return total + (float(number) if number else 0.0)


@contextmanager
def federation_for_run(
    given: Path | None,
    results: Path,
    base_port: int | None,
    say: Callable[[str], None] = lambda _: None,
    config: FederationConfig | None = None,
) -> Iterator[Path]:
    """The descriptor of a running federation: the given one, or one started for the run
    (``config``, by default the built-in three operators) in ``results/federation``, made
    afresh each time. Raises :class:`~federation.PartyStartError` or TimeoutError when the
    started one does not come up."""
    if given is not None:
        yield given
        return
    federation = config if config is not None else default_federation()
    if not federation.aggregators:  # refused before any party starts: the demo app needs one
        raise PartyStartError(NO_AGGREGATOR)
    port = base_port or free_port_block(8)
    run_dir = results / "federation"
    # Each run starts its own federation afresh: an earlier run's databases in the same
    # folder are sealed under that run's key-encryption key, and its counts are not this run's.
    if run_dir.exists():
        if not (run_dir / "federation.yaml").is_file():  # not one ogsim started: keep it
            raise PartyStartError(
                f"{run_dir} exists and is not a federation an earlier load test started "
                "(no federation.yaml in it): give another --out"
            )
        shutil.rmtree(run_dir)
    processes = FederationProcesses.prepare(federation, port, run_dir)
    try:
        processes.start()
        processes.wait_ready(90)
        application = processes.register_demo_application()
        path = results / "federation.json"
        path.write_text(json.dumps(descriptor(processes, application), indent=2))
        say(f"federation started on 127.0.0.1:{port}… (descriptor {path})")
        yield path
    finally:
        codes = processes.stop()
        say(f"federation stopped: {', '.join(f'{p} ({c})' for p, c in codes.items())}")


@dataclass
class LocustRun:
    """The Locust processes of one run and what they left in ``results``."""

    command: list[str]
    returncode: int
    workers: list[int] = field(default_factory=list)


def _locust_env(
    described: Path,
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
            "OGSIM_DESCRIPTOR": str(described.resolve()),
            "OGSIM_RESULTS": str(results.resolve()),
            "OGSIM_RUN_ID": run_id,
            "OGSIM_SEED": str(seed),
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
    locustfile: Path = LOCUSTFILE,
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
    extra_env: dict[str, str] | None = None,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> LocustRun:
    """One headless Locust run (local, or a master and ``workers`` workers on loopback).

    ``extra_env`` is added to the Locust processes' environment (the locustfile's switches);
    ``started`` is handed the master process once it runs, so a caller that has measured
    what it needed can end the run early (SIGTERM: Locust quits as at its run time's end),
    then each worker process as it starts (whose CPU is where the users' work is done).
    """
    if not 0 <= stop_timeout < math.inf:  # NaN fails both comparisons
        raise ValueError(f"stop_timeout must be a number of seconds >= 0, not {stop_timeout}")
    clear_results(results)
    run_id = run_id or secrets.token_hex(4)
    env = _locust_env(descriptor, results, run_id, seed, shape, fail_data_centre, shape_env or {})
    env.update(extra_env or {})
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
        if started is not None:
            started(master)
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
            if started is not None:
                started(children[-1])
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


def clear_results(results: Path) -> None:
    """Remove an earlier run's :data:`RESULT_FILES` from ``results`` (made if missing); other
    files there are left alone."""
    results.mkdir(parents=True, exist_ok=True)
    for pattern in RESULT_FILES:
        for stale in results.glob(pattern):
            if stale.is_file() or stale.is_symlink():
                stale.unlink()


def read_summary(results: Path) -> dict[str, Any]:
    """What the locustfile's master (or local runner) wrote at quitting; FileNotFoundError
    when it wrote none, ValueError when it is not the summary's JSON object."""
    path = results / SUMMARY
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: Locust did not finish (see locust.log)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("served"), dict):
        raise ValueError(f"{path} is not the summary the locustfile writes")
    checked: dict[str, Any] = data
    return checked


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


def reconcile_run(described: Path, results: Path, admin_secret: str) -> Reconciliation:
    """Reconcile a run's counts with the federation's, and keep the report beside the run.

    Raises :class:`~loadtests.federation_view.DescriptorError` or FileNotFoundError for a
    bad descriptor or run folder, :class:`~loadtests.reconciliation.RunFileError` (a
    ValueError) for a damaged run file, :class:`httpx.TransportError` when the federation is
    down.
    """
    view = load_descriptor(described)
    with httpx.Client(timeout=15.0) as http:
        report = reconcile(view, results, http, admin_secret=admin_secret)
    (results / RECONCILIATION).write_text(json.dumps(report.as_json(), indent=1))
    return report
