"""Re-exports ``ogsim compare`` from :mod:`sim.cli.simulate` (see the package)."""

from sim.cli.simulate import compare

__all__ = ["compare"]
