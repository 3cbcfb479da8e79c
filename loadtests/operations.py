"""The load test's view of the operation table: paths and scopes by operation id.

Every URL and scope a Locust user sends comes from :data:`operators.camara.OPERATIONS`, so a
renamed path or a changed ``security`` list reaches the load test without an edit here.
"""

from __future__ import annotations

from operators.camara import operation_named

__all__ = ["path_of", "scopes_of"]


def path_of(operation_id: str) -> str:
    """The full path template of an operation (``/sim-swap/v2/check``)."""
    return operation_named(operation_id).template


def scopes_of(*operation_ids: str) -> str:
    """The scope value that lets a token call every one of these operations (each
    operation's first ``security`` alternative, in order, without repeats)."""
    scopes = (s for op in operation_ids for s in operation_named(op).scopes[0])
    return " ".join(dict.fromkeys(scopes))
