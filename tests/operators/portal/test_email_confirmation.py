"""Address confirmation: the link mailed to the outbox at sign-up and join, what it takes to
confirm, what an unconfirmed member cannot do, and the operator admin's outbox page."""

from __future__ import annotations

import base64

import pytest

import operators.portal.outbox as outbox_module
from operators.portal.accounts import AccountError
from operators.portal.email_confirmation import LINK_LIFETIME, RESEND_INTERVAL
from operators.storage import Database
from tests.operators.portal.conftest import (
    ADMIN_SECRET,
    PASSWORD,
    Browser,
    FakeClock,
    Portal,
    client_id_of,
    confirmation_path,
)

EMAIL = "ada@example.com"
ADMIN = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_SECRET}".encode()).decode()}


def _confirmed(portal: Portal, email: str = EMAIL) -> bool:
    developer = portal.parts.accounts.by_email(email)
    assert developer is not None
    return developer.email_confirmed


async def _post_code(portal: Portal, path: str) -> int:
    """POST the link's code from a browser nobody signed in on (none is needed), the CSRF
    token read from the sign-in page (a used or expired link's page has no form)."""
    return (await portal.browser().post("/portal/email/confirm",
                                        {"code": path.split("code=")[1]})).status_code


async def _ask_production(developer: Browser, client_id: str) -> int:
    page = f"/portal/applications/{client_id}"
    return (await developer.post(f"{page}/production", csrf_from=page)).status_code


async def test_sign_up_mails_a_link_and_production_waits_for_it(
        portal: Portal, developer: Browser) -> None:
    (message,) = portal.parts.outbox.messages(EMAIL)
    assert message.subject == "Confirm your address for the developer portal"
    assert f"{portal.operator.api_root}/portal/email/confirm?code=" in message.body
    home = await developer.get("/portal")
    assert 'id="confirm-address"' in home.text and EMAIL in home.text
    client_id = client_id_of((await developer.create_application()).text)
    assert await _ask_production(developer, client_id) == 403
    assert not _confirmed(portal)

    path = confirmation_path(portal, EMAIL)
    shown = await developer.get(path)
    assert shown.status_code == 200 and 'id="confirm-email-submit"' in shown.text
    assert not _confirmed(portal), "opening the link (a mail scanner does) confirms nothing"
    confirmed = await developer.confirm_email(portal, EMAIL)
    assert confirmed.status_code == 200 and 'id="email-confirmed"' in confirmed.text
    assert _confirmed(portal)
    assert 'id="confirm-address"' not in (await developer.get("/portal")).text
    assert await _ask_production(developer, client_id) == 303
    portal.operator.activity.flush()
    kinds = [activity.kind for activity in portal.operator.activity.read()]
    assert kinds.count("email_confirmed") == 1, "a milestone of the funnel"


async def test_a_link_is_good_once_for_a_day_and_only_while_its_member_is_active(
        portal: Portal, clock: FakeClock) -> None:
    ada, grace, eve = portal.browser(), portal.browser(), portal.browser()
    for browser, email in ((ada, EMAIL), (grace, "grace@example.com"), (eve, "eve@example.com")):
        assert (await browser.sign_up(email, organisation=email)).status_code == 303
    assert (await ada.confirm_email(portal, EMAIL)).status_code == 200
    again = await ada.get(confirmation_path(portal, EMAIL))
    assert again.status_code == 400 and "unknown, used or expired" in again.text
    assert await _post_code(portal, confirmation_path(portal, EMAIL)) == 400

    stale = confirmation_path(portal, "grace@example.com")
    clock.advance(LINK_LIFETIME)
    assert (await grace.get(stale)).status_code == 400
    assert await _post_code(portal, stale) == 400
    assert not _confirmed(portal, "grace@example.com")

    leaver = portal.parts.accounts.by_email("eve@example.com")
    assert leaver is not None
    portal.parts.deactivate(leaver.developer_id)
    path = confirmation_path(portal, "eve@example.com")
    assert await _post_code(portal, path) == 400
    assert not _confirmed(portal, "eve@example.com")


async def test_a_new_link_once_a_minute_and_either_link_confirms(
        portal: Portal, developer: Browser, clock: FakeClock) -> None:
    first = confirmation_path(portal, EMAIL)
    refused = await developer.post("/portal/email/confirmation", csrf_from="/portal")
    assert refused.status_code == 429 and "less than a minute" in refused.text
    clock.advance(RESEND_INTERVAL)
    sent = await developer.post("/portal/email/confirmation", csrf_from="/portal")
    assert sent.status_code == 303
    assert "on its way" in (await developer.get(sent.headers["location"])).text
    second = confirmation_path(portal, EMAIL)
    assert second != first and len(portal.parts.outbox.messages(EMAIL)) == 2
    code = first.split("code=")[1]
    confirmed = await developer.post("/portal/email/confirm", {"code": code}, csrf_from=first)
    assert confirmed.status_code == 200 and _confirmed(portal)
    spent = await developer.post("/portal/email/confirm", {"code": second.split("code=")[1]},
                                 csrf_from="/portal")
    assert spent.status_code == 400, "confirming spends every link of the member's"
    clock.advance(RESEND_INTERVAL)
    done = await developer.post("/portal/email/confirmation", csrf_from="/portal")
    assert done.status_code == 409, "nothing to confirm any more"


async def test_joining_by_invitation_mails_a_link_too(portal: Portal, developer: Browser) -> None:
    ada = portal.parts.accounts.by_email(EMAIL)
    assert ada is not None
    code = portal.parts.accounts.invite(ada.org_id, by=ada.developer_id)
    joined = await portal.browser().post("/portal/join", {
        "org": ada.org_id, "code": code, "name": "Grace Hopper", "email": "grace@example.com",
        "password": PASSWORD}, csrf_from=f"/portal/join?org={ada.org_id}&code={code}")
    assert joined.status_code == 303
    assert len(portal.parts.outbox.messages("grace@example.com")) == 1
    assert not _confirmed(portal, "grace@example.com")


