"""Run a federation live: each party its own uvicorn process on a loopback port.

:func:`localize` rewrites a :class:`~federation.config.FederationConfig` so every issuer is
``http://127.0.0.1:PORT/oauth`` (operators from ``base_port`` up, then the aggregators) and
each country's Network Id service is hosted by the first aggregator. Every party process
gets that same file and builds only its own party (``python -m federation.launcher party
--config FILE --party ID --port N --run-dir DIR``); it reaches the others only over HTTP.
An operator process runs all its data-centre replicas over one SQLite file in ``run_dir``,
behind its load-balanced front (with ``ogsim up --autoscale``, a replica pool on the
operator's port runs several such processes and scales them: ``python -m federation.launcher
pool``, :mod:`federation.replica_pool`); start-up work that needs partners (registering them, the
aggregator's routing tables) runs in the background once the server listens, since parties
start in any order, and ``GET /federation/ready`` answers 200 when it is done.

:class:`FederationProcesses` starts and stops the set (``ogsim up``), and
:func:`descriptor` describes it for Locust, scripts and newcomers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from starlette.types import ASGIApp, Receive, Scope, Send

from operators import (
    TEST_NUMBERS,
    Housekeeping,
    NumberPlan,
    Retention,
    cancel_and_wait,
    serve_until_stopped,
)
from operators.handset_app import phone_link
from operators.identity import KeyEncryptionKeyError, KeySealing
from operators.policies import AutoscalerConfig
from operators.portal import close_developer_portal

from .aggregator import Aggregator, create_aggregator_app
from .client import new_client_key
from .config import FederationConfig, load_federation
from .federation import network_id_apps
from .global_load_balancer import HealthPolicy
from .member import MemberOperator
from .pool_peer import PoolPeer
from .portability import PortabilityDatabase
from .ports import listening_socket
from .replica_pool import ReplicaPool
from .transport import PerOriginPools, StatelessClient

READY_PATH = "/federation/ready"
HOST = "127.0.0.1"
DEMO_APPLICATION = "demo-app"
DEMO_SCOPE = (
    "sim-swap:check sim-swap:retrieve-date location-verification:verify "
    "device-reachability-status:read device-roaming-status:read"
)
DEMO_PURPOSES = ["dpv:FraudPreventionAndDetection", "dpv:ServiceProvision"]
DEMO_KEY_FILE = "demo-app.key"
"""The demo application's private key in the run directory, sealed like the signing keys."""
NO_AGGREGATOR = (
    "the federation config has no aggregators: a live federation needs at least one (the "
    "demo application registers there and calls go through it)"
)


class PartyStartError(RuntimeError):
    """A party of ``ogsim up`` could not start: its port taken, its process exited, or it
    reported a failed start-up."""


def localize(config: FederationConfig, base_port: int, host: str = HOST) -> FederationConfig:
    """The same federation on ``host``: operators on ``base_port``…, aggregators after them."""
    port = base_port
    operators = []
    for operator in config.operators:
        operators.append(operator.model_copy(update={"issuer": f"http://{host}:{port}/oauth"}))
        port += 1
    aggregators = []
    for aggregator in config.aggregators:
        aggregators.append(aggregator.model_copy(update={"issuer": f"http://{host}:{port}/oauth"}))
        port += 1
    countries = tuple(
        c.model_copy(
            update={"network_id_url": f"{aggregators[0].api_root}/countries/{c.code.lower()}"}
        )
        if c.portability and aggregators
        else c
        for c in config.countries
    )
    data = config.model_dump(mode="json")
    data["operators"] = [o.model_dump(mode="json") for o in operators]
    data["aggregators"] = [a.model_dump(mode="json") for a in aggregators]
    data["countries"] = [c.model_dump(mode="json") for c in countries]
    return FederationConfig.model_validate(data)


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def party_ports(config: FederationConfig) -> dict[str, int]:
    ports = {o.id: port_of(o.issuer_url) for o in config.operators}
    ports.update({a.id: port_of(a.issuer) for a in config.aggregators})
    return ports


