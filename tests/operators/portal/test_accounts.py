"""The accounts store: passwords, sign-up rules, invitations, the kill switch, the orphan report;
and the login throttle on a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from operators.portal import ApplicationStatus, Environment, LoginThrottle
from operators.portal.accounts import AccountError, DeveloperAccounts
from operators.portal.passwords import hash_password, verify_password
from operators.storage import Database
from tests.operators.portal.conftest import (
    FRAUD,
    PASSWORD,
    FakeClock,
    Portal,
    confirm_address,
)

DAY = 86400.0


@pytest.fixture
def accounts(portal: Portal) -> DeveloperAccounts:
    return portal.parts.accounts


def test_passwords_are_scrypt_with_a_salt_of_their_own() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "!", first)
    assert not verify_password(PASSWORD, "garbage")


def test_sign_up_normalises_the_email_and_authenticates(accounts: DeveloperAccounts) -> None:
    developer = accounts.sign_up("Acme", "  Ada@Example.COM ", "Ada", PASSWORD)
    assert developer.email == "ada@example.com" and developer.active
    organisation = accounts.organisation(developer.org_id)
    assert organisation is not None and organisation.name == "Acme"
    assert accounts.authenticate("ADA@example.com", PASSWORD) == developer
    assert accounts.authenticate("ada@example.com", "wrong password!") is None
    assert accounts.authenticate("nobody@example.com", PASSWORD) is None
    assert accounts.by_email("ada@EXAMPLE.com") == developer


def test_weak_password_duplicate_email_and_bad_fields_name_the_field(
        accounts: DeveloperAccounts) -> None:
    with pytest.raises(AccountError) as weak:
        accounts.sign_up("Acme", "ada@example.com", "Ada", "short")
    assert weak.value.field == "password" and weak.value.message.startswith("password:")
    assert "10 characters" in weak.value.message
    assert accounts.by_email("ada@example.com") is None, "nothing kept of a refused sign-up"
    accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    with pytest.raises(AccountError) as duplicate:
        accounts.sign_up("Other", "ADA@example.com", "Ada II", PASSWORD)
    assert (duplicate.value.status, duplicate.value.field) == (409, "email")
    with pytest.raises(AccountError) as email:
        accounts.sign_up("Acme", "not-an-email", "Ada", PASSWORD)
    assert email.value.field == "email"


def test_a_new_members_password_is_hashed_outside_any_transaction(
        accounts: DeveloperAccounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt takes tens of milliseconds; a transaction holds the database's lock and SQLite's
    write lock, so a hash inside one stalled every request of the operator and every replica's
    writes. Sign-up and join hash first; an address already taken costs no hash at all."""
    db = accounts.db
    hashed: list[bool] = []

    def spying_hash(password: str) -> str:
        hashed.append(db._conn.in_transaction)
        return hash_password(password)

    monkeypatch.setattr("operators.portal.accounts.hash_password", spying_hash)
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    code = accounts.invite(ada.org_id, by=ada.developer_id)
    accounts.join(ada.org_id, "bob@example.com", "Bob", PASSWORD, invitation=code)
    assert hashed == [False, False], "each hash ran with no transaction open"
    with pytest.raises(AccountError) as taken:
        accounts.sign_up("Other", "ADA@example.com", "Ada II", PASSWORD)
    assert taken.value.status == 409 and len(hashed) == 2, "a taken address is refused unhashed"


def test_an_invitation_lets_one_colleague_join_once_before_it_expires(
        accounts: DeveloperAccounts, clock: FakeClock) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    code = accounts.invite(ada.org_id, by=ada.developer_id)
    grace = accounts.join(ada.org_id, "grace@example.com", "Grace", PASSWORD, invitation=code)
    assert grace.org_id == ada.org_id
    with pytest.raises(AccountError, match="unknown, used or expired"):
        accounts.join(ada.org_id, "alan@example.com", "Alan", PASSWORD, invitation=code)
    late = accounts.invite(ada.org_id, by=ada.developer_id)
    clock.advance(8 * DAY)
    with pytest.raises(AccountError, match="unknown, used or expired"):
        accounts.join(ada.org_id, "alan@example.com", "Alan", PASSWORD, invitation=late)
    other = accounts.sign_up("Other", "bob@example.com", "Bob", PASSWORD)
    with pytest.raises(AccountError):
        accounts.join(other.org_id, "eve@example.com", "Eve", PASSWORD,
                      invitation=accounts.invite(ada.org_id, by=ada.developer_id))


def test_federated_developers_have_no_password(accounts: DeveloperAccounts) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    accounts.set_idp(ada.org_id, "https://idp.acme.example")
    grace = accounts.create_federated(ada.org_id, "user-42", "grace@acme.example", "Grace")
    assert accounts.by_external_subject(ada.org_id, "user-42") == grace
    assert accounts.by_external_subject("org-other", "user-42") is None
    assert accounts.authenticate("grace@acme.example", "") is None
    organisation = accounts.organisation(ada.org_id)
    assert organisation is not None and organisation.idp_issuer == "https://idp.acme.example"


