"""``python -m sim.cli``: the ``ogsim`` command without its console script (tests use it)."""

from sim.cli import app

app()