class PartyApp:
    """One party's ASGI app with its start-up in the background and a readiness probe."""

    def __init__(
        self,
        app: ASGIApp,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        is_ready: Callable[[], bool],
    ) -> None:
        self.app = app
        self.start = start
        self.stop = stop
        self.is_ready = is_ready
        self.failure: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        try:
            await self.start()
        except Exception as error:  # reported by the readiness probe, not swallowed
            self.failure = f"{type(error).__name__}: {error}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._task = asyncio.get_running_loop().create_task(self._start())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    began = time.monotonic()
                    await cancel_and_wait(self._task)
                    await self.stop()
                    print(f"stopped in {time.monotonic() - began:.2f} s", file=sys.stderr)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http" and scope["path"] == READY_PATH:
            ready = self.is_ready()
            status = 200 if ready else 500 if self.failure else 503
            body = json.dumps({"ready": ready, "failure": self.failure}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def build_party(
    config: FederationConfig,
    party: str,
    run_dir: Path,
    http: httpx.AsyncClient,
    health: HealthPolicy | None = None,
) -> PartyApp:
    """The app of one party of a localized federation, its databases under ``run_dir``."""
    if any(o.id == party for o in config.operators):
        member = MemberOperator.build(
            config, party, http, storage=str(run_dir / f"{party}.sqlite3"), health=health
        )

        async def stop_member() -> None:
            await member.stop()
            await http.aclose()
            member.close()

        # behind ``--autoscale``'s pool, the client's address comes vouched for by the pool
        front = PoolPeer(member.front, config.operator(party).admin_secret)
        return PartyApp(front, member.start, stop_member, lambda: member.ready)
    aggregator = Aggregator(
        config.aggregator(party), config, http, storage=str(run_dir / f"{party}.sqlite3")
    )
    aggregator.identity.use_http(http)  # applications' jwks_uri, fetched over the party's client
    housekeeping = Housekeeping(
        aggregator.db,
        Retention.for_lifetimes(aggregator.identity.config.lifetimes),
        clock=aggregator.clock,
    )
    routers = {}
    if party == config.aggregators[0].id:
        services, _ = network_id_apps(config, PortabilityDatabase(config))
        from .network_id import build_network_id_router
        from .protection import open_access

        routers = {
            f"/countries/{code.lower()}": build_network_id_router(service, open_access)
            for code, service in services.items()
        }

    async def start_aggregator() -> None:
        housekeeping.start()
        await aggregator.start()

    app = create_aggregator_app(aggregator, extra_routers=routers)

    async def stop_aggregator() -> None:
        close_developer_portal(app)  # PartyApp answers the app's lifespan itself; first:
        await housekeeping.stop()  # a hash under way still writes to the database
        await http.aclose()
        aggregator.close()

    return PartyApp(app, start_aggregator, stop_aggregator, lambda: aggregator.ready)


def partner_urls(config: FederationConfig) -> list[str]:
    """Every URL parties of the federation call each other at (each gets its own pool)."""
    urls = [url for o in config.operators for url in (o.api_root, o.issuer_url)]
    urls += [url for a in config.aggregators for url in (a.api_root, a.issuer)]
    urls += [c.network_id_url for c in config.countries if c.network_id_url]
    return urls


def serve_party(
    config_path: Path, party: str, port: int, run_dir: Path, fd: int | None = None
) -> int:
    """Run one party under uvicorn until SIGINT/SIGTERM, then shut down cleanly (its
    housekeeping stopped, group commits flushed, database closed): exit status 0.

    Its database is a file, so its signing keys need ``OGSIM_KEY_ENCRYPTION_KEY`` (``ogsim
    up`` passes one per run): without it, or with the wrong one, it refuses (status 2).
    """
    config = load_federation(config_path)
    try:
        KeySealing.for_database(str(run_dir / f"{party}.sqlite3"), required=True)
        http = StatelessClient(timeout=10.0, transport=PerOriginPools(partner_urls(config)))
        app = build_party(
            config,
            party,
            run_dir,
            http,
            health=HealthPolicy(interval=1.0, failures_to_down=2, successes_to_up=2),
        )
    except KeyEncryptionKeyError as error:
        print(f"{party}: {error}", file=sys.stderr)
        return 2
    serve_until_stopped(app, HOST, port, fd)
    return 0


def replica_command(config_path: Path, party: str, run_dir: Path) -> Callable[[int], list[str]]:
    """The command line of one replica of ``party`` on a given port (what a pool starts)."""

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "federation.launcher",
            "party",
            "--config",
            str(config_path),
            "--party",
            party,
            "--port",
            str(port),
            "--run-dir",
            str(run_dir),
        ]

    return command


