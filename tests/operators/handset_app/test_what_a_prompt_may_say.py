"""What an application may put on the subscriber's handset through CIBA, and the cookies the
phone's page sets. A binding message is a short code on one line (CIBA Core §7.1): a long
one, line breaks or a right-to-left override (which reverses what the subscriber reads) are
refused with ``invalid_binding_message``. An aggregator's ``on_behalf_of`` of ``.`` or
``..`` became a path segment of the consent portal's links, which a browser drops, so that
"withdraw every consent" of ``fraud-app/.`` withdrew ``fraud-app``'s instead."""

from __future__ import annotations

import httpx
import pytest

from operators.handset_app import csrf, pairing
from operators.operator import create_operator_app

from .conftest import Live


@pytest.mark.parametrize(
    "message",
    [
        "x" * 65,
        "URGENT: your account is blocked.\nApprove to unblock it.",
        "Order \u202e7124",
        "tab\there",
    ],
    ids=["too long", "line break", "right-to-left override", "control character"],
)
async def test_a_binding_message_that_is_no_short_plain_line_is_refused(
    live: Live, message: str
) -> None:
    number = live.number("approves")
    refused = await live.bc_authorize(number, binding_message=message)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_binding_message"


async def test_a_short_binding_message_reaches_the_prompt(live: Live) -> None:
    number = live.number("approves")
    started = await live.bc_authorize(number, binding_message="Order 4217 · ÁB-12")
    assert started.status_code == 200, started.text


@pytest.mark.parametrize("party", [".", "..", "...", ":-"])
async def test_an_application_named_only_by_punctuation_is_refused(
    live: Live, party: str
) -> None:
    refused = await live.bc_authorize(live.number("approves"), on_behalf_of=party)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request"
    assert (await live.bc_authorize(live.number("approves"), on_behalf_of="shop.v2")
            ).status_code == 200


async def test_the_phone_page_cookies_are_secure_over_https(live: Live) -> None:
    """Before, the page's CSRF nonce cookie lacked Secure where its link-key cookie had it."""
    number = live.number("approves")
    app = create_operator_app(live.operator)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.70", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://op.example") as http:
        opened = await http.get(live.link(number))
    assert opened.status_code == 200
    cookies = {c.split("=", 1)[0]: c.lower() for c in opened.headers.get_list("set-cookie")}
    for name in (csrf.COOKIE, pairing.cookie_name(number)):
        assert "; secure" in cookies[name], cookies[name]
        assert "httponly" in cookies[name] and "samesite=strict" in cookies[name]
