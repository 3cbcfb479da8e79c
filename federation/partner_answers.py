"""Reading a federation partner's JSON answer, whatever the partner sent."""

from __future__ import annotations

from typing import Any

import httpx

from operators import CamaraError

__all__ = ["PARTNER_FAILURES", "partner_json", "partner_unavailable"]

PARTNER_FAILURES = (httpx.HTTPError, httpx.InvalidURL, ValueError, KeyError, TypeError)
"""What asking a partner can raise: no answer, an error status (``raise_for_status``), or an
answer that is not the JSON object expected."""


def partner_json(response: httpx.Response) -> Any:
    """``response``'s JSON body; ValueError for one that is not JSON, or nested past the
    parser's depth (its RecursionError would otherwise pass every ``except ValueError`` and
    end the caller's request in a 500)."""
    try:
        return response.json()
    except RecursionError as error:
        raise ValueError(f"{response.url} answered JSON nested too deeply") from error


def partner_unavailable(what: str, error: Exception) -> CamaraError:
    """503 for a partner's service that failed, as the hub answers for a partner that is
    down: the application's request was fine, and another try may find the partner back."""
    detail = f" ({error.response.status_code})" if isinstance(error, httpx.HTTPStatusError) else ""
    return CamaraError(503, "UNAVAILABLE", f"{what} could not answer{detail}.")
