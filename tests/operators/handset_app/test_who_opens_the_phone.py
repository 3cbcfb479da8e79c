"""The phone opens for its holder, the operator admin and whoever holds its link; a stranger
reads no one-time code on it and presses no consent prompt (before, anyone who could reach the
operator could do both, and so sign in to the subscriber's portal or consent in their name)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from operators.handset_app import pairing
from operators.operator import Operator, create_operator_app

from .conftest import Live, make_interactive

CODE = "482913"


def _client(operator: Operator, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_operator_app(operator), client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url=operator.api_root)


async def test_a_stranger_opens_no_phone(live: Live) -> None:
    number = live.number("never-answers")
    make_interactive(live.operator, number)
    live.operator.handsets.send(number, "code", f"Your code is {CODE}", code=CODE)
    auth_req_id = await live.start(number)
    async with _client(live.operator, "198.51.100.66") as stranger:
        page = await stranger.get(f"/handset/{number}")
        feed = await stranger.get(f"/handset/{number}/messages")
        for refused in (page, feed):
            assert refused.status_code == 403 and CODE not in refused.text
            assert "/admin/handsets/" in refused.text, "it says how the phone opens"
        assert "try again" not in page.text, "going back to a closed phone opens nothing"
        wrong = pairing.phone_key(live.operator.config.admin_secret, live.number("approves"))
        assert (await stranger.get(f"/handset/{number}", params={"key": wrong})
                ).status_code == 403, "another phone's key"
        stranger.cookies.set(pairing.cookie_name(number), wrong)
        assert (await stranger.get(f"/handset/{number}")).status_code == 403
        pressed = await stranger.post(f"/handset/{number}/prompts/{auth_req_id}",
                                      data={"csrf": "x", "decision": "approve"})
        assert pressed.status_code == 403
    assert (await live.poll(auth_req_id)).json()["error"] == "authorization_pending"


async def test_the_link_opens_its_phone_and_the_page_keeps_it(live: Live) -> None:
    number, other = live.number("approves"), live.number("denies-consent")
    live.operator.handsets.send(number, "code", f"Your code is {CODE}", code=CODE)
    admin = {"Authorization": f"Bearer {live.operator.config.admin_secret}"}
    assert (await live.http.get(f"/admin/handsets/{number}")).status_code == 401
    assert (await live.http.get("/admin/handsets/+34699999999", headers=admin)
            ).status_code == 404
    given = await live.http.get(f"/admin/handsets/{number}", headers=admin)
    assert given.status_code == 200
    link = urlsplit(given.json()["url"])
    async with _client(live.operator, "198.51.100.67") as browser:
        opened = await browser.get(f"{link.path}?{link.query}")
        assert opened.status_code == 200 and CODE in opened.text
        feed = await browser.get(f"/handset/{number}/messages")  # the script's reload: no key
        assert feed.status_code == 200 and CODE in feed.text
        assert (await browser.get(f"/handset/{other}")).status_code == 403, "that phone only"


async def test_its_own_data_connection_and_the_admin_open_the_phone(live: Live) -> None:
    number = live.number("approves")
    live.operator.handsets.send(number, "code", f"Your code is {CODE}", code=CODE)
    subscriber = live.operator.subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4 is not None
    async with _client(live.operator, subscriber.ipv4) as phone:
        assert (await phone.get(f"/handset/{number}")).status_code == 200
        assert (await phone.get(f"/handset/{live.number('denies-consent')}")
                ).status_code == 403, "only its own"
    admin = {"Authorization": f"Bearer {live.operator.config.admin_secret}"}
    async with _client(live.operator, "198.51.100.68") as operator_staff:
        shown = await operator_staff.get(f"/handset/{number}/messages", headers=admin)
        assert shown.status_code == 200 and CODE in shown.text
