"""Forgotten passwords: the mailed link, what it changes (password, sessions, the address's
confirmation), what the form tells a stranger (nothing), and who gets what."""

from __future__ import annotations

import re

from operators.portal.login_throttle import WINDOW
from operators.portal.password_reset import ASKS_PER_ADDRESS, RESET_INTERVAL, RESET_LIFETIME
from tests.operators.portal.conftest import PASSWORD, Browser, FakeClock, Portal

EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"
_CSRF = re.compile(r'name="csrf" value="[^"]*"')
_RESET = re.compile(r"https?://[^/\s]+(/portal/password\?code=[\w-]+)")


async def _ask(portal: Portal, email: str) -> str:
    """Ask for a reset from a browser nobody signed in on; the page's text."""
    answer = await portal.browser().post("/portal/password/forgot", {"email": email},
                                         csrf_from="/portal/password/forgot")
    assert answer.status_code == 200
    return answer.text


def _reset_paths(portal: Portal, email: str) -> list[str]:
    return [found.group(1) for message in portal.parts.outbox.messages(email)
            if (found := _RESET.search(message.body)) is not None]


async def _set(browser: Browser, path: str, password: str) -> int:
    """Submit the link's form from a browser not signed in (the CSRF token read from the
    sign-in page: a used or expired link's page has no form)."""
    code = path.split("code=")[1]
    return (await browser.post("/portal/password", {"code": code, "password": password},
                               csrf_from="/portal/sign-in")).status_code


async def test_a_mailed_link_sets_a_new_password_and_ends_the_other_sessions(
        portal: Portal, developer: Browser) -> None:
    assert (await developer.get("/portal")).status_code == 200
    page = await _ask(portal, EMAIL)
    assert 'id="reset-asked"' in page
    (path,) = _reset_paths(portal, EMAIL)
    elsewhere = portal.browser()
    shown = await elsewhere.get(path)
    assert shown.status_code == 200 and "Choose a new password" in shown.text
    assert await _set(elsewhere, path, "short") == 400, "a weak password spends nothing"
    assert await _set(elsewhere, path, NEW_PASSWORD) == 303
    assert (await elsewhere.get("/portal")).status_code == 200, "signed in with it"
    assert (await developer.get("/portal")).status_code == 303, "the old session ended"
    assert (await portal.browser().sign_in(EMAIL, PASSWORD)).status_code == 401
    assert (await portal.browser().sign_in(EMAIL, NEW_PASSWORD)).status_code == 303
    ada = portal.parts.accounts.by_email(EMAIL)
    assert ada is not None and ada.email_confirmed, "the mail was read at the address"
    portal.operator.activity.flush()
    assert [a.kind for a in portal.operator.activity.read()].count("email_confirmed") == 1
    assert await _set(portal.browser(), path, "yet another passphrase") == 400, "used once"


async def test_the_form_tells_a_stranger_nothing(portal: Portal, developer: Browser) -> None:
    known = await _ask(portal, EMAIL)
    unknown = await _ask(portal, "nobody@example.com")
    def shown(page: str, email: str) -> str:
        return _CSRF.sub("", page.replace(email, "X"))

    assert shown(known, EMAIL) == shown(unknown, "nobody@example.com")
    assert portal.parts.outbox.messages("nobody@example.com") == []
    assert len(_reset_paths(portal, EMAIL)) == 1


async def test_one_mail_a_minute_and_a_link_lasts_an_hour(
        portal: Portal, developer: Browser, clock: FakeClock) -> None:
    await _ask(portal, EMAIL)
    await _ask(portal, EMAIL)
    assert len(_reset_paths(portal, EMAIL)) == 1
    clock.advance(RESET_INTERVAL)
    await _ask(portal, EMAIL)
    newest, oldest = _reset_paths(portal, EMAIL)
    clock.advance(RESET_LIFETIME - RESET_INTERVAL)
    assert await _set(portal.browser(), oldest, NEW_PASSWORD) == 400, "an hour old"
    assert await _set(portal.browser(), newest, NEW_PASSWORD) == 303


async def test_a_federated_member_is_told_to_use_corporate_sign_in(
        portal: Portal, developer: Browser) -> None:
    ada = portal.parts.accounts.by_email(EMAIL)
    assert ada is not None
    portal.parts.accounts.set_idp(ada.org_id, "https://idp.acme.example")
    await _ask(portal, EMAIL)
    note = next(m for m in portal.parts.outbox.messages(EMAIL)
                if m.subject.startswith("Choose a new password"))
    assert f"/portal/sign-in/corporate?org={ada.org_id}" in note.body
    assert _reset_paths(portal, EMAIL) == [], "no link that would set a password"
    await _ask(portal, EMAIL)
    notes = [m for m in portal.parts.outbox.messages(EMAIL) if m.subject == note.subject]
    assert len(notes) == 1, "one note a minute too"


async def test_a_deactivated_member_is_mailed_nothing(portal: Portal, developer: Browser) -> None:
    ada = portal.parts.accounts.by_email(EMAIL)
    assert ada is not None
    portal.parts.deactivate(ada.developer_id)
    await _ask(portal, EMAIL)
    assert _reset_paths(portal, EMAIL) == []


async def test_one_client_address_asks_a_bounded_number_of_times_whoever_it_names(
        portal: Portal, developer: Browser, clock: FakeClock) -> None:
    """Knowing many members' addresses, one client could add a mail a minute per member to
    the outbox: past ASKS_PER_ADDRESS asks in the window the form answers 429, and mails
    nothing, whether or not the address it names has an account."""
    flooder = portal.browser("198.51.100.40")
    for n in range(ASKS_PER_ADDRESS):
        answer = await flooder.post("/portal/password/forgot", {"email": f"m{n}@example.com"},
                                    csrf_from="/portal/password/forgot")
        assert answer.status_code == 200
    refused = await flooder.post("/portal/password/forgot", {"email": EMAIL},
                                 csrf_from="/portal/password/forgot")
    assert refused.status_code == 429 and 'id="error"' in refused.text
    assert f'value="{EMAIL}"' in refused.text, "what was typed is kept"
    assert 0 < int(refused.headers["Retry-After"]) <= WINDOW
    assert _reset_paths(portal, EMAIL) == [], "nothing mailed for a refused ask"
    assert (await portal.browser("198.51.100.40").sign_in(EMAIL, PASSWORD)).status_code == 303, (
        "sign-in from that address is counted apart")
    await _ask(portal, EMAIL)  # another client address is heard
    assert len(_reset_paths(portal, EMAIL)) == 1
    clock.advance(WINDOW)
    again = await flooder.post("/portal/password/forgot", {"email": "m0@example.com"},
                               csrf_from="/portal/password/forgot")
    assert again.status_code == 200, "heard again once the window has passed"
