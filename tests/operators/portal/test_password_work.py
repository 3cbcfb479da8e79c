"""The portal's password threads: a bounded queue that answers 503 with ``Retry-After`` when
full, sign-in refused that way without a throttle attempt spent, and threads stopped at the
app's shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from operators.portal import Developer
from operators.portal.accounts import DeveloperAccounts
from operators.portal.password_work import PasswordsBusyError, PasswordWork
from tests.operators.portal.conftest import PASSWORD, Portal

EMAIL = "ada@example.com"
BOUND = 60.0
"""Seconds a condition is waited for at most (it comes within milliseconds)."""


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert condition()


def _held(release: threading.Event, started: list[str]) -> Callable[[str], str]:
    def work(name: str) -> str:
        started.append(name)
        release.wait(BOUND)
        return name.upper()

    return work


async def test_a_full_queue_is_refused_at_once_and_room_comes_back() -> None:
    work = PasswordWork(threads=1, waiting=1)
    release, started = threading.Event(), []
    held = _held(release, started)
    try:
        running = asyncio.create_task(work.run(held, "first"))
        waiting = asyncio.create_task(work.run(held, "second"))
        await _until(lambda: started == ["first"])
        with pytest.raises(PasswordsBusyError) as busy:
            await work.run(held, "third")
        assert busy.value.status == 503
        assert busy.value.retry_after >= 1
        assert "Try again in" in busy.value.message
        release.set()
        assert [await running, await waiting] == ["FIRST", "SECOND"]
        assert await work.run(str.upper, "fourth") == "FOURTH", "room once the queue drained"
        assert "third" not in started, "the refused work never ran"
    finally:
        release.set()
        work.close()


async def test_a_cancelled_request_keeps_its_slot_until_its_hash_ends() -> None:
    """Before, cancelling the waiting request gave its slot back while its hash still ran, so
    one more hash than the bound could be admitted."""
    work = PasswordWork(threads=1, waiting=0)
    release, started = threading.Event(), []
    held = _held(release, started)
    try:
        running = asyncio.create_task(work.run(held, "first"))
        await _until(lambda: started == ["first"])
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        with pytest.raises(PasswordsBusyError):
            await work.run(held, "second")
        release.set()
        await _until(lambda: work.admitted == 0)
        assert await work.run(str.upper, "third") == "THIRD"
    finally:
        release.set()
        work.close()


def test_retry_after_is_the_queue_ahead_at_the_recent_pace() -> None:
    work = PasswordWork(threads=2, waiting=10)
    work.mean_seconds = 0.5
    work.admitted = 12
    assert work.retry_after() == 3
    work.admitted = 0
    assert work.retry_after() == 1, "never zero"


async def test_sign_in_past_the_queue_is_503_and_spends_no_throttle_attempt(
        portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sign-ins held in their password checks fill the two threads (no waiting room);
    five more are 503 with Retry-After, the form kept. Had each spent a throttle attempt,
    the right password would then be refused 429 for fifteen minutes."""
    assert (await portal.browser().sign_up(EMAIL)).status_code == 303
    portal.parts.passwords.waiting = 0
    release, checking = threading.Event(), []
    authenticate = DeveloperAccounts.authenticate

    def held(self: DeveloperAccounts, email: str, password: str) -> Developer | None:
        checking.append(email)
        release.wait(BOUND)
        return authenticate(self, email, password)

    monkeypatch.setattr(DeveloperAccounts, "authenticate", held)
    under_way = [asyncio.create_task(portal.browser(f"198.51.100.{n}").sign_in(
                     EMAIL, "not the password")) for n in (1, 2)]
    try:
        await _until(lambda: len(checking) == 2)
        for n in range(5):
            busy = await portal.browser(f"198.51.100.{10 + n}").sign_in(EMAIL)
            assert busy.status_code == 503
            assert int(busy.headers["Retry-After"]) >= 1
            assert "The portal is busy checking other passwords" in busy.text
            assert f'value="{EMAIL}"' in busy.text
    finally:
        release.set()
    assert [(await sign_in).status_code for sign_in in under_way] == [401, 401]
    assert len(checking) == 2, "the refused sign-ins checked no password"
    signed_in = await portal.browser("198.51.100.99").sign_in(EMAIL, PASSWORD)
    assert signed_in.status_code == 303, "two failures counted, not seven"


async def test_sign_up_past_the_queue_is_503_with_the_form_kept(
        portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    portal.parts.passwords.waiting = 0
    release, checking = threading.Event(), []
    sign_up = DeveloperAccounts.sign_up

    def held(self: DeveloperAccounts, *args: str) -> Developer:
        checking.append(args[1])
        release.wait(BOUND)
        return sign_up(self, *args)

    monkeypatch.setattr(DeveloperAccounts, "sign_up", held)
    under_way = [asyncio.create_task(portal.browser().sign_up(f"dev{n}@example.com"))
                 for n in (1, 2)]
    try:
        await _until(lambda: len(checking) == 2)
        busy = await portal.browser().sign_up("grace@example.com", name="Grace Hopper")
        assert busy.status_code == 503
        assert int(busy.headers["Retry-After"]) >= 1
        assert 'value="Grace Hopper"' in busy.text
        assert 'value="grace@example.com"' in busy.text
    finally:
        release.set()
    assert [(await done).status_code for done in under_way] == [303, 303]
    assert portal.parts.accounts.by_email("grace@example.com") is None
    assert (await portal.browser().sign_up("grace@example.com")).status_code == 303


async def test_the_password_threads_stop_at_the_apps_shutdown(portal: Portal) -> None:
    """Before, the pool was never shut down: its threads outlived the app."""
    seen: list[threading.Thread] = []
    async with portal.app.router.lifespan_context(portal.app):
        await portal.parts.passwords.run(lambda: seen.append(threading.current_thread()))
        assert seen[0].name.startswith("portal-passwords") and seen[0].is_alive()
    assert not seen[0].is_alive()
    with pytest.raises(RuntimeError):
        await portal.parts.passwords.run(str.upper, "after shutdown")