def test_an_application_is_a_sandbox_private_key_jwt_client_and_its_key_is_not_kept(
        portal: Portal, accounts: DeveloperAccounts) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    application, private = accounts.create_application(ada, "Checks", ["sim-swap"], [FRAUD],
                                                       None)
    assert private is not None and "d" in private
    client = portal.operator.identity.clients.get(application.client_id)
    assert client is not None and client.environment == "sandbox"
    assert {"sim-swap:check", "sim-swap:retrieve-date"} <= client.scopes
    assert client.jwks["keys"][0]["kid"] == private["kid"]
    assert all("d" not in key for key in client.jwks["keys"])
    db = portal.operator.db
    tables = [r["name"] for r in db.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
    stored = "".join(str([tuple(r) for r in db.all(f"SELECT * FROM {t}")]) for t in tables)
    assert private["d"] not in stored, "the private key is never stored"
    assert application.environment is Environment.SANDBOX
    assert accounts.applications(ada.org_id) == [application]
    other = accounts.sign_up("Other", "bob@example.com", "Bob", PASSWORD)
    assert accounts.owned_application(other.org_id, application.client_id) is None
    with pytest.raises(AccountError) as refused:
        accounts.disable_application(other.org_id, application.client_id)
    assert refused.value.status == 404


def test_the_kill_switch_suspends_every_application_of_the_developer_only(
        portal: Portal, accounts: DeveloperAccounts) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    grace = accounts.join(ada.org_id, "grace@example.com", "Grace", PASSWORD,
                          invitation=accounts.invite(ada.org_id, by=ada.developer_id))
    first, _ = accounts.create_application(ada, "One", ["sim-swap"], [FRAUD], None)
    second, _ = accounts.create_application(ada, "Two", ["sim-swap"], [FRAUD], None)
    kept, _ = accounts.create_application(grace, "Grace's", ["sim-swap"], [FRAUD], None)
    assert accounts.deactivate(ada.developer_id) == [first.client_id, second.client_id]
    clients = portal.operator.identity.clients
    for client_id in (first.client_id, second.client_id):
        application = accounts.application(client_id)
        client = clients.get(client_id)
        assert application is not None and application.status is ApplicationStatus.SUSPENDED
        assert client is not None and client.disabled
    still = clients.get(kept.client_id)
    assert still is not None and not still.disabled
    developer = accounts.developer(ada.developer_id)
    assert developer is not None and not developer.active and developer.deactivated_at
    assert accounts.authenticate("ada@example.com", PASSWORD) is None


def test_the_orphan_report_lists_apps_of_deactivated_gone_or_unseen_owners(
        accounts: DeveloperAccounts, clock: FakeClock) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("Bobs", "bob@example.com", "Bob", PASSWORD)
    eve = accounts.sign_up("Eves", "eve@example.com", "Eve", PASSWORD)
    ada_app, _ = accounts.create_application(ada, "A", ["sim-swap"], [FRAUD], None)
    bob_app, _ = accounts.create_application(bob, "B", ["sim-swap"], [FRAUD], None)
    eve_app, _ = accounts.create_application(eve, "E", ["sim-swap"], [FRAUD], None)
    accounts.disable_application(eve.org_id, eve_app.client_id)
    assert accounts.orphans(30) == []
    clock.advance(31 * DAY)
    accounts.touch(bob.developer_id)
    listed = [(app.client_id, owner.email if owner else None)
              for app, owner, _ in accounts.orphans(30)]
    assert listed == [(ada_app.client_id, "ada@example.com")], "Eve's own disabled app is off"
    accounts.touch(ada.developer_id)
    accounts.deactivate(bob.developer_id)
    assert [(o.application.client_id, o.reason) for o in accounts.orphans(30)] == [
        (bob_app.client_id, "owner deactivated")]


def test_the_orphan_report_reads_as_often_for_forty_applications_as_for_one(
        accounts: DeveloperAccounts, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, it read each application's owner and organisation one query at a time."""
    reads: list[str] = []
    for method in ("all", "one"):
        original = getattr(Database, method)

        def counted(self: Database, sql: str, *args: object,
                    _original: Callable[..., object] = original) -> object:
            reads.append(sql)
            return _original(self, sql, *args)

        monkeypatch.setattr(Database, method, counted)

    def reads_of_report() -> tuple[int, list[str]]:
        reads.clear()
        report = accounts.orphans(30)
        return len(reads), [o.reason for o in report]

    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    accounts.create_application(ada, "A0", ["sim-swap"], [FRAUD], None)
    clock.advance(31 * DAY)
    one = reads_of_report()
    for n in range(1, 40):
        owner = accounts.sign_up(f"Org {n}", f"dev{n}@example.com", f"Dev {n}", PASSWORD)
        accounts.create_application(owner, f"A{n}", ["sim-swap"], [FRAUD], None)
        if n % 2:
            accounts.deactivate(owner.developer_id)
    clock.advance(31 * DAY)
    count, reasons = reads_of_report()
    assert one == (one[0], ["owner inactive"])
    assert count == one[0] <= 3
    assert reasons == ["owner inactive"] + ["owner deactivated", "owner inactive"] * 19 \
        + ["owner deactivated"]


def test_production_request_then_approval_flips_the_client_environment(
        portal: Portal, accounts: DeveloperAccounts) -> None:
    ada = accounts.sign_up("Acme", "ada@example.com", "Ada", PASSWORD)
    app, _ = accounts.create_application(ada, "A", ["sim-swap"], [FRAUD], None)
    with pytest.raises(AccountError) as unconfirmed:
        accounts.request_production(ada.org_id, app.client_id, by=ada.developer_id)
    assert (unconfirmed.value.status, unconfirmed.value.field) == (403, "email")
    confirm_address(portal, ada)
    accounts.request_production(ada.org_id, app.client_id, by=ada.developer_id)
    assert accounts.pending_production() == [accounts.application(app.client_id)]
    accounts.refuse_production(app.client_id)
    assert accounts.pending_production() == []
    accounts.request_production(ada.org_id, app.client_id, by=ada.developer_id)
    accounts.approve_production(app.client_id)
    approved = accounts.application(app.client_id)
    assert approved is not None and approved.environment is Environment.PRODUCTION
    assert approved.status is ApplicationStatus.ACTIVE
    client = portal.operator.identity.clients.get(app.client_id)
    assert client is not None and client.environment == "production"
    with pytest.raises(AccountError):
        accounts.request_production(ada.org_id, app.client_id, by=ada.developer_id)


def test_the_throttle_counts_failures_per_email_and_per_address() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(Database(), clock=clock, limit=5, window=900)
    for _ in range(4):
        throttle.failed("ada@example.com", "198.51.100.1")
        clock.advance(10)
    assert throttle.retry_after("ada@example.com", "198.51.100.1") is None
    throttle.failed("ADA@example.com", "198.51.100.2")
    wait = throttle.retry_after("ada@example.com", "198.51.100.3")
    assert wait == pytest.approx(900 - 40), "blocked until the first failure leaves the window"
    assert throttle.retry_after("bob@example.com", "198.51.100.3") is None
    assert throttle.retry_after("bob@example.com", "198.51.100.1") is None, "4 from that address"
    clock.advance(861)
    assert throttle.retry_after("ada@example.com", None) is None


def test_many_emails_from_one_address_are_throttled_and_success_clears_the_email() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(Database(), clock=clock, limit=5, window=900)
    for index in range(5):
        throttle.failed(f"user{index}@example.com", "198.51.100.9")
    assert throttle.retry_after("someone@example.com", "198.51.100.9") is not None
    assert throttle.retry_after("someone@example.com", "198.51.100.10") is None
    for _ in range(3):
        throttle.failed("ada@example.com", None)
    throttle.succeeded("ada@example.com")
    for _ in range(4):
        throttle.failed("ada@example.com", None)
    assert throttle.retry_after("ada@example.com", None) is None


def test_a_suspended_application_never_comes_back_through_a_production_decision(
        portal: Portal, accounts: DeveloperAccounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator admin's decision reads the request, then writes; the kill switch may
    suspend the application in between (another replica): the write must not revive it."""
    for n, decide in enumerate((accounts.approve_production, accounts.refuse_production)):
        ada = accounts.sign_up(f"Acme {n}", f"ada{n}@example.com", "Ada", PASSWORD)
        app, _ = accounts.create_application(ada, "A", ["sim-swap"], [FRAUD], None)
        confirm_address(portal, ada)
        accounts.request_production(ada.org_id, app.client_id, by=ada.developer_id)
        pending = accounts.application(app.client_id)
        assert pending is not None and pending.status is ApplicationStatus.PENDING_PRODUCTION
        accounts.deactivate(ada.developer_id)  # suspended after the admin's page was read
        monkeypatch.setattr(accounts, "application", lambda _id, seen=pending: seen)
        with pytest.raises(AccountError) as refused:
            decide(app.client_id)
        assert refused.value.status == 409
        monkeypatch.undo()
        now = accounts.application(app.client_id)
        assert now is not None and now.status is ApplicationStatus.SUSPENDED
        assert now.environment is Environment.SANDBOX
        client = portal.operator.identity.clients.get(app.client_id)
        assert client is not None and client.environment == "sandbox" and client.disabled
