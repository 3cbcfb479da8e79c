"""When the aggregator searches again: ``SHALLOW`` first, ``DEEP`` once the answer looks stale.

The Telco Finder's ``SHALLOW`` answer comes from records that may predate a port. Three hops
can reveal that the number is not where the records say: the finder itself finds nobody, the
operator it named refuses the token request for an unknown subscriber (404), or that
operator's API answers ``404 IDENTIFIER_NOT_FOUND``. Each sends the call to one ``DEEP``
search (the national Network Id register) and a second attempt; a ``DEEP`` answer is final.
Only phone numbers can have ported, so an IP-identified device gets no second search.

The live aggregator (:mod:`federation.aggregator`) and the simulation's aggregator tier both
ask :func:`next_search`; neither decides this on its own.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from .telco_finder import SearchMode

__all__ = ["FIRST_SEARCH", "Stale", "next_search", "stale_signal"]

FIRST_SEARCH: Final[SearchMode] = "SHALLOW"


class Stale(StrEnum):
    """The hop that said the number is not where the search put it."""

    FINDER = "finder"
    """The finder found no operator for the number."""
    TOKEN = "token"
    """The operator refused the token request: it does not know the subscriber (404)."""
    API = "api"
    """The operator's API answered ``404 IDENTIFIER_NOT_FOUND``."""


def stale_signal(hop: Stale, status: int, code: str | None = None) -> Stale | None:
    """Whether a hop's answer says the number may have moved (``hop``), or not (None)."""
    if status != 404:
        return None
    if hop is Stale.API and code != "IDENTIFIER_NOT_FOUND":
        return None
    return hop


def next_search(mode: SearchMode, signal: Stale | None, *, phone_number: bool) -> SearchMode | None:
    """The search to run next after an attempt that ended with ``signal`` (None: stop here)."""
    if signal is None or mode != "SHALLOW" or not phone_number:
        return None
    return "DEEP"
