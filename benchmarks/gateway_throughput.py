"""Gateway throughput: the full policy chain against a bare FastAPI endpoint, same run, same core.

Two servers are measured one after the other, each one uvicorn worker (uvloop + httptools, as
``uvicorn[standard]`` installs them) pinned to the server CPU and listening on 127.0.0.1 only:

* **full**: the whole operator app (``create_operator_app``): threat protection → bearer JWT
  (verified-token cache) → authorization (token, consent and opt-out read from SQLite on every
  call) → throttling (an unlimited plan, so nothing is refused) → CAMARA router → integrator →
  live network core at zero service time → metering (one SQLite insert per call). The operator
  stores its state in a temporary SQLite file (WAL) or in memory (``--storage memory``); the
  client is registered through the admin API, subscribed to the plan, and holds a three-legged
  CIBA token for test number +34600000001 (``sim-swap:check dpv:FraudPreventionAndDetection``).
* **bare**: one FastAPI endpoint of the same shape (``POST /sim-swap/v2/check``, JSON body
  validated by a pydantic model, JSON answer ``{"swapped": false}``), nothing else.

The load generator is wrk pinned to the other CPU (``taskset -c 1 wrk -t1 -c32 ... --latency``)
with ``benchmarks/post.lua``, which checks every answer (status 200 and the exact body). The
script prints both throughputs, p50/p99 latency and the ratio full/bare, and checks that the
operator metered exactly one usage event per answered call (``GET /admin/usage`` before and
after). It also prints what explains the tail: the garbage collector's pauses in the server
(``gc.callbacks``, per generation) and the metering group commits' cost on the event loop,
both over the measured run only, with the commits that took 2 ms or more (SQLite checkpointing
the WAL inside a commit; ``--checkpoints commit`` leaves the checkpoints there, as SQLite does
by itself, instead of in the operator's checkpoint thread). A run with a non-200 answer, a
wrong body, a socket error or a metering mismatch is reported INVALID (exit status 1). Missing
prerequisites exit with status 2; nothing is installed.

Run from the repository root::

    .venv/bin/python benchmarks/gateway_throughput.py [--duration 15] [--connections 32]
        [--warmup 5] [--storage file|memory] [--checkpoints thread|commit]
        [--server-cpu 0] [--client-cpu 1] [--rounds 1]

The ratio of one run moves by about ±0.07 from one run to the next on a shared machine, more
than the margin to the goal. ``--rounds N`` measures N rounds of both servers, alternating which
goes first (full then bare, bare then full, ...) so a drift of the machine's speed weighs on
both alike; it prints every round's ratio, and the median decides. The first round is reported
in full (with granian), the others by their ratio.

Every process it starts runs in its own session and is stopped at the end, on an error and on
Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "post.lua"
HOST = "127.0.0.1"  # loopback only: the servers bind it and all traffic goes to it
PATH = "/sim-swap/v2/check"
REQUEST_BODY = '{"maxAge": 24}'
EXPECTED = {"swapped": False}
MSISDN = "+34600000001"
SCOPE = "sim-swap:check dpv:FraudPreventionAndDetection"
CLIENT_ID = "bench-app"
ADMIN = {"Authorization": "Bearer admin-secret"}
PLAN = "bench-unlimited"
GOAL = 0.6


# -- prerequisites --------------------------------------------------------------------------


def check_prerequisites(args: argparse.Namespace) -> list[str]:
    """Every reason the benchmark cannot run here, each with what to do about it."""
    problems: list[str] = []
    if not hasattr(os, "sched_setaffinity"):
        problems.append("CPU pinning needs Linux (os.sched_setaffinity).")
    else:
        allowed = os.sched_getaffinity(0)
        for name, cpu in (("--server-cpu", args.server_cpu), ("--client-cpu", args.client_cpu)):
            if cpu not in allowed:
                problems.append(
                    f"{name} {cpu} is not among the CPUs allowed here {sorted(allowed)}."
                )
        if args.server_cpu == args.client_cpu:
            problems.append("--server-cpu and --client-cpu must differ (two cores are needed).")
    if shutil.which("wrk") is None:
        problems.append(
            "wrk is not installed: on Debian/Ubuntu `sudo apt-get update && sudo apt-get "
            "install -y wrk` (https://github.com/wg/wrk)."
        )
    if shutil.which("taskset") is None:
        problems.append("taskset is missing (Debian package util-linux).")
    for module, why in (
        ("uvicorn", "the ASGI server"),
        ("uvloop", "uvicorn's fast event loop"),
        ("httptools", "uvicorn's fast HTTP parser"),
        ("fastapi", "the bare endpoint"),
        ("httpx", "the setup client"),
    ):
        if importlib.util.find_spec(module) is None:
            problems.append(
                f"Python module {module} ({why}) is missing: "
                f"`{sys.executable} -m pip install 'uvicorn[standard]' fastapi httpx` "
                "(or `pip install -e .` in the repository)."
            )
    if importlib.util.find_spec("operators") is None:
        problems.append(f"the ogsim package is not importable; run from {ROOT} with its venv.")
    if not LUA.is_file():
        problems.append(f"the wrk script {LUA} is missing.")
    return problems


# -- the two servers (run in a child process: ``--serve full|bare``) -------------------------


def full_app(port: int, storage: str, checkpoints: str = "thread") -> Any:
    """The operator app, backend at zero service time, an unlimited plan, CIBA without wait;
    ``checkpoints="commit"`` leaves the WAL checkpoints to the commits, as SQLite does."""
    from operators.config import Plan, TokenLifetimes, example_operator
    from operators.core import CoreSpec
    from operators.core.description import ConstantServiceTime
    from operators.operator import Operator, create_operator_app

    base = example_operator(storage=storage)
    config = base.model_copy(
        update={
            "issuer": f"http://{HOST}:{port}/oauth",
            "lifetimes": TokenLifetimes(ciba_interval=0),
            # enterprise-like (a price per call, a monthly fee) but limits no load can reach
            "plans": (
                *base.plans,
                Plan(
                    name=PLAN,
                    rate_per_second=1e9,
                    burst=10**9,
                    price_per_call=0.004,
                    monthly_fee=2000.0,
                ),
            ),
        }
    )
    zero = ConstantServiceTime(value=0.0)
    spec = CoreSpec()
    core = CoreSpec(
        **{
            slot: function.model_copy(
                update={"service_time": zero, "servers": 4096, "queue_limit": None}
            )
            for slot, function in spec.functions().items()
        }
    )
    operator = Operator.from_config(config, core=core)
    operator.checkpoints.enabled = checkpoints == "thread"
    app = create_operator_app(operator)
    app.state.bench_operator = operator  # for the commit timing the server reports
    return app


class BareCheckSimSwap(BaseModel):
    """The request model of the bare endpoint: SIM Swap's check body, validated the same way."""

    phoneNumber: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{4,14}$")  # noqa: N815
    maxAge: int = Field(default=240, ge=1, le=2400)  # noqa: N815


