"""Two edges of the subscriber's portal: a session ends when its number is no longer served
here (ported out), and withdrawing a consent already withdrawn changes nothing and tells the
phone nothing again (before, each repeat sent another "You withdrew..." message)."""

from __future__ import annotations

from operators.subscriber_base import ChangeKind
from tests.operators.gateway.conftest import Harness

from .conftest import Browser, ciba_consent


async def test_a_number_ported_out_is_signed_out(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    await browser.sign_in(number)
    assert (await browser.http.get("/my/access-log.json")).status_code == 200
    harness.operator.subscribers.record_change(
        number, ChangeKind.PORT_OUT, {"operator": "telco-fr"}
    )
    assert harness.operator.subscribers.get(number) is None
    assert not await browser.signed_in()
    log = await browser.http.get("/my/access-log.json")
    assert log.status_code != 200 and number not in log.text


async def test_withdrawing_twice_tells_the_phone_once(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    await ciba_consent(harness)
    await browser.sign_in(number)
    (consent,) = harness.operator.identity.consents.for_subscriber(number)
    pages = [await browser.post(f"/my/consents/{consent.id}/revoke") for _ in range(3)]
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert "Consent withdrawn" in pages[0].text
    assert "already withdrawn" in pages[1].text and "already withdrawn" in pages[2].text
    notices = [
        m for m in harness.operator.handsets.messages(number)
        if m.kind == "consent" and "You withdrew" in m.text
    ]
    assert len(notices) == 1
