"""``ogsim demo --interactive``: the story waits for Approve on the handset page, over HTTP.

The demo runs in its own thread (its own event loop, as the command runs it); this test plays
the person: it waits for the handset URL, waits for the prompt to reach the phone, and presses
Approve through the page's form, over real HTTP. Every wait is on a condition, bounded.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from federation.demo import Interactive, Step, run_demo

BOUND = 60.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _eventually(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"waited {BOUND:.0f} s for {what}"
        time.sleep(0.05)


class DemoThread(threading.Thread):
    """The demo story in a thread, with the handset URL it announces."""

    def __init__(self, out: Path, timeout: float) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.url: str | None = None
        self.steps: list[Step] | None = None
        self.error: BaseException | None = None
        self.interactive = Interactive(timeout=timeout, on_url=self._told)

    def _told(self, url: str) -> None:
        self.url = url

    def run(self) -> None:
        try:
            self.steps = asyncio.run(run_demo(out=self.out, interactive=self.interactive))
        except BaseException as error:  # reported by the test thread
            self.error = error


def test_the_demo_waits_for_approve_pressed_on_the_handset(tmp_path: Path) -> None:
    demo = DemoThread(tmp_path, timeout=BOUND)
    demo.start()
    _eventually("the handset URL", lambda: demo.url is not None or not demo.is_alive())
    link = demo.url
    assert link is not None, demo.error
    url, _, key = link.partition("?")
    assert key.startswith("key="), "the phone's own link: it opens for no one else"
    with httpx.Client(timeout=10.0) as person:
        assert person.get(url).status_code == 403, "without its key"
        assert person.get(link).status_code == 200  # the page keeps the key in a cookie

        def prompted() -> bool:
            return bool(person.get(f"{url}/messages").json()["prompts"])

        _eventually("the consent prompt on the phone", prompted)
        page = person.get(url)
        assert "antifraud-app, through" in page.text and "Providing a service" in page.text
        found = CSRF.search(page.text)
        assert found is not None
        [prompt] = person.get(f"{url}/messages").json()["prompts"]
        pressed = person.post(f"{url}/prompts/{prompt['auth_req_id']}",
                              data={"csrf": found.group(1), "decision": "approve"})
        assert pressed.status_code == 303, pressed.text
    demo.join(BOUND)
    assert not demo.is_alive() and demo.error is None, demo.error
    assert demo.steps is not None
    steps = {name: outcome for name, outcome, _ in demo.steps}
    assert not [s for s in steps.values() if s.startswith("UNEXPECTED")], steps
    assert steps["reachability of +447700000001 (telco-gb; consent needed)"].startswith("200")
    assert steps["reachability of +447700000001 again, same application"].startswith("403")


def test_nobody_pressing_ends_the_wait_with_a_clear_outcome(tmp_path: Path) -> None:
    demo = DemoThread(tmp_path, timeout=1.0)
    demo.start()
    demo.join(BOUND)
    assert not demo.is_alive() and demo.error is None, demo.error
    assert demo.steps is not None
    steps = {name: outcome for name, outcome, _ in demo.steps}
    waited = steps["reachability of +447700000001 (telco-gb; consent needed)"]
    assert waited == f"UNEXPECTED nobody pressed Approve on {demo.url} within 1 s"
    assert "reachability of +447700000001 again, same application" not in steps
    assert steps["madrid recovers and the GLB routes to it again"] == "ok"  # the story goes on