def bare_app() -> Any:
    """The same shape with nothing behind it: pydantic body in, JSON out."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post(PATH)
    async def check(body: BareCheckSimSwap) -> dict[str, bool]:
        return {"swapped": False}

    return app


class PauseRecorder:
    """Every garbage collection's pause (wall seconds) by generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def reset(self) -> None:
        for pauses in self.pauses.values():
            pauses.clear()


def server_stats(recorder: PauseRecorder, app: Any, since: float) -> dict[str, Any]:
    """What the server saw since the last reset: GC pauses, group commits, wall seconds."""
    stats: dict[str, Any] = {
        "seconds": time.perf_counter() - since,
        "gc": {
            str(generation): {
                "count": len(pauses),
                "total": sum(pauses),
                "max": max(pauses, default=0.0),
            }
            for generation, pauses in recorder.pauses.items()
        },
    }
    operator = getattr(app.state, "bench_operator", None)
    if operator is not None:
        timing = operator.gateway.commits.timing
        stats["commits"] = {
            "batches": timing.batches,
            "events": timing.events,
            "seconds": timing.seconds,
            "slowest": timing.slowest,
            "long": timing.long,
        }
    return stats


def serve(
    kind: str, port: int, cpu: int, storage: str, ready_file: Path, checkpoints: str = "thread"
) -> None:
    """Child process: pin to ``cpu``, build the app, run one uvicorn worker, report readiness.

    SIGUSR1 starts the measured window (GC pauses and commit timing counted from there); at
    shutdown what was counted is written beside the ready file (``.stats``)."""
    os.sched_setaffinity(0, {cpu})
    if kind == "granian":
        serve_granian(port, storage, ready_file)
        return
    import uvicorn

    from operators.gateway.metering import CommitTiming

    app = full_app(port, storage, checkpoints) if kind == "full" else bare_app()
    recorder = PauseRecorder()
    window = {"since": time.perf_counter()}

    def start_window() -> None:
        recorder.reset()
        window["since"] = time.perf_counter()
        operator = getattr(app.state, "bench_operator", None)
        if operator is not None:
            operator.gateway.commits.timing = CommitTiming()

    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )

    class ReportingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            loop = asyncio.get_running_loop()
            protocol = self.config.http_protocol_class
            info = {
                "pid": os.getpid(),
                "loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
                "http": f"{protocol.__module__}.{protocol.__qualname__}",
                "cpus": sorted(os.sched_getaffinity(0)),
            }
            loop.add_signal_handler(signal.SIGUSR1, start_window)
            partial = ready_file.with_suffix(".partial")
            partial.write_text(json.dumps(info))
            partial.replace(ready_file)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stats = server_stats(recorder, app, window["since"])
            ready_file.with_suffix(".stats").write_text(json.dumps(stats))
            await super().shutdown(sockets=sockets)

    ReportingServer(config).run()


