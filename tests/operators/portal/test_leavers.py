"""A developer who leaves (the kill switch) gets nothing back through the portal: not by an
invitation they sent before, not by a form they were still sending when they were cut off,
and not by a password account in an organisation its identity provider deprovisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from federation.client import OAuthClientError
from operators.portal import AccountError, ApplicationStatus
from operators.portal.developers import Developer
from operators.portal.password_links import PasswordLinks

from .conftest import FORM, FRAUD, PASSWORD, Browser, Portal


async def _join(portal: Portal, org_id: str, code: str, email: str) -> int:
    browser = portal.browser("198.51.100.20")
    answer = await browser.post(
        "/portal/join",
        {"org": org_id, "code": code, "email": email, "name": "Mallory", "password": PASSWORD},
        csrf_from=f"/portal/join?org={org_id}&code={code}",
    )
    return answer.status_code


async def test_a_leavers_unused_invitations_let_nobody_in(
    portal: Portal, developer: Browser
) -> None:
    accounts = portal.parts.accounts
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    grace = accounts.join(ada.org_id, "grace@example.com", "Grace", PASSWORD,
                          invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    kept = accounts.invite(grace.org_id, by=grace.developer_id)
    for_later = accounts.invite(ada.org_id, by=ada.developer_id)
    portal.parts.deactivate(grace.developer_id)  # Grace leaves, keeping her codes
    assert await _join(portal, grace.org_id, kept, "back-door@example.com") == 400
    assert accounts.by_email("back-door@example.com") is None
    assert await _join(portal, ada.org_id, for_later, "alan@example.com") == 303, (
        "a code sent by someone still there still works"
    )


def test_a_leaver_can_send_no_new_invitation(portal: Portal) -> None:
    accounts = portal.parts.accounts
    ada = accounts.sign_up("Acme", "ada@acme.example", "Ada", PASSWORD)
    accounts.deactivate(ada.developer_id)
    with pytest.raises(AccountError) as refused:
        accounts.invite(ada.org_id, by=ada.developer_id)
    assert refused.value.status == 403


async def test_a_form_still_arriving_when_its_sender_is_cut_off_does_nothing(
    portal: Portal, developer: Browser
) -> None:
    """The handler finds its developer before the body has come; the kill switch runs while
    it trickles in; the form is then refused (sign in again), and no invitation is made."""
    accounts = portal.parts.accounts
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    csrf = await developer.csrf("/portal")

    async def trickled() -> AsyncIterator[bytes]:
        yield b"x=1&"
        portal.parts.deactivate(ada.developer_id)  # the company deprovisions her now
        yield urlencode({"csrf": csrf}).encode()

    answer = await developer.http.post("/portal/invitations", content=trickled(), headers=FORM)
    assert answer.status_code == 303 and "/portal/sign-in" in answer.headers["location"]
    assert "join?org=" not in answer.text
    made = portal.operator.db.all("SELECT code_hash FROM portal_invitations")
    assert made == []


async def test_an_organisation_on_its_identity_provider_takes_no_password_joins(
    portal: Portal, developer: Browser
) -> None:
    accounts = portal.parts.accounts
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    code = accounts.invite(ada.org_id, by=ada.developer_id)
    accounts.set_idp(ada.org_id, "https://idp.acme.example")  # SCIM deprovisions from now on
    assert await _join(portal, ada.org_id, code, "password-only@example.com") == 400
    assert accounts.by_email("password-only@example.com") is None
    answer = await developer.post("/portal/invitations", csrf_from="/portal")
    assert answer.status_code == 400 and "identity provider" in answer.text


async def test_keys_a_leaver_set_on_a_colleagues_application_stop_working(
    portal: Portal,
) -> None:
    """Grace rotated Ada's application's key and took the private key with her: the kill
    switch withdraws that key (and the tokens it got) without suspending Ada's application,
    which works again once Ada rotates."""
    accounts = portal.parts.accounts
    ada = accounts.sign_up("Acme", "ada@acme.example", "Ada", PASSWORD)
    grace = accounts.join(ada.org_id, "grace@acme.example", "Grace", PASSWORD,
                          invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    application, _ = accounts.create_application(ada, "Ada's", ["sim-swap"], [FRAUD], None)
    graces_key = accounts.rotate_key(ada.org_id, application.client_id, None,
                                     by=grace.developer_id)
    assert graces_key is not None
    leaver = await portal.application_client(application.client_id, graces_key)
    token = (await leaver.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    portal.parts.deactivate(grace.developer_id)
    with pytest.raises(OAuthClientError):
        await leaver.client_credentials(f"sim-swap:check {FRAUD}")
    introspected = portal.operator.identity.tokens.introspect(token)
    assert introspected["active"] is False, "what her key got is revoked too"
    still = accounts.application(application.client_id)
    assert still is not None and still.status is ApplicationStatus.ACTIVE
    adas_key = accounts.rotate_key(ada.org_id, application.client_id, None,
                                   by=ada.developer_id)
    assert adas_key is not None
    owner = await portal.application_client(application.client_id, adas_key)
    assert "access_token" in await owner.client_credentials(f"sim-swap:check {FRAUD}")


async def test_tokens_a_leaver_took_survive_no_rotation_after_they_held_the_key(
    portal: Portal,
) -> None:
    """Grace rotated Ada's application's key and took a token with it; Ada rotated the key
    again (so the application's keys are no longer Grace's). A rotation only refuses the old
    key from then on: the kill switch still revokes what Grace got while she held it, and
    leaves the tokens Ada got after her rotation alone."""
    accounts = portal.parts.accounts
    ada = accounts.sign_up("Acme", "ada@acme.example", "Ada", PASSWORD)
    grace = accounts.join(ada.org_id, "grace@acme.example", "Grace", PASSWORD,
                          invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    application, _ = accounts.create_application(ada, "Ada's", ["sim-swap"], [FRAUD], None)
    client_id = application.client_id
    graces_key = accounts.rotate_key(ada.org_id, client_id, None, by=grace.developer_id)
    assert graces_key is not None
    leaver = await portal.application_client(client_id, graces_key)
    graces = (await leaver.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    portal.clock.advance(10)
    adas_key = accounts.rotate_key(ada.org_id, client_id, None, by=ada.developer_id)
    assert adas_key is not None
    portal.clock.advance(10)
    owner = await portal.application_client(client_id, adas_key)
    adas = (await owner.client_credentials(f"sim-swap:check {FRAUD}"))["access_token"]
    portal.clock.advance(60)
    assert portal.parts.deactivate(grace.developer_id) == []
    tokens = portal.operator.identity.tokens
    assert tokens.introspect(graces)["active"] is False, "taken while Grace held the key"
    assert tokens.introspect(adas)["active"] is True, "taken with Ada's own key"
    still = accounts.application(client_id)
    assert still is not None and still.status is ApplicationStatus.ACTIVE


async def test_a_sign_in_that_ends_after_its_member_is_cut_off_leaves_no_session(
    portal: Portal, developer: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kill switch lands while the password is being checked: the sign-in is refused,
    and no session is written that would work again were the member reactivated."""
    accounts = portal.parts.accounts
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    checked = accounts.authenticate

    def cut_off_while_checking(email: str, password: str) -> Developer | None:
        found = checked(email, password)
        portal.parts.deactivate(ada.developer_id)
        return found

    monkeypatch.setattr(accounts, "authenticate", cut_off_while_checking)
    late = portal.browser("198.51.100.30")
    answer = await late.sign_in("ada@example.com")
    assert answer.status_code == 403 and "no longer active" in answer.text
    accounts.reactivate(ada.developer_id)
    assert (await late.get("/portal")).status_code == 303, "no session was left behind"
    live = portal.operator.db.one("SELECT COUNT(*) AS n FROM portal_dev_sessions"
                                  " WHERE developer_id = ? AND ended_at IS NULL",
                                  (ada.developer_id,))
    assert live is not None and live["n"] == 0


