"""A real operator on a loopback port (uvicorn in a thread) and a headless Chromium driving it.

The operator runs in this process, so a test can look at its records; everything the browser
does goes over real HTTP. Browser tests are skipped, with the reason, only when Chromium or
its driver is missing (``.ci/run`` installs Debian's ``chromium`` and ``chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 30.0
"""Generous bound on any condition a browser test waits for (never a fixed sleep)."""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    A condition that reads the page while the browser is replacing it (a form posted, a
    redirect followed) may find an element that is gone a moment later, or none yet: Selenium
    raises for those, and they count as the condition not holding yet.
    """
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    missed: Exception | None = None
    while True:
        try:
            if condition():
                return
            missed = None
        except (StaleElementReferenceException, NoSuchElementException) as error:
            missed = error  # the page changed under the condition: read it again
        if time.monotonic() > deadline:
            # the last element Selenium could not find, if that is why it still waits
            raise AssertionError(f"still waiting after {timeout:g} s for {what}") from missed
        time.sleep(0.05)


def screenshot_folder(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: ``$OGSIM_SCREENSHOTS`` when set
    (``OGSIM_SCREENSHOTS=docs/screenshots`` refreshes the README's), else ``tmp_path``."""
    folder = Path(os.environ.get("OGSIM_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fill(chrome: Any, element_id: str, text: str) -> None:
    """Type ``text`` into the field with ``element_id``, replacing what it held."""
    from selenium.webdriver.common.by import By

    field = chrome.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


@dataclass
class Served:
    """An operator served at ``base`` (http://127.0.0.1:port)."""

    operator: Operator
    base: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The example operator with its issuer at the loopback URL, so tokens' audience, client
    assertions and the JWKS all name the address the clients really use."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    config = example_operator(storage=str(tmp_path / "operator.sqlite3")).model_copy(
        update={"issuer": f"{base}/oauth", "lifetimes": TokenLifetimes(ciba_interval=1)}
    )
    with serve(Operator.from_config(config), sock, base) as served:
        yield served


@contextmanager
def serve(operator: Operator, sock: socket.socket, base: str) -> Iterator[Served]:
    """``operator`` under uvicorn on the bound loopback ``sock`` until the block ends; then
    the server, the socket and the operator are closed."""
    server = uvicorn.Server(
        uvicorn.Config(create_operator_app(operator), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the operator to start")
    try:
        yield Served(operator, base)
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        sock.close()
        operator.close()


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium downloading into ``tmp_path/downloads`` without asking."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"browser tests need Chromium ({CHROMIUM}) and its driver ({CHROMEDRIVER}):"
                    " apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1100,760", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    # Chromium makes its singleton socket's folder in TMPDIR, and a browser that chromedriver
    # ends never removes it: give it a folder of its own, removed afterwards. Not under
    # tmp_path: a socket's path must stay under 108 bytes, and tmp_path's can be longer.
    scratch = tempfile.mkdtemp(prefix="ogsim-chromium-")
    service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": scratch})
    try:
        driver = webdriver.Chrome(options=options, service=service)
        try:
            driver.set_page_load_timeout(WAIT)
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
