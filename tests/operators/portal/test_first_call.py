"""Time to first call: the examples the portal gives are the developer's own, and they work.

The proof runs them: an operator is served by uvicorn on a loopback port (its issuer at that
address, so the token endpoint and the tokens' audience are the ones the example uses), a
developer signs up and creates an application over HTTP, the private key the portal showed
once and the example downloaded from the portal are written to a temporary folder, and the
example runs in a child process with this virtualenv's Python. It must print a successful SIM
swap answer. The curl example runs the same way where ``curl`` exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from operators.config import example_operator
from operators.identity import ClientRegistration
from operators.operator import Operator, create_operator_app
from operators.portal import Application, ApplicationStatus, Environment
from operators.portal.accounts import generate_key_pair
from operators.portal.first_call import (
    build_first_call_pages,
    curl_example,
    first_call_for,
    python_example,
)
from tests.operators.portal.conftest import FORM, FRAUD, PASSWORD, Browser, Portal, private_key_of

RUN_BOUND = 120.0
"""Generous bound on one example's run on a loaded machine (it makes two local calls)."""
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _serve(portal: Portal) -> None:
    parts = portal.parts
    router = build_first_call_pages(parts.host, parts.accounts, parts.guard)
    portal.app.router.routes[:0] = router.routes


@dataclass
class Served:
    operator: Operator
    base: str
    http: httpx.Client

    def post_form(self, path: str, fields: dict[str, str], csrf_from: str) -> httpx.Response:
        page = self.http.get(csrf_from)
        found = _CSRF.search(page.text)
        assert found, f"no CSRF field on {csrf_from}"
        return self.http.post(path, content=urlencode({**fields, "csrf": found.group(1)}),
                              headers=FORM)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The example operator, the first-call pages mounted, on a loopback port (uvicorn in a
    thread), with a signed-up developer's cookie-keeping client."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = example_operator(storage=str(tmp_path / "operator.sqlite3")).model_copy(
        update={"issuer": f"{base}/oauth"})
    operator = Operator.from_config(config)
    app = create_operator_app(operator)
    parts = app.state.developer_portal
    app.router.routes[:0] = build_first_call_pages(parts.host, parts.accounts,
                                                   parts.guard).routes
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + RUN_BOUND
    while not server.started:
        assert time.monotonic() < deadline, "the operator did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=base, timeout=RUN_BOUND) as http:
            yield Served(operator, base, http)
    finally:
        server.should_exit = True
        thread.join(timeout=RUN_BOUND)
        sock.close()
        operator.close()


def _onboard(served: Served, folder: Path) -> tuple[str, Path]:
    """Sign up, create an application with a generated key; the key file as downloaded."""
    signed_up = served.post_form("/portal/sign-up", {
        "organisation": "Acme Fraud Labs", "name": "Ada", "email": "ada@example.com",
        "password": PASSWORD}, "/portal/sign-up")
    assert signed_up.status_code == 303, signed_up.text
    created = served.post_form("/portal/applications", {
        "name": "Fraud checks", "api:sim-swap": "on", f"purpose:{FRAUD}": "on",
        "key": "generate"}, "/portal/applications/new")
    assert created.status_code == 200, created.text
    private = private_key_of(created.text)
    registry = served.operator.identity.clients
    client_id = next(c.client_id for c in registry.all() if c.name == "Fraud checks")
    key_file = folder / f"{client_id}.jwk"
    key_file.write_text(json.dumps(private))
    return client_id, key_file


