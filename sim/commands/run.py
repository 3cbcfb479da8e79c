"""Re-exports ``ogsim run`` and ``ogsim schema`` from :mod:`sim.cli.simulate` (see the package)."""

from sim.cli.simulate import run, schema

__all__ = ["run", "schema"]