def serve_granian(port: int, storage: str, ready_file: Path) -> None:
    """Child process: the full chain under granian's embedded server (one worker, one Rust
    runtime thread, on uvloop), in this pinned process; ready once the port accepts."""
    import uvloop
    from granian import __version__ as granian_version
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    from operators.gateway.metering import CommitTiming

    app = full_app(port, storage)
    recorder = PauseRecorder()
    window = {"since": time.perf_counter()}
    server = Server(
        app, address=HOST, port=port, interface=Interfaces.ASGI, log_level=LogLevels.warning
    )

    def start_window() -> None:
        recorder.reset()
        window["since"] = time.perf_counter()
        app.state.bench_operator.gateway.commits.timing = CommitTiming()

    def stop() -> None:
        stats = server_stats(recorder, app, window["since"])
        ready_file.with_suffix(".stats").write_text(json.dumps(stats))
        server.stop()

    async def announce() -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        loop = asyncio.get_running_loop()
        info = {
            "pid": os.getpid(),
            "loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "http": f"granian {granian_version} (ASGI, embedded)",
            "cpus": sorted(os.sched_getaffinity(0)),
        }
        partial = ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(info))
        partial.replace(ready_file)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, start_window)
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, stop)
        announcing = asyncio.create_task(announce())
        await server.serve()
        announcing.cancel()

    uvloop.run(main())


# -- process bookkeeping --------------------------------------------------------------------


