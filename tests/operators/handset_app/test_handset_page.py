"""The handset page: interactive CIBA prompts pressed by a person, codes and notices shown."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from operators.config import example_operator
from operators.handset_app import pairing
from operators.operator import Operator

from .conftest import Live, make_interactive


async def test_a_pressed_approve_is_the_handsets_answer(live: Live) -> None:
    number = live.number("never-answers")  # scripted, it would never answer
    make_interactive(live.operator, number)
    auth_req_id = await live.start(number, binding_message="Order 4217")
    assert (await live.poll(auth_req_id)).json()["error"] == "authorization_pending"
    feed = await live.feed(number)
    [prompt] = feed["prompts"]
    assert prompt["auth_req_id"] == auth_req_id and prompt["pressed"] is None
    assert prompt["application"] == "Corner <b>Shop</b>"
    assert prompt["purpose_words"] == "Verifying your identity"
    assert prompt["scopes"] == ["number-verification:verify"]
    page = await live.page(number)
    assert "Order 4217" in page.text and "Verifying your identity" in page.text
    assert "Corner &lt;b&gt;Shop&lt;/b&gt;" in page.text  # autoescaped
    assert "<script src=\"/static/handset.js\">" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]

    pressed = await live.press(number, auth_req_id, "approve")
    assert pressed.status_code == 303 and pressed.headers["location"] == f"/handset/{number}"
    assert (await live.feed(number))["prompts"][0]["pressed"] == "approved"
    token = await live.poll(auth_req_id)
    assert token.status_code == 200, token.text
    [consent] = live.operator.identity.consents.for_subscriber(number)
    assert (consent.client_id, consent.purpose) == ("shop", "dpv:IdentityVerification")
    assert [a.actor for a in live.operator.identity.consents.audit(msisdn=number)] == [
        "subscriber:handset"]  # the very grant a scripted approval makes
    assert (await live.feed(number))["prompts"] == []  # redeemed: gone from the phone


async def test_deny_and_presses_are_idempotent(live: Live) -> None:
    number = live.number("approves")  # scripted, it would approve at once
    make_interactive(live.operator, number)
    auth_req_id = await live.start(number)
    token = await live.csrf(number)
    assert (await live.press(number, auth_req_id, "deny", token)).status_code == 303
    for decision in ("deny", "approve"):  # the first press stands
        assert (await live.press(number, auth_req_id, decision, token)).status_code == 303
    assert (await live.poll(auth_req_id)).json()["error"] == "access_denied"
    assert live.operator.identity.consents.for_subscriber(number) == []


async def test_only_this_numbers_interactive_prompts(live: Live) -> None:
    mine, other = live.number("never-answers"), live.number("slow-consent")
    make_interactive(live.operator, mine)
    scripted = await live.start(other)  # slow-consent stays scripted
    theirs = await live.start(mine)
    assert (await live.feed(other))["prompts"] == []  # a scripted handset answers by itself
    token = await live.csrf(mine)
    for number, auth_req_id in ((mine, scripted), (other, theirs), (mine, "made-up")):
        response = await live.press(number, auth_req_id, "approve",
                                    token if number == mine else None)
        assert response.status_code == 404, (number, auth_req_id)
    live.clock.advance(200)  # expired: no longer on the phone, no longer pressable
    assert (await live.feed(mine))["prompts"] == []
    assert (await live.press(mine, theirs, "approve", token)).status_code == 404


async def test_bad_input_is_a_4xx_page(live: Live) -> None:
    number = live.number("never-answers")
    make_interactive(live.operator, number)
    auth_req_id = await live.start(number)
    token = await live.csrf(number)
    url = f"/handset/{number}/prompts/{auth_req_id}"
    cases: list[tuple[dict[str, object], int]] = [
        ({"data": {"decision": "approve"}}, 403),  # no token
        ({"data": {"csrf": "forged", "decision": "approve"}}, 403),
        ({"data": {"csrf": token, "decision": "maybe"}}, 400),
        ({"json": {"csrf": token, "decision": "approve"}}, 415),
        ({"content": b"csrf=\xff\xfe", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}, 400),
        ({"content": b"x" * 5000, "headers": {
            "content-type": "application/x-www-form-urlencoded"}}, 413),
    ]
    for kwargs, status in cases:
        response = await live.http.post(url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, (kwargs, response.text)
    # a token is bound to the browser's cookie and to the number
    live.http.cookies.clear()
    assert (await live.press(number, auth_req_id, "approve", token)).status_code == 403
    other = live.number("approves")
    assert (await live.press(other, auth_req_id, "approve", await live.csrf(other))
            ).status_code == 404
    secret = live.operator.config.admin_secret
    for number_, tail in (("12345", ""), ("+999999999999999999", ""), ("\x00", ""),
                          ("+33999", "/messages")):
        path = f"/handset/{quote(number_, safe='+')}{tail}"
        key = {"key": pairing.phone_key(secret, number_)}
        assert (await live.http.get(path, params=key)).status_code == 404, path
        assert (await live.http.get(path)).status_code == 403, "the same for no such phone"
    assert (await live.poll(auth_req_id)).json()["error"] == "authorization_pending"


async def test_codes_and_notices_from_the_inbox(live: Live) -> None:
    number = live.number("approves")
    live.operator.handsets.send(number, "code", "Your code is 482913", code="482913")
    live.operator.handsets.send(number, "consent", "You granted Shop access", consent="c1")
    before = (await live.feed(number))["version"]
    feed = await live.feed(number)
    assert [m["kind"] for m in feed["messages"]] == ["consent", "code"]
    page = await live.page(number)
    assert "Your code is 482913" in page.text and "You granted Shop access" in page.text
    live.operator.handsets.send(number, "code", "Your code is 000111")
    assert (await live.feed(number))["version"] != before  # the page's script reloads


@pytest.mark.parametrize("via", ["config", "admin API"])
async def test_interactive_per_subscriber(via: str, live: Live) -> None:
    number = live.number("approves")
    if via == "config":
        config = example_operator().model_copy(update={"interactive_handsets": (number,)})
        operator = Operator.from_config(config, clock=live.clock)
        try:
            subscriber = operator.subscribers.get(number)
            assert subscriber is not None and subscriber.handset.mode == "interactive"
            assert operator.subscribers.get(live.number("denies-consent")).handset.mode == (  # type: ignore[union-attr]
                "scripted")
        finally:
            operator.close()
        return
    admin = {"Authorization": f"Bearer {live.operator.config.admin_secret}"}
    response = await live.http.post(f"/admin/subscribers/{number}/changes", headers=admin,
                                     json={"kind": "handset", "payload": {"mode": "interactive"}})
    assert response.status_code == 201, response.text
    read = await live.http.get(f"/admin/subscribers/{number}", headers=admin)
    assert read.json()["handset"]["mode"] == "interactive"
    bad = await live.http.post(f"/admin/subscribers/{number}/changes", headers=admin,
                               json={"kind": "handset", "payload": {"mode": "telepathic"}})
    assert bad.status_code == 400
