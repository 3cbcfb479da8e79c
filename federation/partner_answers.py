"""Reading a federation partner's JSON answer, whatever the partner sent."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["partner_json"]


def partner_json(response: httpx.Response) -> Any:
    """``response``'s JSON body; ValueError for one that is not JSON, or nested past the
    parser's depth (its RecursionError would otherwise pass every ``except ValueError`` and
    end the caller's request in a 500)."""
    try:
        return response.json()
    except RecursionError as error:
        raise ValueError(f"{response.url} answered JSON nested too deeply") from error