class Children:
    """Every process this script starts, each in its own session; all stopped on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cpu_busy_ticks(cpu: int) -> int:
    """Ticks CPU ``cpu`` spent busy (not idle, not waiting for I/O) since boot."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return user + nice + system + irq + softirq + steal
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def process_ticks(pid: int) -> int:
    """User plus system ticks of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- the orchestrator ---------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    requests_per_second: float
    answers: int
    requests: int
    p50_us: int
    p99_us: int
    not_200: int
    wrong_body: int
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    server: dict[str, Any]
    command: str
    metered: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # GC pauses, commits (server side)
    server_cpu_share: float = 0.0  # of the measured run's wall time, on the server CPU
    foreign_cpu_share: float = 0.0  # other processes on the server CPU, same denominator
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def start_server(
    children: Children, kind: str, args: argparse.Namespace, workdir: Path
) -> tuple[subprocess.Popen[Any], int, dict[str, Any], Path]:
    port = free_port()
    ready = workdir / f"{kind}.ready"
    log = workdir / f"{kind}.log"
    left = [ready, workdir / f"{kind}.stats"]  # by an earlier round's server: start afresh
    left += [workdir / f"{kind}.sqlite3{suffix}" for suffix in ("", "-wal", "-shm")]
    for earlier in left:
        earlier.unlink(missing_ok=True)
    storage = ":memory:" if args.storage == "memory" else str(workdir / f"{kind}.sqlite3")
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        kind,
        "--port",
        str(port),
        "--server-cpu",
        str(args.server_cpu),
        "--db",
        storage,
        "--ready-file",
        str(ready),
        "--checkpoints",
        args.checkpoints,
    ]
    with log.open("wb") as out:
        proc = children.spawn(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the {kind} server exited early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the {kind} server did not start in 60 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return proc, port, info, log


async def prepare_full(base: str) -> str:
    """Register the client, subscribe it to the unlimited plan, get a CIBA token; check once."""
    import httpx

    from federation.client import ApplicationClient, new_client_key

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        key = new_client_key()
        issuer = f"{base}/oauth"
        r = await http.post(
            f"{issuer}/admin/clients",
            headers=ADMIN,
            json={
                "client_id": CLIENT_ID,
                "client_name": "gateway throughput benchmark",
                "jwks": {"keys": [key.as_dict(private=False)]},
                "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
                "scope": "sim-swap:check",
                "purposes": ["dpv:FraudPreventionAndDetection"],
            },
        )
        if r.status_code >= 300:
            raise SystemExit(f"client registration failed: {r.status_code} {r.text[:300]}")
        r = await http.put(
            f"/admin/subscriptions/{CLIENT_ID}/sim-swap", headers=ADMIN, json={"plan": PLAN}
        )
        if r.status_code != 200:
            raise SystemExit(f"plan subscription failed: {r.status_code} {r.text[:300]}")
        client = await ApplicationClient.discover(CLIENT_ID, key, issuer, http)
        token = await client.ciba(f"tel:{MSISDN}", SCOPE)
        return str(token["access_token"])


def probe(base: str, token: str) -> bytes:
    """One call as wrk will make it: must be 200 with the expected JSON; returns the raw body."""
    import httpx

    r = httpx.post(
        base + PATH,
        content=REQUEST_BODY,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if r.status_code != 200 or r.json() != EXPECTED:
        raise SystemExit(f"probe of {base}{PATH} answered {r.status_code} {r.text[:300]}")
    return r.content


def metered_calls(base: str) -> int:
    import httpx

    r = httpx.get(base + "/admin/usage", headers=ADMIN, timeout=30)
    r.raise_for_status()
    return sum(
        int(row["calls"])
        for row in r.json()
        if row["clientId"] == CLIENT_ID and row["api"] == "sim-swap"
    )


_BENCH = re.compile(r"^BENCH (.*)$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def run_wrk(
    children: Children,
    args: argparse.Namespace,
    base: str,
    token: str,
    expect: bytes,
    duration: float,
) -> tuple[str, str]:
    command = [
        "taskset", "-c", str(args.client_cpu),
        "wrk", "-t1", f"-c{args.connections}", f"-d{duration:g}s",
        "--timeout", "10s", "-s", str(LUA), "--latency", base + PATH,
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_TOKEN": token,
        "BENCH_BODY": REQUEST_BODY,
        "BENCH_EXPECT": expect.decode(),
    }
    proc = children.spawn(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        output, _ = proc.communicate(timeout=duration + 60)
    finally:
        children.stop(proc)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{output}")
    return " ".join(command), output


def measure(children: Children, kind: str, args: argparse.Namespace, workdir: Path) -> Run:
    proc, port, info, log = start_server(children, kind, args, workdir)
    base = f"http://{HOST}:{port}"
    try:
        served_by_gateway = kind in ("full", "granian")
        token = asyncio.run(prepare_full(base)) if served_by_gateway else "unused-by-bare"
        expect = probe(base, token)
        if args.warmup > 0:
            run_wrk(children, args, base, token, expect, args.warmup)
            time.sleep(0.5)  # let calls in flight when wrk stopped finish (and be metered)
        before = metered_calls(base) if served_by_gateway else None
        hz = os.sysconf("SC_CLK_TCK")
        os.kill(proc.pid, signal.SIGUSR1)  # the server counts GC pauses and commits from here
        busy0, own0, wall0 = cpu_busy_ticks(args.server_cpu), process_ticks(proc.pid), time.time()
        command, output = run_wrk(children, args, base, token, expect, args.duration)
        busy1, own1, wall1 = cpu_busy_ticks(args.server_cpu), process_ticks(proc.pid), time.time()
        bench = _BENCH.search(output)
        rps = _RPS.search(output)
        if bench is None or rps is None:
            raise SystemExit(f"could not read wrk's output:\n{output}")
        values = {k: int(v) for k, v in (kv.split("=") for kv in bench.group(1).split())}
        non2xx = _NON2XX.search(output)
        run = Run(
            kind=kind,
            requests_per_second=float(rps.group(1)),
            answers=values["answers"],
            requests=values["requests"],
            p50_us=values["p50_us"],
            p99_us=values["p99_us"],
            not_200=values["not_200"],
            wrong_body=values["wrong_body"],
            non_2xx_3xx=int(non2xx.group(1)) if non2xx else 0,
            socket_errors={
                k: values[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
            },
            server=info,
            command=command,
        )
        run.server_cpu_share = (own1 - own0) / hz / (wall1 - wall0)
        run.foreign_cpu_share = max(0.0, (busy1 - busy0) - (own1 - own0)) / hz / (wall1 - wall0)
        if args.verbose:
            print(f"--- wrk output ({kind}) ---\n{output}")
        if before is not None:
            time.sleep(0.5)
            run.metered = metered_calls(base) - before
        _validate(run, args)
        return run
    finally:
        children.stop(proc)
        stats_file = workdir / f"{kind}.stats"
        if stats_file.exists() and "run" in locals():
            run.stats = json.loads(stats_file.read_text())
        tail = log.read_text().strip()
        if tail and args.verbose:
            print(f"--- {kind} server log ---\n{tail[-2000:]}")


def _validate(run: Run, args: argparse.Namespace) -> None:
    if not run.server["loop"].startswith("uvloop"):
        run.problems.append(f"event loop is {run.server['loop']}, not uvloop")
    if "httptools" not in run.server["http"] and run.kind != "granian":
        run.problems.append(f"HTTP protocol is {run.server['http']}, not httptools")
    if run.server["cpus"] != [args.server_cpu]:
        run.problems.append(f"server pinned to {run.server['cpus']}, not [{args.server_cpu}]")
    if run.not_200 or run.non_2xx_3xx:
        run.problems.append(f"{max(run.not_200, run.non_2xx_3xx)} answers were not 200")
    if run.wrong_body:
        run.problems.append(f"{run.wrong_body} answers had a wrong body")
    if any(run.socket_errors.values()):
        run.problems.append(f"socket errors {run.socket_errors}")
    if run.foreign_cpu_share > 0.05:
        run.warnings.append(
            f"other processes used {run.foreign_cpu_share:.0%} of CPU {args.server_cpu} during "
            "the run: the figures are disturbed (a quiet machine is needed for a fair ratio)"
        )
    if run.server_cpu_share < 0.85:
        run.warnings.append(
            f"the server used only {run.server_cpu_share:.0%} of its CPU: it was not saturated "
            "(too few connections, or the load generator is the bottleneck)"
        )
    if run.answers == 0:
        run.problems.append("no answers")
    if run.metered is not None:
        # wrk counts answers it read; calls in flight when it stopped (at most one per
        # connection) may have been served and metered without being counted
        extra = run.metered - run.answers
        if not 0 <= extra <= args.connections:
            run.problems.append(
                f"metered {run.metered} usage events for {run.answers} answered calls"
            )


def metering_note(run: Run, connections: int) -> str:
    if run.metered is None:
        return "n/a"
    extra = run.metered - run.answers
    if extra == 0:
        return f"{run.metered} events for {run.answers} answers: exact match"
    if 0 < extra <= connections:
        return (
            f"{run.metered} events for {run.answers} answers: match (+{extra} calls in flight "
            f"when wrk stopped, served and metered but not read; at most {connections})"
        )
    return f"{run.metered} events for {run.answers} answers: MISMATCH"


def tail_note(run: Run) -> str:
    """The server's GC pauses and group commits over the measured run (and the wind-down)."""
    from operators.gateway.metering import LONG_COMMIT

    stats = run.stats
    if not stats:
        return f"{run.kind} server: no pause statistics"
    seconds = stats["seconds"] or 1.0
    parts = []
    for generation, gc_stats in stats["gc"].items():
        parts.append(
            f"gen{generation} {gc_stats['count']}x {gc_stats['total'] * 1e3:.0f} ms "
            f"(max {gc_stats['max'] * 1e3:.1f} ms)"
        )
    note = f"{run.kind} server GC pauses: " + ", ".join(parts)
    note += f"; {sum(g['total'] for g in stats['gc'].values()) / seconds:.1%} of the time"
    commits = stats.get("commits")
    if commits and commits["batches"]:
        events = max(1, commits["events"])
        note += (
            f"\n{run.kind} server group commits: {commits['batches']} batches, "
            f"{events / commits['batches']:.1f} events each, "
            f"{commits['seconds'] * 1e6 / events:.0f} µs per event on the event loop "
            f"({commits['seconds'] / seconds:.1%} of the time), "
            f"slowest {commits['slowest'] * 1e3:.1f} ms, "
            f"{commits.get('long', 0)} of {LONG_COMMIT * 1e3:.0f} ms or more"
        )
    return note


