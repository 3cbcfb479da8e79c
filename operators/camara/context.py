"""The request-scoped call context that the gateway hands to every CAMARA endpoint.

The gateway authenticates the token, checks scopes, purpose and consent, and only then lets a
request reach a CAMARA router; what it learned travels here, so the API layer never parses a
token itself. Routers depend on :func:`get_call_context`, a placeholder the gateway replaces
with ``app.dependency_overrides[get_call_context] = <its dependency>`` (a test does the same
with a fixed context).
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.errors import CamaraError

__all__ = ["CallContext", "get_call_context"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who calls and about whom: the facts the gateway derived from the access token.

    ``msisdn`` is the subscriber a three-legged token identifies (E.164 with ``+``), None for
    a two-legged token; the device identification rules depend on exactly this difference.
    """

    client_id: str
    msisdn: str | None = None
    scopes: frozenset[str] = frozenset()
    purpose: str | None = None
    correlator: str | None = None
    party: str | None = None
    """Whom consents are given to for this call, when not ``client_id``: the application an
    aggregator acts for (``hub/app``)."""

    sandbox: bool = False
    """A sandbox application's call: only the documented test numbers may be processed."""

    @property
    def consent_party(self) -> str:
        return self.party or self.client_id

    @property
    def three_legged(self) -> bool:
        return self.msisdn is not None


def get_call_context() -> CallContext:
    """Placeholder dependency: refuses until the gateway overrides it, so nothing runs unchecked."""
    raise CamaraError(
        401,
        "UNAUTHENTICATED",
        "Request not authenticated due to missing, invalid, or expired credentials.",
    )