def serve_pool(
    config_path: Path,
    party: str,
    port: int,
    run_dir: Path,
    autoscaler: AutoscalerConfig,
    fd: int | None = None,
) -> int:
    """Run one operator as a :class:`ReplicaPool` of party processes on ``port``, scaled by
    ``autoscaler``, until SIGINT/SIGTERM; the replicas are stopped with it (exit status 0)."""
    config = load_federation(config_path)
    try:
        operator = config.operator(party)
    except KeyError:
        print(f"{party}: only an operator runs as a pool of replicas", file=sys.stderr)
        return 2
    pool = ReplicaPool(
        party,
        replica_command(config_path, party, run_dir),
        admin_secret=operator.admin_secret,
        autoscaler=autoscaler,
        log_dir=run_dir,
    )
    serve_until_stopped(pool, HOST, port, fd)
    return 0


# -- the set of processes (``ogsim up``) ------------------------------------------------------


@dataclass
class FederationProcesses:
    """The party processes of one localized federation, started and stopped together."""

    config: FederationConfig
    config_path: Path
    run_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    key_encryption_key: str = field(
        default_factory=lambda: os.environ.get(KeySealing.ENV) or KeySealing.generate(),
        repr=False,
    )
    """Seals the parties' signing keys at rest: ``OGSIM_KEY_ENCRYPTION_KEY`` when set, else
    one generated for this run (so a run directory is reopened only with a key given)."""
    autoscale: AutoscalerConfig | None = None
    """When set, each operator runs as a :class:`ReplicaPool` of processes scaled by it."""
    interrupt: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set (by a signal handler) to give up starting: the start-up loops then raise
    :class:`PartyStartError` at once instead of waiting for every party."""

    @classmethod
    def prepare(
        cls,
        config: FederationConfig,
        base_port: int,
        run_dir: Path,
        autoscale: AutoscalerConfig | None = None,
    ) -> FederationProcesses:
        run_dir.mkdir(parents=True, exist_ok=True)
        local = localize(config, base_port)
        path = run_dir / "federation.yaml"
        path.write_text(yaml.safe_dump(local.model_dump(mode="json"), sort_keys=False))
        return cls(local, path, run_dir, autoscale=autoscale)

    def start(self, timeout: float = 120.0) -> None:
        """Start every party. Pools start their replicas after importing themselves, which
        can outlast an aggregator's start-up deadline (it waits for the operators' discovery
        documents), so with ``autoscale`` the aggregators start once every pool serves."""
        operators = {o.id for o in self.config.operators}
        for party in party_ports(self.config):
            if self.autoscale is None or party in operators:
                self._check_interrupt()
                self.start_party(party)
        if self.autoscale is None:
            return
        self.wait_serving(sorted(operators), timeout)
        for aggregator in self.config.aggregators:
            self._check_interrupt()
            self.start_party(aggregator.id)

    def _check_interrupt(self) -> None:
        if self.interrupt.is_set():
            raise PartyStartError("start-up interrupted")

    def wait_serving(self, parties: Sequence[str], timeout: float) -> None:
        """Block until each party serves its discovery document (ready or not)."""
        deadline = time.monotonic() + timeout
        pending = list(parties)
        while pending:
            self._check_interrupt()
            party = pending[0]
            process = self.processes[party]
            if process.poll() is not None:
                raise PartyStartError(
                    f"{party} exited with {process.returncode}; "
                    f"see {self.run_dir / (party + '.log')}"
                )
            issuer = self.config.issuer_of(party)
            assert issuer is not None
            with contextlib.suppress(httpx.TransportError):
                url = issuer.rstrip("/") + "/.well-known/openid-configuration"
                if httpx.get(url, timeout=1.0).status_code == 200:
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"not serving after {timeout:.0f} s: {pending}")
            self.interrupt.wait(0.2)

    def start_party(self, party: str) -> None:
        """Start (or start again, after a crash) one party's process on its port.

        The port is bound here and the listening socket handed to the process (``--fd``):
        the process needs a second or two to import itself, and the port must not be taken
        meanwhile (raises :class:`PartyStartError` naming the port if it is taken already)."""
        port = party_ports(self.config)[party]
        env = {**os.environ, KeySealing.ENV: self.key_encryption_key}
        command = replica_command(self.config_path, party, self.run_dir)(port)
        if self.autoscale is not None and any(o.id == party for o in self.config.operators):
            settings = self.run_dir / "autoscaler.json"
            settings.write_text(self.autoscale.model_dump_json(indent=2))
            command[3] = "pool"
            command += ["--autoscaler", str(settings)]
        try:
            sock = listening_socket(port)
        except OSError as error:
            raise PartyStartError(
                f"{party} cannot listen on {HOST}:{port}: {error.strerror}"
            ) from None
        with sock, (self.run_dir / f"{party}.log").open("ab") as log:
            self.processes[party] = subprocess.Popen(
                [*command, "--fd", str(sock.fileno())],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=(sock.fileno(),),
            )

    def origins(self) -> dict[str, str]:
        return {party: f"http://{HOST}:{port}" for party, port in party_ports(self.config).items()}

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until every party answers ready; raises naming the ones that did not."""
        deadline = time.monotonic() + timeout
        pending = dict(self.origins())
        while pending:
            for party, origin in list(pending.items()):
                self._check_interrupt()
                process = self.processes.get(party)
                if process is not None and process.poll() is not None:
                    raise PartyStartError(
                        f"{party} exited with {process.returncode}; "
                        f"see {self.run_dir / (party + '.log')}"
                    )
                try:
                    response = httpx.get(origin + READY_PATH, timeout=1.0)
                except httpx.TransportError:
                    continue
                if response.status_code == 200:
                    del pending[party]
                elif response.status_code == 500:
                    raise PartyStartError(f"{party} failed to start: {response.json()['failure']}")
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {sorted(pending)}")
            if pending:
                self.interrupt.wait(0.2)

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every party, wait, then kill any that lingers; returns the exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for party, process in self.processes.items():
            try:
                codes[party] = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                codes[party] = process.wait()
        return codes

    def register_demo_application(self) -> dict[str, Any]:
        """Register the demo application at the aggregator; its credentials, private key too.

        A run directory reopened (``ogsim up --run-dir`` again) holds the application already:
        it is reused with the private key kept beside the databases (``demo-app.key``, sealed
        with the run's key-encryption key), so a rerun starts as the first run did."""
        if not self.config.aggregators:
            raise PartyStartError(NO_AGGREGATOR)
        self._check_interrupt()
        aggregator = self.config.aggregators[0]
        clients = f"{aggregator.issuer}/admin/clients"
        headers = {"Authorization": f"Bearer {aggregator.admin_secret}"}
        found = httpx.get(f"{clients}/{DEMO_APPLICATION}", headers=headers, timeout=5.0)
        if found.status_code == 200:
            key = self._kept_demo_key(found.json())
        elif found.status_code == 404:
            key = new_client_key()
            response = httpx.post(
                clients,
                headers=headers,
                json={
                    "client_id": DEMO_APPLICATION,
                    "client_name": "ogsim demo application",
                    "jwks": {"keys": [dict(key.as_dict(private=False))]},
                    "grant_types": ["client_credentials"],
                    "scope": DEMO_SCOPE,
                    "purposes": DEMO_PURPOSES,
                },
                timeout=5.0,
            )
            if response.status_code not in (200, 201):
                raise PartyStartError(f"registering the demo application: {response.text}")
            self._keep_demo_key(key)
        else:
            raise PartyStartError(
                f"reading the demo application at {clients}: {found.status_code} {found.text}"
            )
        return {
            "clientId": DEMO_APPLICATION,
            "authMethod": "private_key_jwt",
            "scope": DEMO_SCOPE,
            "purposes": DEMO_PURPOSES,
            "privateJwk": dict(key.as_dict(private=True)),
            "publicJwk": dict(key.as_dict(private=False)),
            "issuer": aggregator.issuer,
            "tokenEndpoint": f"{aggregator.issuer}/token",
        }


    def _keep_demo_key(self, key: ECKey) -> None:
        sealed = KeySealing.from_text(self.key_encryption_key).seal(
            DEMO_APPLICATION, json.dumps(dict(key.as_dict(private=True)))
        )
        path = self.run_dir / DEMO_KEY_FILE
        path.write_text(sealed)
        path.chmod(0o600)

    def _kept_demo_key(self, registered: dict[str, Any]) -> ECKey:
        """The kept private key of the registered demo application; PartyStartError saying
        why when the run directory does not hold the key the application is registered with."""
        path = self.run_dir / DEMO_KEY_FILE
        where = f"{DEMO_APPLICATION} is registered already in {self.run_dir} (an earlier run)"
        if not path.exists():
            raise PartyStartError(f"{where}, but its private key is not kept in {path}: "
                                  "use a new --run-dir")
        try:
            text = KeySealing.from_text(self.key_encryption_key).open(
                DEMO_APPLICATION, path.read_text()
            )
            key = ECKey.import_key(json.loads(text))
        except (KeyEncryptionKeyError, JoseError, ValueError) as error:
            raise PartyStartError(f"{where}; its kept private key {path}: {error}") from error
        public = registered.get("jwks", {}).get("keys", [])
        if key.thumbprint() not in {_thumbprint(jwk) for jwk in public}:
            raise PartyStartError(f"{where} with another key than the one kept in {path}: "
                                  "use a new --run-dir")
        if registered.get("disabled"):
            raise PartyStartError(f"{where} and disabled: use a new --run-dir")
        return key