_LABELS = {"full": "full chain", "bare": "bare FastAPI", "granian": "full, granian"}


def report(runs: dict[str, Run], args: argparse.Namespace, series: bool = False) -> bool:
    """The round in full; with ``series`` its ratio is one of several and gets no verdict."""
    full, bare = runs["full"], runs["bare"]
    every = list(runs.values())
    print()
    print(
        f"gateway throughput: POST {PATH}, wrk -t1 -c{args.connections} -d{args.duration:g}s "
        f"(warm-up {args.warmup:g}s), server on CPU {args.server_cpu}, wrk on CPU "
        f"{args.client_cpu}, storage {args.storage}"
        + (f", WAL checkpoints in the {args.checkpoints}" if args.storage == "file" else "")
    )
    print(f"{'':14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'answers':>10}  all 200")
    for run in every:
        ok = "yes" if not (run.not_200 or run.non_2xx_3xx or run.wrong_body) else "NO"
        print(
            f"{_LABELS[run.kind]:14}"
            f"{run.requests_per_second:>10.0f}{run.p50_us / 1000:>9.2f}{run.p99_us / 1000:>9.2f}"
            f"{run.answers:>10}  {ok}"
        )
    ratio = full.requests_per_second / bare.requests_per_second
    if series:
        print(f"ratio full/bare in round 1: {ratio:.3f} (the series below decides)")
    else:
        verdict = "met" if ratio >= GOAL else "not met"
        print(f"ratio full/bare: {ratio:.3f} (goal >= {GOAL}: {verdict})")
    if full.server_cpu_share > 0 and bare.server_cpu_share > 0:
        per_cpu = (full.requests_per_second / full.server_cpu_share) / (
            bare.requests_per_second / bare.server_cpu_share
        )
        print(
            f"ratio of requests per CPU-second the servers used: {per_cpu:.3f} (a rough "
            "correction when other processes shared the server CPU; the ratio above decides)"
        )
    print(
        f"full chain cost per call: "
        f"{1e6 / full.requests_per_second - 1e6 / bare.requests_per_second:.0f} µs over bare"
    )
    granian = runs.get("granian")
    if granian is not None:
        print(
            f"ratio full under granian/bare under uvicorn: "
            f"{granian.requests_per_second / bare.requests_per_second:.3f}"
        )
    elif args.granian:
        print("granian: not installed (`pip install granian`); its row is left out")
    for run in every:
        if run.metered is not None:
            print(f"metering ({run.kind}): {metering_note(run, args.connections)}")
    for run in every:
        print(tail_note(run))
    for run in every:
        s = run.server
        print(
            f"{run.kind} server: pid {s['pid']}, loop {s['loop']}, http {s['http']}, "
            f"cpus {s['cpus']}, CPU used {run.server_cpu_share:.0%} "
            f"(others on that CPU {run.foreign_cpu_share:.0%})"
        )
        print(f"  {run.command}")
    valid = all(run.valid for run in every)
    for run in every:
        for problem in run.problems:
            print(f"INVALID ({run.kind}): {problem}")
    for run in every:
        for warning in run.warnings:
            print(f"WARNING ({run.kind}): {warning}")
    print("run: " + ("VALID" if valid else "INVALID"))
    return valid


