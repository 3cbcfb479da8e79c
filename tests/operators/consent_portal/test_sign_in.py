"""Signing in to /my: by a code sent to the handset, or by the network from the device."""

from __future__ import annotations

import pytest

from operators.consent_portal.one_time_codes import MAX_ATTEMPTS, MAX_SENDS
from tests.operators.gateway.conftest import FakeClock, Harness

from .conftest import Browser, BrowserFactory


async def test_sign_in_with_the_code_sent_to_the_handset(harness: Harness,
                                                         browser: Browser) -> None:
    number = harness.number("approves")
    assert (await browser.http.get("/my/consents")).headers["location"] == "/my/sign-in"
    await browser.sign_in(number)
    page = await browser.http.get("/my/consents")
    assert page.status_code == 200
    assert number in page.text
    cookie = page.headers.get("set-cookie", "").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/my" in cookie
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_code_never_appears_on_the_page(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    asked = await browser.ask_code(number)
    assert browser.last_code(number) not in asked.text


async def test_a_wrong_code_is_refused(harness: Harness, browser: Browser) -> None:
    number = harness.number("approves")
    await browser.ask_code(number)
    wrong = f"{(int(browser.last_code(number)) + 1) % 1_000_000:06d}"
    answer = await browser.post("/my/sign-in/code", number=number, code=wrong)
    assert answer.status_code == 400
    assert "not right" in answer.text
    assert not await browser.signed_in()


async def test_an_expired_code_is_refused(harness: Harness, browser: Browser,
                                          clock: FakeClock) -> None:
    number = harness.number("approves")
    await browser.ask_code(number)
    clock.advance(301)
    answer = await browser.post("/my/sign-in/code", number=number,
                                code=browser.last_code(number))
    assert answer.status_code == 400
    assert "no longer be used" in answer.text
    assert not await browser.signed_in()


async def test_after_five_wrong_codes_even_the_right_one_is_refused(
    harness: Harness, browser: Browser
) -> None:
    number = harness.number("approves")
    await browser.ask_code(number)
    right = browser.last_code(number)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(MAX_ATTEMPTS):
        assert (await browser.post("/my/sign-in/code", number=number, code=wrong)).status_code \
            == 400
    refused = await browser.post("/my/sign-in/code", number=number, code=right)
    assert refused.status_code == 400
    assert "Send a new code" in refused.text
    await browser.sign_in(number)  # a new code works


async def test_a_code_is_used_once(harness: Harness, browsers: BrowserFactory) -> None:
    number = harness.number("approves")
    first, second = browsers(), browsers()
    await first.sign_in(number)
    replayed = await second.post("/my/sign-in/code", number=number,
                                 code=first.last_code(number))
    assert replayed.status_code == 400


async def test_sending_codes_is_throttled_per_number(harness: Harness, browser: Browser,
                                                     clock: FakeClock) -> None:
    number = harness.number("approves")
    for _ in range(MAX_SENDS):
        assert (await browser.ask_code(number)).status_code == 200
    throttled = await browser.ask_code(number)
    assert throttled.status_code == 429
    assert len([m for m in harness.operator.handsets.messages(number) if m.kind == "code"]) \
        == MAX_SENDS
    other = harness.number("roaming")
    assert (await browser.ask_code(other)).status_code == 200  # per number
    clock.advance(601)
    assert (await browser.ask_code(number)).status_code == 200


async def test_an_unknown_number_gets_the_same_answer(harness: Harness,
                                                      browser: Browser) -> None:
    known, unknown = harness.number("approves"), "+34619999999"
    assert harness.operator.subscribers.get(unknown) is None
    to_known = await browser.ask_code(known)
    to_unknown = await browser.ask_code(unknown)
    assert to_known.status_code == to_unknown.status_code == 200
    csrf = await browser.csrf()
    assert (to_known.text.replace(known, "N").replace(csrf, "T")
            == to_unknown.text.replace(unknown, "N").replace(csrf, "T"))
    assert harness.operator.handsets.messages(unknown) == []
    refused = await browser.post("/my/sign-in/code", number=unknown, code="123456")
    assert refused.status_code == 400


async def test_from_the_device_the_network_signs_in_without_code(
    harness: Harness, browsers: BrowserFactory
) -> None:
    number = harness.number("approves")
    address = harness.operator.subscribers.get(number).ipv4  # type: ignore[union-attr]
    assert address is not None
    on_device = browsers(address)
    signed = await on_device.post("/my/sign-in", number=number)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/my/consents"
    assert await on_device.signed_in()
    assert harness.operator.handsets.messages(number) == []


async def test_the_device_of_one_subscriber_does_not_sign_in_another(
    harness: Harness, browsers: BrowserFactory
) -> None:
    mine = harness.operator.subscribers.get(harness.number("approves"))
    assert mine is not None and mine.ipv4 is not None
    on_device = browsers(mine.ipv4)
    answer = await on_device.post("/my/sign-in", number=harness.number("roaming"))
    assert answer.status_code == 200  # a code is sent to the other number instead
    assert not await on_device.signed_in()


async def test_a_post_without_its_csrf_token_is_refused(harness: Harness,
                                                        browser: Browser) -> None:
    number = harness.number("approves")
    refused = await browser.post("/my/sign-in", csrf=False, number=number)
    assert refused.status_code == 403
    assert harness.operator.handsets.messages(number) == []
    forged = await browser.http.post("/my/sign-in", data={"number": number, "csrf": "x" * 43})
    assert forged.status_code == 403


async def test_a_session_expires(harness: Harness, browser: Browser, clock: FakeClock) -> None:
    await browser.sign_in(harness.number("approves"))
    clock.advance(31 * 60)
    assert (await browser.http.get("/my/consents")).status_code == 303


async def test_a_forged_cookie_is_ignored(harness: Harness, browser: Browser) -> None:
    await browser.sign_in(harness.number("approves"))
    cookie = browser.http.cookies.get("ogsim_my")
    assert cookie is not None
    body, mac = cookie.split(".")
    browser.http.cookies.clear()
    browser.http.cookies.set("ogsim_my", f"{body}.{mac[:-2]}AA", domain="telco-es.ogsim.test",
                             path="/my")
    assert (await browser.http.get("/my/consents")).status_code == 303


async def test_sign_out(harness: Harness, browser: Browser, browsers: BrowserFactory) -> None:
    await browser.sign_in(harness.number("approves"))
    cookie = browser.http.cookies.get("ogsim_my")
    assert cookie is not None
    out = await browser.post("/my/sign-out")
    assert out.status_code == 200
    assert "signed out" in out.text
    assert not await browser.signed_in()
    # a copy of the cookie taken before (another browser, a shared computer) opens nothing
    copy = browsers()
    copy.http.cookies.set("ogsim_my", cookie, domain="telco-es.ogsim.test", path="/my")
    assert (await copy.http.get("/my/consents")).status_code == 303


@pytest.mark.parametrize("number", ["", "600000001", "+0123456789", "+34 abc", "+3" + "4" * 20])
async def test_a_bad_number_gets_a_400_page(browser: Browser, number: str) -> None:
    answer = await browser.post("/my/sign-in", number=number)
    assert answer.status_code == 400
    assert "international format" in answer.text


async def test_malformed_forms_get_400_pages(harness: Harness, browser: Browser) -> None:
    csrf = await browser.csrf()
    number = harness.number("approves")
    as_json = await browser.http.post("/my/sign-in", json={"number": number, "csrf": csrf})
    repeated = await browser.http.post(
        "/my/sign-in", content=f"csrf={csrf}&number={number}&number={number}",
        headers={"content-type": "application/x-www-form-urlencoded"})
    huge = await browser.http.post("/my/sign-in", data={"csrf": csrf, "number": "1" * 10_000})
    bad_utf8 = await browser.http.post(
        "/my/sign-in", content=b"csrf=" + csrf.encode() + b"&number=%ff%fe",
        headers={"content-type": "application/x-www-form-urlencoded"})
    letters = await browser.post("/my/sign-in/code", number=number, code="abcdef")
    for answer in (as_json, repeated, huge, bad_utf8, letters):
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("text/html")


POSTS = ("/my/sign-in", "/my/sign-in/code", "/my/sign-out", "/my/consents/x/revoke",
         "/my/applications/x/revoke", "/my/purposes/opt-out", "/my/purposes/opt-in")


@pytest.mark.parametrize("path", POSTS)
async def test_garbage_at_every_form_is_a_page_never_a_500(
    harness: Harness, browser: Browser, path: str
) -> None:
    await browser.sign_in(harness.number("approves"))
    csrf = await browser.csrf("/my/consents")
    form = {"content-type": "application/x-www-form-urlencoded"}
    bodies: list[tuple[dict[str, str], bytes]] = [
        ({}, b""),
        (form, b""),
        (form, b"%%%&&&==="),
        (form, f"csrf={csrf}&number=%00&code=%00&purpose=%00".encode()),
        (form, f"csrf={csrf}&".encode() + b"a=1&" * 40),
        (form, f"csrf={csrf}&number=".encode() + b"9" * 5000),
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
        ({"content-type": "application/json"}, b'{"csrf": "' + csrf.encode() + b'"}'),
    ]
    for headers, body in bodies:
        answer = await browser.http.post(path, content=body, headers=headers)
        assert answer.status_code in (200, 303, 400, 403, 404, 429), (path, body, answer.text)
        assert answer.headers["content-type"].startswith("text/html")


async def test_an_unknown_page_is_a_404_page(browser: Browser) -> None:
    for path in ("/my/nothing", "/my/consents/x/revoke", "/my/a/b/c"):
        answer = await browser.http.get(path)
        assert answer.status_code == 404
        assert "no such page" in answer.text


async def test_non_ascii_cookies_and_csrf_tokens_are_refused_not_500(
    harness: Harness, browser: Browser
) -> None:
    """Session and CSRF MACs are compared as bytes: a non-ASCII value is a forgery, not a 500."""
    await browser.sign_in(harness.number("approves"))
    cookie = browser.http.cookies.get("ogsim_my")
    assert cookie is not None
    browser.http.cookies.clear()
    answer = await browser.http.get(
        "/my/consents", headers={"cookie": f"ogsim_my={cookie[:-1]}\u00e9".encode()}
    )
    assert answer.status_code == 303
    browser.http.cookies.set("ogsim_my", cookie, domain="telco-es.ogsim.test", path="/my")
    refused = await browser.http.post("/my/sign-out", data={"csrf": "\u00e9"})
    assert refused.status_code == 403
    assert await browser.signed_in()