def _thumbprint(jwk: dict[str, Any]) -> str | None:
    try:
        return str(ECKey.import_key(jwk).thumbprint())
    except (JoseError, TypeError, ValueError):
        return None


def descriptor(processes: FederationProcesses, application: dict[str, Any]) -> dict[str, Any]:
    """Everything a client needs to use the running federation at once."""
    config = processes.config
    operators = []
    for operator in config.operators:
        plan = NumberPlan(operator)
        operators.append(
            {
                "id": operator.id,
                "displayName": operator.display_name,
                "country": operator.country,
                "network": operator.network,
                "issuer": operator.issuer_url,
                "apiRoot": operator.api_root,
                "gateway": operator.api_root,
                "discovery": operator.auth_provider_configuration,
                "telcoRouting": operator.api_root + "/telco-routing/v1/routing",
                "dataCentres": [dc.name for dc in operator.data_centres],
                "dataCentreAdmin": operator.api_root + "/admin/data-centres",
                "developerPortal": operator.api_root + "/portal",
                "consentPortal": operator.api_root + "/my",
                "brands": [b.id for b in operator.brands],
                "testNumbers": {t.role: plan.test_number(t) for t in TEST_NUMBERS},
                "handsets": {  # the links that open the test numbers' simulated phones
                    t.role: phone_link(operator.api_root, operator.admin_secret,
                                       plan.test_number(t)) for t in TEST_NUMBERS},
                "pid": processes.processes[operator.id].pid
                if operator.id in processes.processes
                else None,
            }
        )
    aggregators = [
        {
            "id": a.id,
            "issuer": a.issuer,
            "apiRoot": a.api_root,
            "discovery": a.issuer.rstrip("/") + "/.well-known/openid-configuration",
            "tokenEndpoint": a.issuer.rstrip("/") + "/token",
            "telcoFinder": a.telco_finder_url,
            "settlement": a.api_root + "/admin/settlement",
            "developerPortal": a.api_root + "/portal",
            "pid": processes.processes[a.id].pid if a.id in processes.processes else None,
        }
        for a in config.aggregators
    ]
    return {
        "federation": config.name,
        "runDir": str(processes.run_dir),
        "operators": operators,
        "aggregators": aggregators,
        "aggregator": aggregators[0] if aggregators else None,
        "networkId": {c.code: c.network_id_url for c in config.countries if c.network_id_url},
        "portedNumbers": dict(config.ports),
        "application": application,
        "adminSecrets": "operators and aggregators use their config's admin_secret "
        "(Authorization: Bearer <secret>)",
    }


