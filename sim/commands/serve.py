"""``ogsim serve``: one operator on a localhost port, until Ctrl-C."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from operators.operator import Operator, create_operator_app
from sim.commands.operator import ConfigOption, load_operator

console = Console()
DEFAULT_ADMIN_SECRET = "admin-secret"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def command(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8080,
    storage: Annotated[
        Path | None, typer.Option(help="SQLite file for the operator's state (default: memory)")
    ] = None,
) -> None:
    """Serve one operator (CAMARA APIs behind its gateway, identity server, admin API)."""
    operator_config = load_operator(config)
    if not _loopback(host) and operator_config.admin_secret == DEFAULT_ADMIN_SECRET:
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
    operator = Operator.from_config(operator_config.model_copy(update=updates))
    table = Table(title=f"{operator_config.display_name} ({operator_config.id})")
    table.add_column("what")
    table.add_column("where")
    table.add_row("issuer", operator.issuer)
    table.add_row("discovery", f"{operator.issuer}/.well-known/openid-configuration")
    table.add_row(
        "CAMARA APIs (gateway)", f"{origin}/sim-swap/v2, /device-reachability-status/v1, ..."
    )
    table.add_row("OpenAPI docs", f"{origin}/docs")
    table.add_row("metrics (Prometheus)", f"{origin}/metrics")
    table.add_row("admin credential", f"Authorization: Bearer {operator_config.admin_secret}")
    for test, number in operator.subscribers.test_numbers():
        table.add_row(f"test number: {test.role}", number)
    console.print(table)
    uvicorn.run(create_operator_app(operator), host=host, port=port, log_level="warning")
    operator.close()