async def test_a_password_set_as_its_member_is_cut_off_leaves_no_session(
    portal: Portal, developer: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset link is redeemed, then the kill switch lands before the new session is
    written: the page says the account is no longer active, and reactivation brings back
    no session."""
    accounts = portal.parts.accounts
    ada = accounts.by_email("ada@example.com")
    assert ada is not None
    redeem = PasswordLinks.redeem

    def cut_off_after_redeeming(links: PasswordLinks, code: str, password: str) -> Developer:
        redeemed = redeem(links, code, password)
        portal.parts.deactivate(ada.developer_id)
        return redeemed

    monkeypatch.setattr(PasswordLinks, "redeem", cut_off_after_redeeming)
    asked = await portal.browser().post("/portal/password/forgot", {"email": ada.email},
                                        csrf_from="/portal/password/forgot")
    assert asked.status_code == 200
    (message,) = portal.parts.outbox.messages(ada.email)[:1]
    code = message.body.split("code=")[1].split()[0]
    setter = portal.browser("198.51.100.31")
    answer = await setter.post("/portal/password", {"code": code, "password": "a new passphrase"},
                               csrf_from="/portal/sign-in")
    assert answer.status_code == 403 and "no longer active" in answer.text
    accounts.reactivate(ada.developer_id)
    assert (await setter.get("/portal")).status_code == 303, "no session was left behind"
