"""The live commands: ``serve``, ``up``, ``demo``, ``operator`` and ``token``.

``serve`` runs one operator on a localhost port; ``up`` the whole federation, each party its
own process on a loopback port, writing the descriptor JSON (every URL, the test numbers, a
demo application's credentials) and stopping every process on Ctrl-C or SIGTERM; ``demo``
tells the cross-operator story (:mod:`federation.demo`) through the federation in one
process; ``operator`` inspects one operator's config, test numbers and subscribers; ``token``
prints an access token as an application gets it, for curl and for ``ogsim conformance``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

from federation import (
    INVALID_RESPONSE,
    POOL_AUTOSCALER,
    FederationProcesses,
    Interactive,
    OAuthClientError,
    PartyStartError,
    create_corporate_idp_app,
    default_federation,
    descriptor,
    example_corporate_idp,
    fetch_access_token,
    fetch_operator_token,
    load_client_key,
    load_federation,
    run_demo,
)
from operators import (
    ConfigFileError,
    Database,
    Operator,
    SubscriberBase,
    create_operator_app,
    is_loopback,
    scheme_problem,
    serve_until_stopped,
)
from operators.handset_app import phone_link
from operators.identity import KeyEncryptionKeyError, KeySealing
from sim.cli.options import (
    DEFAULT_ADMIN_SECRET,
    OperatorConfigOption,
    load_operator,
    redis_url,
    refuse_unwritable,
)

__all__ = ["app", "corporate_idp", "demo", "operator_app", "serve", "token", "up"]

PANEL = "Live (real HTTP, wall time)"

console = Console()
operator_app = typer.Typer(
    help="Inspect one operator: its config, test numbers and subscribers.", no_args_is_help=True
)


def serve(
    config: OperatorConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8080,
    storage: Annotated[
        Path | None, typer.Option(help="SQLite file for the operator's state (default: memory)")
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(callback=redis_url, help="Redis URL for throttle counters shared by replicas"),
    ] = None,
) -> None:
    """Serve one operator (CAMARA APIs behind its gateway, identity server, admin API)."""
    operator_config = load_operator(config, console)
    _check_listen_host(host)
    if not is_loopback(host) and operator_config.admin_secret == DEFAULT_ADMIN_SECRET:
        console.print(
            f"[red]--host {host} is reachable from other machines and the admin secret is the "
            "default one: set admin_secret in the operator config first[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    origin = f"http://{host}:{port}"
    updates: dict[str, object] = {"issuer": f"{origin}/oauth"}
    if storage is not None:
        updates["storage"] = str(storage)
    if redis is not None:
        updates["redis_url"] = redis
    if storage is not None and storage.is_dir():
        _refuse("--storage", f"{storage} is a folder; give a database file name")
    try:
        # A database file keeps the signing keys, sealed with a key it must be given.
        KeySealing.for_database(str(updates.get("storage", ":memory:")), required=True)
        operator = Operator.from_config(operator_config.model_copy(update=updates))
    except KeyEncryptionKeyError as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)
        raise typer.Exit(2) from error
    except (sqlite3.Error, OSError) as error:  # the only database it opens is --storage's
        _refuse("--storage", f"{storage} cannot be the operator's SQLite database ({error})")
    table = Table(title=f"{operator_config.display_name} ({operator_config.id})")
    table.add_column("what")
    table.add_column("where")
    table.add_row("issuer", operator.issuer)
    table.add_row("discovery", f"{operator.issuer}/.well-known/openid-configuration")
    table.add_row(
        "CAMARA APIs (gateway)", f"{origin}/sim-swap/v2, /device-reachability-status/v1, ..."
    )
    table.add_row("OpenAPI docs", f"{origin}/docs")
    table.add_row("developer portal", f"{origin}/portal")
    table.add_row("consent portal (subscribers)", f"{origin}/my")
    table.add_row("metrics (Prometheus)", f"{origin}/metrics")
    table.add_row("admin credential", f"Authorization: Bearer {operator_config.admin_secret}")
    secret = operator_config.admin_secret
    for test, number in operator.subscribers.test_numbers():
        table.add_row(f"test number: {test.role}",
                      f"{number} · its phone: {phone_link(origin, secret, number)}")
    console.print(table)
    try:
        serve_until_stopped(create_operator_app(operator), host, port)  # until Ctrl-C/SIGTERM
    finally:
        operator.close()


def up(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="federation YAML (default: the built-in three operators)"
        ),
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
    timeout: Annotated[
        float, typer.Option(min=1, max=3600, help="seconds to wait for every party")
    ] = 60.0,
    redis: Annotated[
        str | None,
        typer.Option(callback=redis_url, help="Redis URL for every operator's throttle counters"),
    ] = None,
    autoscale: Annotated[
        bool,
        typer.Option(
            "--autoscale",
            help="run each operator as a pool of gateway processes behind its load balancer, "
            "scaled on calls in flight (2 to 6 replicas, 4 per replica) and healed when one "
            "dies; give --redis too, or each replica keeps its own throttle counters",
        ),
    ] = False,
) -> None:
    """Start every operator and the aggregator as separate processes, until Ctrl-C."""
    try:
        federation = load_federation(config) if config else default_federation()
    except ConfigFileError as error:
        console.print(f"[red]invalid federation config[/red]\n{error}", soft_wrap=True)
        raise typer.Exit(2) from error
    if not federation.aggregators:
        console.print(f"[red]invalid federation config[/red]\n{config}: aggregators: none "
                      "given; a live federation needs at least one (the demo application "
                      "registers there and calls go through it)", soft_wrap=True)
        raise typer.Exit(2)
    # before any process starts: an unwritable path used to fail only once all were up
    refuse_unwritable(descriptor_path, "--descriptor", console, folder=False)
    _probe_file(descriptor_path, "--descriptor")
    if run_dir is not None:
        refuse_unwritable(run_dir, "--run-dir", console)
    if redis is not None:
        operators = tuple(o.model_copy(update={"redis_url": redis}) for o in federation.operators)
        federation = federation.model_copy(update={"operators": operators})
    kept = sorted(run_dir.glob("*.sqlite3")) if run_dir is not None else []
    if kept and not os.environ.get(KeySealing.ENV):
        console.print(
            f"{run_dir} holds databases of an earlier run, whose signing keys are encrypted "
            f"with that run's key: set {KeySealing.ENV} to it (without it, `ogsim up` makes "
            "one per run), or use a new --run-dir",
            soft_wrap=True,
            markup=False,
        )
        raise typer.Exit(2)
    scratch: Path | None = None
    if run_dir is None:
        scratch = run_dir = Path(tempfile.mkdtemp(prefix="ogsim-up-"))
    processes = FederationProcesses.prepare(
        federation, base_port, run_dir, autoscale=POOL_AUTOSCALER if autoscale else None
    )
    stop = processes.interrupt  # a signal also ends the start-up, which waits on it
    signalled: list[int] = []

    def on_signal(signum: int, _: FrameType | None) -> None:
        signalled.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    failed = False
    try:
        processes.start()
        processes.wait_ready(timeout)
        application = processes.register_demo_application()
        described = descriptor(processes, application)
        _write_descriptor(descriptor_path, described)
        _print(described, descriptor_path)
        while not stop.wait(0.5):
            for party, process in processes.processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{party} exited with {process.returncode}[/red]")
                    failed = True
                    stop.set()
    except (PartyStartError, TimeoutError) as error:  # a port taken, a party that did not start
        if signalled:
            console.print(f"ogsim up: {signal.Signals(signalled[0]).name} during start-up; "
                          "stopping the parties", style="red", soft_wrap=True, markup=False)
            raise typer.Exit(128 + signalled[0]) from None
        failed = True
        console.print(f"ogsim up: {error}", style="red", soft_wrap=True, markup=False)
        raise typer.Exit(1) from None
    finally:
        codes = processes.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        console.print(f"stopped: {', '.join(f'{p} ({c})' for p, c in codes.items())}")
        if scratch is not None and failed:  # its logs tell why
            console.print(f"the parties' logs and databases are kept in {scratch}",
                          soft_wrap=True, markup=False)
        elif scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _check_listen_host(host: str) -> None:
    """Exit 2 when ``--host`` is spelt as an address but is none (``999.1.1.1``, ``::g``):
    it would otherwise be refused as reachable from other machines, or looked up as a name.
    Names are left to the resolver, as uvicorn takes them."""
    if not host or set(host) <= set("0123456789.") or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            _refuse("--host", f"{host!r} is not an IP address")


def _refuse(flag: str, problem: str) -> NoReturn:
    """Exit 2 with ``flag: problem``, as the shared options report a flag they refuse."""
    console.print(f"{flag}: {problem}", style="red", markup=False, highlight=False,
                  soft_wrap=True)
    raise typer.Exit(2)


def _probe_file(path: Path, flag: str) -> None:
    """Exit 2 naming ``flag`` unless ``path`` can be opened for writing now: opened (its
    folder made) and, when it was not there, removed again. Permission bits do not tell (root
    passes them in /proc and on a read-only mount), and the descriptor is written only once
    every party is up."""
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
        if not existed:
            path.unlink()
    except OSError as error:
        _refuse(flag, f"cannot write {path} ({error.strerror or error})")


def _write_descriptor(path: Path, described: dict[str, object]) -> None:
    """Write the descriptor; should the file have become unwritable since it was probed, exit
    2 naming ``--descriptor`` (the parties are then stopped) rather than in a traceback."""
    try:
        path.write_text(json.dumps(described, indent=2))
    except OSError as error:
        _refuse("--descriptor", f"cannot write {path} ({error.strerror or error})")


def _print(described: dict[str, object], path: Path) -> None:
    table = Table(title="ogsim federation (live, one process per party)")
    for column in ("party", "issuer", "developer portal", "test number (approves)"):
        table.add_column(column)
    for operator in described["operators"]:  # type: ignore[attr-defined]
        table.add_row(operator["id"], operator["issuer"], operator["developerPortal"],
                      f'{operator["testNumbers"]["approves"]}\nits phone: '
                      f'{operator["handsets"]["approves"]}')
    for aggregator in described["aggregators"]:  # type: ignore[attr-defined]
        table.add_row(aggregator["id"], aggregator["issuer"], aggregator["developerPortal"], "-")
    console.print(table)
    console.print(f"descriptor: {path} (demo application credentials included); Ctrl-C stops")


def demo(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the summary")] = False,
    out: Annotated[Path, typer.Option(help="folder for the sequence diagram")] = Path("ogsim-demo"),
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            help="the consent is yours: open the printed handset URL and press Approve",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(min=1, max=3600, help="--interactive: seconds to wait for Approve"),
    ] = 120.0,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="--interactive: handset page port (0: any)")
    ] = 0,
) -> None:
    """Start the default federation in process and run a cross-operator story through it."""
    teller = Console(highlight=False)
    refuse_unwritable(out, "--out", console)
    person = None
    if interactive:
        person = Interactive(
            timeout=timeout, port=port, on_url=lambda url: teller.print(f"handset: {url}")
        ) if quiet else Interactive(timeout=timeout, port=port)
    steps = asyncio.run(run_demo(None if quiet else teller, out=out, interactive=person))
    table = Table(title="demo summary")
    for column in ("step", "outcome", "ms"):
        table.add_column(column)
    for name, outcome, millis in steps:
        style = "red" if outcome.startswith("UNEXPECTED") else ""
        table.add_row(name, outcome, f"{millis:.1f}", style=style)
    teller.print(table)
    if any(outcome.startswith("UNEXPECTED") for _, outcome, _ in steps):
        raise typer.Exit(1)


@operator_app.command("numbers")
def numbers(
    config: OperatorConfigOption = None,
    sample: int = typer.Option(5, min=0, help="also list this many generated subscribers"),
) -> None:
    """List the documented test numbers (fixed behaviour) and a sample of generated ones."""
    operator = load_operator(config, console)
    base = SubscriberBase(operator, Database(":memory:"))
    table = Table(title=f"{operator.display_name} ({operator.id}) test numbers")
    table.add_column("phone number")
    table.add_column("role")
    table.add_column("behaviour")
    for test, number in base.test_numbers():
        table.add_row(number, test.role, test.description)
    for number in base.numbers(sample):
        table.add_row(number, "generated", f"seed {operator.seed}: see `ogsim operator subscriber`")
    console.print(table)


@operator_app.command("subscriber")
def subscriber(
    phone_number: str = typer.Argument(..., help="E.164, e.g. +34600000001"),
    config: OperatorConfigOption = None,
) -> None:
    """Print everything the operator knows about one subscriber, as JSON."""
    operator = load_operator(config, console)
    found = SubscriberBase(operator, Database(":memory:")).get(phone_number)
    if found is None:
        console.print(f"[red]{operator.id} does not serve {phone_number}[/red]")
        raise typer.Exit(1)
    typer.echo(json.dumps(found.model_dump(mode="json"), indent=2, ensure_ascii=False))


@operator_app.command("config")
def show_config(config: OperatorConfigOption = None) -> None:
    """Print the operator config, core and protection included, as YAML to start from."""
    data = load_operator(config, console).model_dump(mode="json")
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def token(
    issuer: Annotated[
        str, typer.Option(envvar="OGSIM_ISSUER", help="the authorization server's issuer URL")
    ],
    client_id: Annotated[
        str, typer.Option(envvar="OGSIM_CLIENT_ID", help="the application's client_id")
    ],
    key: Annotated[
        Path,
        typer.Option(
            envvar="OGSIM_CLIENT_KEY", help="the application's private JWK (private_key_jwt)"
        ),
    ],
    scope: Annotated[
        str,
        typer.Option(envvar="OGSIM_SCOPE", help="scopes, space separated (may hold the purpose)"),
    ] = "",
    number: Annotated[
        str | None,
        typer.Option(
            envvar="OGSIM_PHONE_NUMBER",
            help="E.164 subscriber number: a three-legged token through CIBA",
        ),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="dpv: purpose, appended to the scope if not there")
    ] = None,
    expired: Annotated[
        bool, typer.Option(envvar="OGSIM_EXPIRED", hidden=True, help="asked for an expired one")
    ] = False,
    network: Annotated[
        bool,
        typer.Option(
            envvar="OGSIM_NETWORK",
            help="with --number: a subscriber the network authenticated (a TS.43 operator token"
            " from the operator's admin API, as Number Verification needs)",
        ),
    ] = False,
    admin_secret: Annotated[
        str | None,
        typer.Option(
            envvar="OGSIM_ADMIN_SECRET", help="--network: the operator's admin credential"
        ),
    ] = None,
) -> None:
    """Print an access token for an application (as `gcloud auth print-access-token` does).

    Every option falls back to the variable ``ogsim conformance --token-command`` sets
    (OGSIM_SCOPE, OGSIM_PHONE_NUMBER, OGSIM_EXPIRED, OGSIM_NETWORK), so this command can be
    that command.
    """
    if expired:
        typer.echo("an authorization server does not mint expired tokens on request", err=True)
        raise typer.Exit(3)
    if network and number and not admin_secret:
        typer.echo("a network-authenticated token needs a TS.43 operator token: give"
                   " --admin-secret (the operator's admin credential)", err=True)
        raise typer.Exit(3)
    wanted = scope.split()
    if purpose and purpose not in wanted:
        wanted.append(purpose)
    try:
        private = load_client_key(key)
    except (OSError, ValueError) as error:  # ValueError: the file's JSON is no P-256 private JWK
        typer.echo(f"--key: cannot read the key {key}: {error}", err=True)
        raise typer.Exit(2) from error
    try:
        ts43 = (asyncio.run(_operator_token(issuer, admin_secret, number))
                if network and number and admin_secret else None)
        answer = asyncio.run(
            fetch_access_token(
                issuer, client_id, private, " ".join(wanted), phone_number=number or None,
                operator_token=ts43,
            )
        )
    except OAuthClientError as error:
        if error.error == INVALID_RESPONSE:  # a success that is no token answer: no refusal
            typer.echo(f"{issuer} answered its token request wrongly: {error.description}",
                       err=True)
        else:
            typer.echo(f"{issuer} refused: {error}", err=True)
        raise typer.Exit(1) from error
    except httpx.HTTPError as error:
        typer.echo(f"{issuer} cannot be reached: {error}", err=True)
        raise typer.Exit(2) from error
    except ValueError as error:  # federation.client's DiscoveryError: it names the issuer
        typer.echo(f"--issuer: {error}", err=True)
        raise typer.Exit(2) from error
    sys.stdout.write(f"{answer['access_token']}\n")  # the client checked there is one


async def _operator_token(issuer: str, admin_secret: str, number: str) -> str:
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await fetch_operator_token(http, issuer, admin_secret, number)


def corporate_idp(
    portal: Annotated[
        str, typer.Option(help="origin of the operator whose developer portal signs in with it")
    ] = "http://127.0.0.1:8080",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8099,
    admin_secret: Annotated[
        str,
        typer.Option(help="bearer credential of the IdP's admin API", envvar="OGSIM_IDP_SECRET"),
    ] = "idp-admin-secret",
) -> None:
    """Serve the demo company's identity provider (OIDC sign-in, SCIM and RISC deprovisioning)."""
    if not is_loopback(host):
        console.print(f"[red]--host {host}: the demo IdP serves loopback only[/red]")
        raise typer.Exit(2)
    refused = scheme_problem(portal)  # sign-in codes for the portal are sent back to it
    if refused is not None:
        console.print(f"[red]--portal {portal}: {refused}[/red]")
        raise typer.Exit(2)
    issuer = f"http://{host}:{port}"
    portal = portal.rstrip("/")
    idp = example_corporate_idp(issuer, admin_secret=admin_secret)
    secret = os.urandom(18).hex()
    idp.register_client("ogsim-portal", secret, [f"{portal}/portal/sign-in/corporate/callback"])
    table = Table(title="corporate identity provider (demo company)")
    table.add_column("what")
    table.add_column("value")
    table.add_row("issuer", issuer)
    table.add_row("client id / secret for the portal's trust page", f"ogsim-portal / {secret}")
    table.add_row("employees (login / password)", "ada / ada-password, bob / bob-password")
    table.add_row("send deprovisioning to the portal",
                  f"POST {issuer}/admin/receivers (Bearer {admin_secret})")
    table.add_row("disable an employee", f"POST {issuer}/admin/users/bob/disable")
    console.print(table)
    serve_until_stopped(create_corporate_idp_app(idp), host, port)


app = typer.Typer()
app.command("serve", rich_help_panel=PANEL)(serve)
app.command("corporate-idp", rich_help_panel=PANEL)(corporate_idp)
app.command("up", rich_help_panel=PANEL)(up)
app.command("demo", rich_help_panel=PANEL)(demo)
app.command("token", rich_help_panel=PANEL)(token)
app.add_typer(operator_app, name="operator", rich_help_panel=PANEL)