def test_a_provider_vouches_for_its_members_addresses(portal: Portal) -> None:
    """Created through the organisation's identity provider, or a password member linked to
    it: confirmed, as the provider's ID token says (``email_verified``)."""
    accounts = portal.parts.accounts
    ada = accounts.sign_up("Acme", EMAIL, "Ada", PASSWORD)
    assert not ada.email_confirmed
    accounts.set_idp(ada.org_id, "https://idp.acme.example")
    linked = accounts.create_federated(ada.org_id, "sub-ada", EMAIL, "Ada")
    assert linked.developer_id == ada.developer_id and linked.email_confirmed
    grace = accounts.create_federated(ada.org_id, "sub-grace", "grace@acme.example", "Grace")
    assert grace.email_confirmed
    assert portal.parts.outbox.messages() == [], "nobody to mail"
    with pytest.raises(AccountError) as refused:
        portal.parts.confirmations.send(grace)
    assert refused.value.status == 409


def test_members_from_before_confirmation_keep_what_they_had(clock: FakeClock) -> None:
    """A database written before the rule: its members count as confirmed (their production
    applications stay theirs), and new password members do not."""
    from operators.portal.accounts import DeveloperAccounts

    db = Database()
    db.ensure_schema("""
        CREATE TABLE portal_organisations (org_id TEXT PRIMARY KEY, name TEXT NOT NULL,
            created_at REAL NOT NULL, idp_issuer TEXT);
        CREATE TABLE portal_developers (developer_id TEXT PRIMARY KEY, org_id TEXT NOT NULL,
            email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, password_hash TEXT,
            active INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL, external_subject TEXT, deactivated_at REAL,
            UNIQUE (org_id, external_subject));
        INSERT INTO portal_organisations VALUES ('org-old', 'Old', 0, NULL);
        INSERT INTO portal_developers (developer_id, org_id, email, name, created_at,
            last_seen_at) VALUES ('dev-old', 'org-old', 'old@example.com', 'Old', 0, 0);
    """)
    from operators.config import example_operator
    from operators.operator import Operator

    identity = Operator.from_config(example_operator(), clock=clock, monotonic=clock).identity
    accounts = DeveloperAccounts(db, identity, clock)
    old = accounts.developer("dev-old")
    assert old is not None and old.email_confirmed
    new = accounts.sign_up("New", "new@example.com", "New", PASSWORD)
    assert not new.email_confirmed
    db.execute("INSERT INTO portal_developers (developer_id, org_id, email, name, created_at,"
               " last_seen_at) VALUES ('dev-r', 'org-old', 'r@example.com', 'R', 1, 1)")
    replica = accounts.developer("dev-r")  # as a replica of the release before inserts it
    assert replica is not None and not replica.email_confirmed, "forgetting the column fails closed"


async def test_a_leaver_taken_back_finds_their_old_links_spent(
        portal: Portal, developer: Browser) -> None:
    """Before, deactivation left them working: reactivated (SCIM ``active: true``), the
    member's old reset and confirmation links opened the account again."""
    ada = portal.parts.accounts.by_email(EMAIL)
    assert ada is not None
    confirm = confirmation_path(portal, EMAIL)
    await portal.browser().post("/portal/password/forgot", {"email": EMAIL},
                                csrf_from="/portal/password/forgot")
    reset = next(m for m in portal.parts.outbox.messages(EMAIL)
                 if m.subject.startswith("Choose")).body.split("/portal/password?code=")[1]
    portal.parts.deactivate(ada.developer_id)
    portal.parts.accounts.reactivate(ada.developer_id)
    assert await _post_code(portal, confirm) == 400
    stranger = portal.browser()
    reset_answer = await stranger.post("/portal/password", {
        "code": reset.split()[0], "password": "a password for the taking"})
    assert reset_answer.status_code == 400
    assert not _confirmed(portal)


async def test_a_name_with_a_line_break_is_refused(portal: Portal) -> None:
    """It heads the mail sent to a typed address: no room for a second paragraph."""
    refused = await portal.browser().sign_up("victim@example.com",
                                             name="Eve\nUrgent: sign in at http://evil.test")
    assert refused.status_code == 400 and "line breaks" in refused.text
    assert portal.parts.outbox.messages("victim@example.com") == []


async def test_the_outbox_page_is_the_admins_and_shows_the_mail(
        portal: Portal, developer: Browser) -> None:
    assert (await developer.get("/portal/admin/outbox")).status_code == 401
    page = await portal.browser().get("/portal/admin/outbox", headers=ADMIN)
    assert page.status_code == 200
    assert EMAIL in page.text and "/portal/email/confirm?code=" in page.text
    for n in range(3):
        portal.parts.outbox.send(f"noise{n}@example.com", "Noise", f"noise {n}")
    only = await portal.browser().get("/portal/admin/outbox", params={"to": " Ada@Example.com"},
                                      headers=ADMIN)
    assert only.status_code == 200 and "/portal/email/confirm?code=" in only.text
    assert "noise" not in only.text, "one recipient's mail, however much else came since"


def test_the_outbox_keeps_the_newest_messages_only(
        portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "MAX_MESSAGES", 5)
    for n in range(8):
        portal.parts.outbox.send(f"dev{n}@example.com", "Hello", f"message {n}")
    kept = [message.body for message in portal.parts.outbox.messages()]
    assert kept == [f"message {n}" for n in range(7, 2, -1)]
