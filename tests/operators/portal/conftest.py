"""An in-process operator with the developer portal mounted, browsers and signed-up developers.

Shared by every test of ``/portal``: :func:`portal` is a fresh operator (hand-driven clock,
CIBA without waiting) served by ``create_operator_app``; :class:`Browser` is a cookie-keeping
client that fills in the CSRF field of each form; :func:`developer` is a browser signed up as
the first developer of a new organisation. :meth:`Portal.application_client` turns the
private JWK the portal showed once into an application that gets tokens and calls the APIs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from federation.client import ApplicationClient
from operators.config import TokenLifetimes, example_operator
from operators.operator import Operator, create_operator_app
from operators.portal import Developer
from operators.portal.developer_portal import DeveloperPortal

START = 1_790_000_000.0
FORM = {"content-type": "application/x-www-form-urlencoded"}
FRAUD = "dpv:FraudPreventionAndDetection"
PASSWORD = "correct horse battery"
ADMIN_SECRET = "admin-secret"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_CLIENT_ID = re.compile(r'id="client-id">([^<]+)<')
_CONFIRM = re.compile(r"https?://[^/\s]+(/portal/email/confirm\?code=[\w-]+)")
_PRIVATE = re.compile(r'href="data:application/jwk\+json;base64,([^"]+)"')


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def private_key_of(page: str) -> dict[str, Any]:
    """The private JWK behind the one-time key page's download link."""
    import json

    found = _PRIVATE.search(page)
    assert found, "no private key download link on the page"
    data: dict[str, Any] = json.loads(base64.b64decode(found.group(1)))
    return data


def client_id_of(page: str) -> str:
    """The client id an application page (or the one-time key page) shows."""
    found = _CLIENT_ID.search(page)
    assert found, "no client id on the page"
    return found.group(1)


class Browser:
    """A developer's browser: keeps the portal's cookie and fills in each form's CSRF field."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def csrf(self, path: str = "/portal/sign-in") -> str:
        page = await self.http.get(path)
        found = _CSRF.search(page.text)
        assert found, f"no CSRF field on {path} ({page.status_code})"
        return found.group(1)

    async def post(self, path: str, fields: dict[str, str] | None = None, *,
                   csrf_from: str | None = "/portal/sign-in",
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """POST a form; its CSRF token read from the page at ``csrf_from`` (None: none)."""
        form = dict(fields or {})
        if csrf_from is not None:
            form["csrf"] = await self.csrf(csrf_from)
        return await self.http.post(path, content=urlencode(form),
                                    headers={**FORM, **(headers or {})})

    async def sign_up(self, email: str, *, organisation: str = "Acme Fraud Labs",
                      name: str = "Ada Lovelace", password: str = PASSWORD) -> httpx.Response:
        return await self.post("/portal/sign-up", {"organisation": organisation, "name": name,
                                                   "email": email, "password": password},
                               csrf_from="/portal/sign-up")

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post("/portal/sign-in", {"email": email, "password": password})

    async def sign_out(self) -> httpx.Response:
        return await self.post("/portal/sign-out", csrf_from="/portal")

    async def confirm_email(self, portal: Portal, email: str) -> httpx.Response:
        """Follow the newest confirmation link in the outbox for ``email``, as its owner
        would: open the link, press the button."""
        path = confirmation_path(portal, email)
        return await self.post(path.split("?")[0], {"code": path.split("code=")[1]},
                               csrf_from=path)

    async def create_application(self, name: str = "Fraud checks",
                                 apis: tuple[str, ...] = ("sim-swap",),
                                 purposes: tuple[str, ...] = (FRAUD,),
                                 jwk: str | None = None) -> httpx.Response:
        fields = {"name": name, **{f"api:{a}": "on" for a in apis},
                  **{f"purpose:{p}": "on" for p in purposes}}
        fields.update({"key": "upload", "jwk": jwk} if jwk is not None else {"key": "generate"})
        return await self.post("/portal/applications", fields,
                               csrf_from="/portal/applications/new")


@dataclass
class Portal:
    """The operator, its app, its portal parts and the browsers opened on it."""

    operator: Operator
    app: FastAPI
    clock: FakeClock
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def parts(self) -> DeveloperPortal:
        portal = self.app.state.developer_portal
        assert isinstance(portal, DeveloperPortal)
        return portal

    def http(self, address: str = "203.0.113.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        http = httpx.AsyncClient(transport=transport, base_url=self.operator.api_root,
                                 follow_redirects=False)
        self.opened.append(http)
        return http

    def browser(self, address: str = "203.0.113.7") -> Browser:
        return Browser(self.http(address))

    async def application_client(self, client_id: str,
                                 private_jwk: dict[str, Any]) -> ApplicationClient:
        """The application as its developer runs it: the downloaded key, tokens over HTTP."""
        key = ECKey.import_key(private_jwk)  # type: ignore[arg-type]
        client = await ApplicationClient.discover(client_id, key, self.operator.issuer,
                                                  self.http())
        client.clock = self.clock
        return client

    def test_number(self, role: str = "approves") -> str:
        return self.operator.subscribers.test_number(role)  # type: ignore[arg-type]


def confirmation_path(portal: Portal, email: str) -> str:
    """The path (and code) of the newest confirmation link mailed to ``email``."""
    messages = portal.parts.outbox.messages(email)
    assert messages, f"no mail to {email}"
    found = _CONFIRM.search(messages[0].body)
    assert found is not None, messages[0].body
    return found.group(1)


def confirm_address(portal: Portal, developer: Developer) -> None:
    """Mail ``developer`` a confirmation link and follow it (for tests below the pages)."""
    portal.parts.confirmations.send(developer)
    code = confirmation_path(portal, developer.email).split("code=")[1]
    portal.parts.confirmations.confirm(code)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def portal(clock: FakeClock) -> AsyncIterator[Portal]:
    config = example_operator().model_copy(update={
        "lifetimes": TokenLifetimes(ciba_interval=0), "admin_secret": ADMIN_SECRET})
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    served = Portal(operator, create_operator_app(operator), clock)
    yield served
    for http in served.opened:
        await http.aclose()
    served.parts.close()


@pytest.fixture
async def developer(portal: Portal) -> Browser:
    """A browser signed up (and so signed in) as a new organisation's first developer."""
    browser = portal.browser()
    signed_up = await browser.sign_up("ada@example.com")
    assert signed_up.status_code == 303, signed_up.text
    return browser


BrowserFactory = Callable[..., Browser]
