"""A subscriber's browser on the portal, beside the gateway tests' operator and application.

The operator, its registered application (``fraud-app``, CIBA and client credentials) and the
hand-driven clock are the gateway tests' :class:`Harness`; :class:`Browser` is a cookie-keeping
client on the same operator, from an address of our choosing (an operator device or not).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from operators.operator import Operator, create_operator_app
from tests.operators.gateway.conftest import Harness, clock, harness  # noqa: F401

OUTSIDE = "198.51.100.20"
"""An address the operator never assigned: sign-in needs a code from here."""
IDENTITY = "dpv:IdentityVerification"
"""The harness application's consent-based purpose: CIBA asks the handset and records one."""

FORM = {"content-type": "application/x-www-form-urlencoded"}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A subscriber's browser: keeps the portal's cookie and fills in the CSRF field."""

    def __init__(self, operator: Operator, http: httpx.AsyncClient) -> None:
        self.operator = operator
        self.http = http

    async def csrf(self, path: str = "/my/sign-in") -> str:
        found = _CSRF.search((await self.http.get(path)).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    async def post(self, path: str, *, csrf: bool = True, **fields: str) -> httpx.Response:
        form = dict(fields)
        if csrf:
            form["csrf"] = await self.csrf("/my/consents" if await self.signed_in()
                                           else "/my/sign-in")
        return await self.http.post(path, content=urlencode(form), headers=FORM)

    async def signed_in(self) -> bool:
        return (await self.http.get("/my/consents")).status_code == 200

    def last_code(self, number: str) -> str:
        codes = [m for m in self.operator.handsets.messages(number) if m.kind == "code"]
        assert codes, f"no code sent to {number}"
        return str(codes[0].data["code"])

    async def ask_code(self, number: str) -> httpx.Response:
        return await self.post("/my/sign-in", number=number)

    async def sign_in(self, number: str) -> None:
        asked = await self.ask_code(number)
        assert asked.status_code == 200, asked.text
        done = await self.post("/my/sign-in/code", number=number, code=self.last_code(number))
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/my/consents"


BrowserFactory = Callable[..., Any]


@pytest.fixture
async def browsers(harness: Harness) -> AsyncIterator[BrowserFactory]:  # noqa: F811
    """Open browsers at ``address`` (outside the operator's network unless told)."""
    opened: list[httpx.AsyncClient] = []
    app = create_operator_app(harness.operator)

    def open_browser(address: str = OUTSIDE) -> Browser:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        http = httpx.AsyncClient(transport=transport, base_url=harness.operator.api_root,
                                 follow_redirects=False)
        opened.append(http)
        return Browser(harness.operator, http)

    yield open_browser
    for http in opened:
        await http.aclose()


@pytest.fixture
async def browser(browsers: BrowserFactory) -> Browser:
    return browsers()  # type: ignore[no-any-return]


async def ciba_consent(harness: Harness, role: str = "approves",  # noqa: F811
                       scope: str = f"sim-swap:check {IDENTITY}") -> str:
    """An access token the application got by CIBA, the scripted handset approving (which
    records a consent)."""
    return await harness.three_legged(role, scope)