FD_HELP = "serve on this inherited listening socket (bound to --port) instead of binding"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m federation.launcher party --config FILE --party ID --port N --run-dir D``."""
    parser = argparse.ArgumentParser(prog="python -m federation.launcher")
    commands = parser.add_subparsers(dest="command", required=True)
    party = commands.add_parser("party", help="run one party of a localized federation")
    party.add_argument("--config", type=Path, required=True)
    party.add_argument("--party", required=True)
    party.add_argument("--port", type=int, required=True)
    party.add_argument("--run-dir", type=Path, default=Path.cwd())
    party.add_argument("--fd", type=int, help=FD_HELP)
    pool = commands.add_parser(
        "pool", help="run one operator as a pool of replica processes, autoscaled and healed"
    )
    pool.add_argument("--config", type=Path, required=True)
    pool.add_argument("--party", required=True)
    pool.add_argument("--port", type=int, required=True)
    pool.add_argument("--run-dir", type=Path, default=Path.cwd())
    pool.add_argument(
        "--autoscaler", type=Path, required=True, help="AutoscalerConfig as a JSON file"
    )
    pool.add_argument("--fd", type=int, help=FD_HELP)
    args = parser.parse_args(argv)
    if args.command == "pool":
        autoscaler = AutoscalerConfig.model_validate_json(args.autoscaler.read_text())
        sys.exit(serve_pool(args.config, args.party, args.port, args.run_dir, autoscaler, args.fd))
    sys.exit(serve_party(args.config, args.party, args.port, args.run_dir, args.fd))


if __name__ == "__main__":
    main()
