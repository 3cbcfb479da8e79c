"""Which build of ogsim a test runs on: the checkout's pure Python, or the opt-in copy whose
hot modules mypyc compiled (``benchmarks/build_compiled.py --tests`` runs suites against it)."""

from __future__ import annotations

import inspect

import pytest


def skip_if_compiled(owner: type, method: str) -> None:
    """Skip a test that swaps ``owner.method`` for a recording stand-in when ``owner`` is
    compiled: a compiled class's methods are read-only on its instances. The pure build,
    which CI runs, still runs the test; the compiled build's answers are checked against the
    pure build's byte for byte by the build itself."""
    if not inspect.isfunction(getattr(owner, method)):
        pytest.skip(
            f"{owner.__qualname__}.{method} is compiled by mypyc: it cannot be replaced "
            "on an instance (the pure build runs this test)"
        )
