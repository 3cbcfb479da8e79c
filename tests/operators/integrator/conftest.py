"""Fixtures shared with the other API-layer tests (see ``tests/operators/direct_backends.py``)."""

from tests.operators.direct_backends import (  # noqa: F401 - fixtures, found by name
    Direct,
    base,
    client,
    context,
    functions,
    integrator,
)