def report_series(rounds: list[dict[str, Run]]) -> bool:
    """Every round's ratio and the verdict of the valid rounds' median; True when every
    round was valid (an invalid round is shown but counts for nothing)."""
    ratios = [r["full"].requests_per_second / r["bare"].requests_per_second for r in rounds]
    valid_ratios = [
        ratio
        for ratio, one in zip(ratios, rounds, strict=True)
        if all(run.valid for run in one.values())
    ]
    print()
    print(f"series of {len(rounds)} rounds, alternating which server goes first:")
    for index, (one, ratio) in enumerate(zip(rounds, ratios, strict=True), start=1):
        first = "full" if index % 2 else "bare"
        invalid = "" if all(run.valid for run in one.values()) else " INVALID, not counted"
        print(
            f"  round {index} ({first} first): full {one['full'].requests_per_second:.0f}, "
            f"bare {one['bare'].requests_per_second:.0f} req/s, ratio {ratio:.3f}{invalid}"
        )
    if valid_ratios:
        median = statistics.median(valid_ratios)
        met = sum(ratio >= GOAL for ratio in valid_ratios)
        print(
            f"median ratio {median:.3f} over {len(valid_ratios)} valid rounds, range "
            f"{min(valid_ratios):.3f}-{max(valid_ratios):.3f}, {met} of them >= {GOAL} "
            f"(goal on the median: {'met' if median >= GOAL else 'not met'})"
        )
    else:
        print("no valid round: no verdict")
    valid = all(run.valid for one in rounds for run in one.values())
    for index, one in enumerate(rounds[1:], start=2):
        for run in one.values():
            for problem in run.problems:
                print(f"INVALID (round {index}, {run.kind}): {problem}")
            for warning in run.warnings:
                print(f"WARNING (round {index}, {run.kind}): {warning}")
    print("series: " + ("VALID" if valid else "INVALID"))
    return valid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds measured per server")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of unmeasured load first")
    parser.add_argument(
        "--storage",
        choices=("file", "memory"),
        default="file",
        help="operator database: a temporary SQLite file (WAL) or :memory:",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds of full and bare, alternating which goes first; the median ratio decides",
    )
    parser.add_argument(
        "--checkpoints",
        choices=("thread", "commit"),
        default="thread",
        help="WAL checkpoints of the full chain's database: in the operator's checkpoint thread"
        " (as it serves), or inside the commits that fill the log (SQLite's own way)",
    )
    parser.add_argument(
        "--server-cpu", type=int, default=0, help="CPU the server under test is pinned to"
    )
    parser.add_argument(
        "--client-cpu", type=int, default=1, help="CPU wrk (the load generator) is pinned to"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print wrk's and the servers' output"
    )
    parser.add_argument(
        "--no-granian",
        dest="granian",
        action="store_false",
        help="leave out the full chain under granian (measured third when granian is installed)",
    )
    # internal: the child process that serves one app
    parser.add_argument("--serve", choices=("full", "bare", "granian"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--duration must be > 0, --connections >= 1, --warmup >= 0, --rounds >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.server_cpu, args.db, args.ready_file, args.checkpoints)
        return 0
    problems = check_prerequisites(args)
    if problems:
        print("gateway_throughput: cannot run:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C must stop everything even when this script was started with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.sched_setaffinity(0, {args.client_cpu})  # keep this script off the server's core
    children = Children()
    try:
        with tempfile.TemporaryDirectory(prefix="ogsim-bench-") as tmp:
            granian = args.granian and importlib.util.find_spec("granian") is not None
            rounds: list[dict[str, Run]] = []
            for index in range(args.rounds):
                kinds = ["full", "bare"] if index % 2 == 0 else ["bare", "full"]
                if index == 0 and granian:
                    kinds.append("granian")
                runs: dict[str, Run] = {}
                for kind in kinds:
                    where = f"round {index + 1}/{args.rounds}: " if args.rounds > 1 else ""
                    print(f"{where}measuring {kind} ...", flush=True)
                    runs[kind] = measure(children, kind, args, Path(tmp))
                    children.stop_all()
                rounds.append(runs)
            valid = report(rounds[0], args, series=args.rounds > 1)
            if args.rounds > 1:
                valid = report_series(rounds) and valid
            return 0 if valid else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr)
        return 130
    finally:
        children.stop_all()


if __name__ == "__main__":
    sys.exit(main())
