"""Re-exports ``ogsim sweep`` from :mod:`sim.cli.simulate` (see the package)."""

from sim.cli.simulate import sweep

__all__ = ["sweep"]