def test_the_python_example_makes_a_successful_sim_swap_call(
    served: Served, tmp_path: Path
) -> None:
    client_id, key_file = _onboard(served, tmp_path)
    download = served.http.get(f"/portal/applications/{client_id}/first-call.py")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="first_call.py"'
    page = served.http.get(f"/portal/applications/{client_id}/first-call")
    assert download.text.strip() in _unescape(page.text), "the page shows what is downloaded"
    script = tmp_path / "first_call.py"
    script.write_text(download.text)
    run = subprocess.run([sys.executable, str(script), str(key_file)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=RUN_BOUND, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == '200 {"swapped": true}\n'
    usage = served.operator.gateway.ledger.totals()
    assert usage.get((client_id, "sim-swap")) == 1, "the call was the application's own"


def test_the_curl_example_makes_a_successful_sim_swap_call(
    served: Served, tmp_path: Path
) -> None:
    shell, curl = shutil.which("sh"), shutil.which("curl")
    if shell is None or curl is None:
        pytest.skip("the curl example needs curl and a POSIX sh on the PATH")
    python3 = Path(sys.executable).parent / "python3"
    if not python3.exists():
        pytest.skip(f"the curl example calls python3 (with joserfc); none beside {sys.executable}")
    client_id, key_file = _onboard(served, tmp_path)
    download = served.http.get(f"/portal/applications/{client_id}/first-call.sh")
    assert download.status_code == 200
    script = tmp_path / "first_call.sh"
    script.write_text(download.text)
    env = {**os.environ, "PATH": f"{python3.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run([shell, str(script), str(key_file)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=RUN_BOUND, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"swapped": True}


def _unescape(html: str) -> str:
    return (html.replace("&#34;", '"').replace("&#39;", "'").replace("&lt;", "<")
            .replace("&gt;", ">").replace("&amp;", "&"))


async def _application(portal: Portal, browser: Browser, email: str, **kwargs: object) -> str:
    created = await browser.create_application(**kwargs)  # type: ignore[arg-type]
    assert created.status_code == 200, created.text
    developer = portal.parts.accounts.by_email(email)
    assert developer is not None
    return portal.parts.accounts.applications(developer.org_id)[-1].client_id


async def test_the_page_shows_the_applications_own_values(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    client_id = await _application(portal, developer, "ada@example.com")
    page = await developer.get(f"/portal/applications/{client_id}/first-call")
    assert page.status_code == 200, page.text
    text = _unescape(page.text)
    assert f'CLIENT_ID = "{client_id}"' in text
    assert f'TOKEN_ENDPOINT = "{portal.operator.identity.token_endpoint}"' in text
    assert f'"{portal.operator.api_root}/sim-swap/v2/check"' in text
    assert portal.test_number("recent-swap") in text
    assert f'SCOPE = "sim-swap:check {FRAUD}"' in text
    assert 'id="first-call-problems"' not in page.text
    assert 'src="/static/first-call.js"' in page.text
    assert (await developer.get("/static/first-call.js")).status_code == 200


async def test_the_page_says_why_the_example_would_be_refused(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    roaming = await _application(portal, developer, "ada@example.com",
                                 apis=("device-roaming-status",),
                                 purposes=("dpv:ServiceProvision",))
    page = await developer.get(f"/portal/applications/{roaming}/first-call")
    assert page.status_code == 200
    assert 'id="first-call-problems"' in page.text
    assert "not created for SIM Swap" in page.text
    assert "no purpose usable without a subscriber" in page.text
    ada = portal.parts.accounts.by_email("ada@example.com")
    assert ada is not None
    portal.parts.accounts.disable_application(ada.org_id, roaming)
    page = await developer.get(f"/portal/applications/{roaming}/first-call")
    assert "This application is disabled" in page.text


async def test_only_the_own_organisations_applications(
    portal: Portal, developer: Browser
) -> None:
    _serve(portal)
    theirs = await _application(portal, developer, "ada@example.com")
    mallory = portal.browser("198.51.100.9")
    assert (await mallory.sign_up("mallory@example.org", organisation="Other")).status_code == 303
    for path in ("first-call", "first-call.py", "first-call.sh"):
        for client_id in (theirs, "no-such-app"):
            answer = await mallory.get(f"/portal/applications/{client_id}/{path}")
            assert answer.status_code == 404, (client_id, path)
            assert theirs not in answer.text
    anonymous = await portal.browser().get(f"/portal/applications/{theirs}/first-call")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/portal/sign-in"


def test_hostile_values_stay_inside_their_quotes(tmp_path: Path) -> None:
    """A display name, a URL or a number with quotes cannot break out of the code."""
    hostile = 'Telco "x" \\ \'\'\' $(touch pwned) `id`'
    config = example_operator().model_copy(update={"display_name": hostile})
    operator = Operator.from_config(config)
    try:
        public, _ = generate_key_pair()
        client, _ = operator.identity.clients.register(
            ClientRegistration(client_name="n", jwks=public, scope="sim-swap:check",
                               purposes=[FRAUD]), environment="sandbox")
        app = Application(client.client_id, "org", "dev", "n", Environment.SANDBOX,
                          ApplicationStatus.ACTIVE, 0.0)
        host = create_operator_app(operator).state.developer_portal.host
        call = first_call_for(host, app, client, "+34600000002'; rm -rf / #")
        compile(python_example(call), "first_call.py", "exec")
        script = tmp_path / "first_call.sh"
        script.write_text(curl_example(call))
        if shutil.which("sh"):
            checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                                     timeout=RUN_BOUND, check=False)
            assert checked.returncode == 0, checked.stderr
        body_line = next(line for line in curl_example(call).splitlines()
                         if line.startswith("  -d "))
        assert json.loads(shlex.split(body_line)[1]) == call.body
        assert not (tmp_path / "pwned").exists()
    finally:
        operator.close()
