"""The sign-in throttle with replicas: two operators (two portals) over one database file, as
``ogsim up --autoscale`` runs them, an operator started again over the file it left, and the
bounds on the throttle's table."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import operators.portal.login_throttle as login_throttle
from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app
from operators.portal import Developer, LoginThrottle
from operators.portal.accounts import DeveloperAccounts
from operators.storage import Database
from tests.operators.portal.conftest import ADMIN_SECRET, FakeClock, Portal

EMAIL = "ada@example.com"

Replica = Callable[[], Portal]


@pytest.fixture
async def replica(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Replica]:
    """Starts one more replica of one operator over one database file (each its own portal)."""
    config = example_operator(storage=str(tmp_path / "operator.sqlite3")).model_copy(update={
        "lifetimes": TokenLifetimes(ciba_interval=0), "admin_secret": ADMIN_SECRET})
    started: list[Portal] = []

    def start() -> Portal:
        operator = Operator.from_config(config, clock=clock, monotonic=clock)
        started.append(Portal(operator, create_operator_app(operator), clock))
        return started[-1]

    yield start
    for portal in started:
        for http in portal.opened:
            await http.aclose()
        portal.operator.close()


async def _fail(portal: Portal, times: int, clock: FakeClock, first_address: int) -> None:
    """Wrong passwords for :data:`EMAIL`, each from an address of its own (so only the
    email's count can lock), ten seconds apart."""
    for n in range(times):
        browser = portal.browser(f"198.51.100.{first_address + n}")
        assert (await browser.sign_in(EMAIL, "not the password")).status_code == 401
        clock.advance(10)


async def test_failures_through_two_replicas_count_together(
        replica: Replica, clock: FakeClock) -> None:
    """Before, each replica counted in its own memory: five guesses per replica, N times the
    limit in all, and the right password still signed in after 3 + 2 failures."""
    first, second = replica(), replica()
    assert (await first.browser().sign_up(EMAIL)).status_code == 303
    await _fail(first, 3, clock, first_address=1)
    await _fail(second, 2, clock, first_address=11)
    for portal in (first, second):
        refused = await portal.browser("198.51.100.99").sign_in(EMAIL)
        assert refused.status_code == 429, "locked for both replicas, even the right password"
        assert refused.headers["Retry-After"] == str(900 - 50), "until the first failure goes"
    clock.advance(900 - 50)
    assert (await second.browser("198.51.100.99").sign_in(EMAIL)).status_code == 303


async def test_the_failures_outlive_a_restart(replica: Replica, clock: FakeClock) -> None:
    """Before, a restart forgot them: the replica the pool started again let guessing resume."""
    before = replica()
    assert (await before.browser().sign_up(EMAIL)).status_code == 303
    await _fail(before, 5, clock, first_address=1)
    before.operator.close()
    after = replica()
    refused = await after.browser("198.51.100.99").sign_in(EMAIL)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(900 - 50)


async def test_an_address_guessing_many_accounts_is_slowed_at_every_replica(
        replica: Replica, clock: FakeClock) -> None:
    """The address's count is shared too, and a success elsewhere does not clear it."""
    first, second = replica(), replica()
    assert (await first.browser().sign_up(EMAIL)).status_code == 303
    address = "198.51.100.7"
    for n, portal in enumerate((first, second, first, second)):
        wrong = await portal.browser(address).sign_in(f"user{n}@example.com", "not it at all")
        assert wrong.status_code == 401
    assert (await second.browser("198.51.100.8").sign_in(EMAIL)).status_code == 303
    assert (await first.browser(address).sign_in("user4@example.com")).status_code == 401
    assert (await second.browser(address).sign_in(EMAIL)).status_code == 429


def _rows(throttle: LoginThrottle) -> int:
    row = throttle.db.one("SELECT COUNT(*) AS n FROM portal_login_failures")
    assert row is not None
    return int(row["n"])


def test_rows_past_the_window_go_and_many_emails_cannot_grow_the_table(
        monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    throttle = LoginThrottle(Database(), clock=clock, limit=5, window=900)
    for n in range(3):
        throttle.failed(f"old{n}@example.com", "198.51.100.1")
    clock.advance(900)
    throttle.failed("new@example.com", None)
    assert _rows(throttle) == 1, "the failures that left the window are deleted"
    monkeypatch.setattr(login_throttle, "MAX_ROWS", 10)
    for n in range(50):
        throttle.failed(f"user{n}@example.com", f"198.51.100.{n}")
    assert _rows(throttle) == 10, "the newest rows, at most MAX_ROWS"
    for _ in range(4):
        throttle.failed("ada@example.com", None)
    assert throttle.retry_after("ada@example.com", None) is None
    throttle.failed("ada@example.com", None)
    assert throttle.retry_after("ada@example.com", None) == 900


def test_taking_an_attempt_back_deletes_its_own_rows_only(clock: FakeClock) -> None:
    """An attempt from no known address counts one row. A success for the same email deletes
    it meanwhile; SQLite then gives the next row (a guess at Bob) the same rowid. Taking the
    attempt back must not delete Bob's failure, as deleting by rowid alone did."""
    throttle = LoginThrottle(Database(), clock=clock, limit=1, window=900)
    attempt = throttle.attempt("ada@example.com", None)
    assert not isinstance(attempt, float)
    throttle.succeeded("ada@example.com")  # another sign-in of Ada's, at once
    clock.advance(1)
    throttle.failed("bob@example.com", None)
    throttle.succeeded("ada@example.com", attempt)
    assert throttle.retry_after("bob@example.com", None) is not None, "Bob's failure counts"


async def test_guesses_under_way_at_once_count_before_their_passwords_are_checked(
        replica: Replica, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, the limit was checked before the password and a failure counted after it, so
    guesses sent at once (each scrypt check takes tens of milliseconds) all passed the check
    before any was counted. Now a guess counts as it is let through: with one failure behind
    and four guesses in their password checks at two replicas, the next sign-in is refused at
    both, the right password too, and each replica's event loop serves pages meanwhile (the
    checks run in the portal's password threads, not on the loop)."""
    first, second = replica(), replica()
    assert (await first.browser().sign_up(EMAIL)).status_code == 303
    await _fail(first, 1, clock, first_address=1)
    checking, counted, release = [], threading.Lock(), threading.Event()
    authenticate = DeveloperAccounts.authenticate

    def held(self: DeveloperAccounts, email: str, password: str) -> Developer | None:
        with counted:
            checking.append(email)
        release.wait(5)  # bounded: code that checks on the loop would stall it this long
        return authenticate(self, email, password)

    monkeypatch.setattr(DeveloperAccounts, "authenticate", held)
    guesses = [asyncio.create_task(portal.browser(f"198.51.100.{20 + n}").sign_in(
                   EMAIL, "not the password"))
               for n, portal in enumerate((first, first, second, second))]
    deadline = time.monotonic() + 60
    while len(checking) < len(guesses) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    try:
        assert len(checking) == len(guesses)
        assert not any(guess.done() for guess in guesses), "all four are still being checked"
        for portal in (first, second):
            page = await portal.browser().get("/portal/sign-in")
            assert page.status_code == 200
            refused = await portal.browser("198.51.100.99").sign_in(EMAIL)
            assert refused.status_code == 429, "five guesses counted, four of them unfinished"
        assert not any(guess.done() for guess in guesses)
    finally:
        release.set()
    assert [(await guess).status_code for guess in guesses] == [401] * 4
    assert len(checking) == len(guesses), "the refused sign-ins checked no password"
