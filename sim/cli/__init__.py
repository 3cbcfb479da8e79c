"""The ``ogsim`` command: typer sub-apps by role, whose commands all sit at the top level.

:mod:`sim.cli.simulate` (run, sweep, compare, schema, validate), :mod:`sim.cli.live` (serve,
up, demo, operator, token) and :mod:`sim.cli.qa` (conformance, loadtest, reconcile) only
parse options and call the libraries; ``ogsim --help`` lists the commands under those roles.
The CLI is the one place allowed to import every package.
"""

from __future__ import annotations

import typer

from sim.cli import analytics, billing, calibrate, live, qa, simulate

__all__ = ["app"]

app = typer.Typer(
    name="ogsim",
    help="A federated multi-operator simulator of the GSMA Open Gateway.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(simulate.app)
app.add_typer(live.app)
app.add_typer(qa.app)
app.add_typer(billing.app)
app.add_typer(calibrate.app)
app.add_typer(analytics.app)


@app.callback()
def main() -> None:
    """Run operators live, simulate them in virtual time, and check them against theory."""
