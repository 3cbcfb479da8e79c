"""What the global load balancer raises, kept apart from its decisions.

A module of its own so that :mod:`federation.global_load_balancer` defines no subclass of a
built-in exception, which mypyc cannot compile as a native class (``benchmarks/
build_compiled.py`` compiles the balancer: the simulation picks a data centre per request).
"""

from __future__ import annotations


class NoHealthyDataCentreError(RuntimeError):
    """Every data centre of the operator is down: the caller answers 503."""
