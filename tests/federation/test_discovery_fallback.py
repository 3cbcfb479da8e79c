"""When the aggregator searches DEEP: every hop's answer, against the one decision."""

from __future__ import annotations

import pytest

from federation.discovery_fallback import FIRST_SEARCH, Stale, next_search, stale_signal


@pytest.mark.parametrize(
    ("hop", "status", "code", "expected"),
    [
        (Stale.FINDER, 404, "IDENTIFIER_NOT_FOUND", "DEEP"),
        (Stale.TOKEN, 404, None, "DEEP"),  # the operator no longer knows the subscriber
        (Stale.API, 404, "IDENTIFIER_NOT_FOUND", "DEEP"),
        (Stale.API, 404, "NOT_FOUND", None),  # another 404 says nothing about a port
        (Stale.TOKEN, 403, None, None),  # a refusal is final
        (Stale.API, 200, None, None),
        (Stale.API, 503, "UNAVAILABLE", None),
    ],
)
def test_a_stale_shallow_answer_leads_to_one_deep_search(
    hop: Stale, status: int, code: str | None, expected: str | None
) -> None:
    signal = stale_signal(hop, status, code)
    assert next_search(FIRST_SEARCH, signal, phone_number=True) == expected


def test_deep_is_final_and_ip_devices_never_search_again() -> None:
    assert FIRST_SEARCH == "SHALLOW"
    for hop in Stale:
        assert (
            next_search("DEEP", stale_signal(hop, 404, "IDENTIFIER_NOT_FOUND"), phone_number=True)
            is None
        )
        assert (
            next_search(
                "SHALLOW", stale_signal(hop, 404, "IDENTIFIER_NOT_FOUND"), phone_number=False
            )
            is None
        )
