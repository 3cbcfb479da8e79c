"""The capture page's first one-time code, with two replicas (two identity servers, two
connections) on one database file: two page loads at once send one code."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from operators.config import example_operator
from operators.identity.capture_pages import build_capture_router
from tests.operators.identity.conftest import FakeClock, Operator, build_operator
from tests.operators.interleaving import Interleaved

IDENTITY = "dpv:IdentityVerification"

Sent = list[tuple[str, str]]
"""The text messages the replicas sent: (number, code)."""

STATEMENTS_OF_A_PAGE_LOAD = (1, 2, 3)
"""Where the other replica's page load lands: after each of the first one's statements on the
captures up to its code (the capture's read, the session's, then the old code's check for a
live code, or the conditional code that replaces it)."""


def _page(operator: Operator, sent: Sent) -> TestClient:
    """One replica's capture page, sending codes to ``sent``."""
    app = FastAPI()
    app.include_router(build_capture_router(operator.server,
                                            lambda msisdn, code: sent.append((msisdn, code))))
    return TestClient(app)


def _replicas(tmp_path: Path) -> tuple[Operator, Operator, str]:
    """Two identity servers over one file and a capture no code was sent for yet."""
    clock = FakeClock()
    config = example_operator(storage=str(tmp_path / "operator.sqlite3"))
    first, second = build_operator(config, clock), build_operator(config, clock)
    first.register()
    capture = first.server.captures.offer("app-one", first.number("approves"), IDENTITY,
                                          ("kyc-match:match",), None)
    return first, second, capture.id


@pytest.mark.parametrize("after", STATEMENTS_OF_A_PAGE_LOAD)
def test_two_page_loads_at_two_replicas_send_one_code(tmp_path: Path, after: int) -> None:
    """Before, each replica checked for a live code, then sent one: a link preview and the
    subscriber opening the link at once both sent a code, the second replaced the first (so
    the first message no longer worked) and one of the capture's three codes was wasted."""
    first, second, capture_id = _replicas(tmp_path)
    sent: Sent = []
    path = f"/consent/capture/{capture_id}"
    loads: list[int] = []
    first.server.captures.db = Interleaved(  # type: ignore[assignment]
        first.server.captures.db,
        lambda: loads.append(_page(second, sent).get(path).status_code), after=after)
    assert _page(first, sent).get(path).status_code == 200
    assert loads == [200], "the other replica's page load ran in between"
    assert len(sent) == 1, f"one text message, not {len(sent)}"
    capture = second.server.captures.get(capture_id)
    assert capture is not None and capture.codes_sent == 1
    assert second.server.captures.check_code(capture_id, sent[0][1]), "the code sent works"


def test_a_page_load_sends_a_new_code_once_the_last_is_spent(tmp_path: Path) -> None:
    """The condition is "no code can still be tried": a wrong code tried to its limit, or
    an expired one, lets the next page load send another (up to the capture's three)."""
    first, _, capture_id = _replicas(tmp_path)
    captures = first.server.captures
    assert captures.first_code(capture_id) is not None
    assert captures.first_code(capture_id) is None, "a live code is not replaced"
    while captures.codes_left(capture_id):
        captures.check_code(capture_id, "not-it")
    assert captures.first_code(capture_id) is not None, "its tries spent"
    first.clock.advance(5 * 60)
    assert captures.first_code(capture_id) is not None, "expired"
    first.clock.advance(5 * 60)
    assert captures.first_code(capture_id) is None, "three codes sent"
