"""The ``ogsim`` command: a thin layer of typer sub-apps over the packages."""

from __future__ import annotations

import typer

from sim.commands import compare as compare_command
from sim.commands import conformance, demo, loadtest, operator, serve, up
from sim.commands import run as run_command
from sim.commands import sweep as sweep_command
from sim.validate import validate

app = typer.Typer(
    name="ogsim",
    help="A federated multi-operator simulator of the GSMA Open Gateway.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(operator.app, name="operator")
app.command("demo")(demo.command)
app.command("serve")(serve.command)
app.command("up")(up.up)
app.command("validate")(validate)
app.command("conformance")(conformance.conformance)
app.command("run")(run_command.run)
app.command("schema")(run_command.schema)
app.command("sweep")(sweep_command.sweep)
app.command("compare")(compare_command.compare)
app.command("loadtest")(loadtest.loadtest)
app.command("reconcile")(loadtest.reconcile)


@app.callback()
def main() -> None:
    """Run operators live, simulate them in virtual time, and check them against theory."""


if __name__ == "__main__":
    app()
