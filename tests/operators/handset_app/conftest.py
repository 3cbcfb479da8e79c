"""A live operator app (gateway, identity, handset page) on a hand-driven clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from operators.config import example_operator
from operators.handset_app import csrf, pairing
from operators.operator import Operator, create_operator_app
from tests.operators.identity.conftest import ALL_GRANTS, API_SCOPES, App, FakeClock, new_key

CIBA = "urn:openid:params:grant-type:ciba"
CONSENT_SCOPE = "openid number-verification:verify dpv:IdentityVerification"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Live:
    """One operator, its app over ASGI, a registered application and the fake clock."""

    operator: Operator
    http: httpx.AsyncClient
    app: App
    clock: FakeClock

    @property
    def issuer(self) -> str:
        return self.operator.issuer

    def number(self, role: str) -> str:
        return self.operator.subscribers.test_number(role)

    async def bc_authorize(self, number: str, scope: str = CONSENT_SCOPE,
                           **form: str) -> httpx.Response:
        return await self.http.post(f"{self.issuer}/bc-authorize", data={
            **self.app.auth("/bc-authorize"), "login_hint": f"tel:{number}", "scope": scope,
            **form})

    async def start(self, number: str, **form: str) -> str:
        response = await self.bc_authorize(number, **form)
        assert response.status_code == 200, response.text
        return str(response.json()["auth_req_id"])

    async def poll(self, auth_req_id: str) -> httpx.Response:
        self.clock.advance(5)
        return await self.http.post(f"{self.issuer}/token", data={
            **self.app.auth(), "grant_type": CIBA, "auth_req_id": auth_req_id})

    def link(self, number: str) -> str:
        """The phone's link, as the operator hands it out (its path and key)."""
        key = pairing.phone_key(self.operator.config.admin_secret, number)
        return f"/handset/{number}?key={key}"

    async def page(self, number: str) -> httpx.Response:
        """Open the phone through its link, as a browser does (keeping its cookies)."""
        return await self.http.get(self.link(number))

    async def csrf(self, number: str) -> str:
        """Open the handset page as a browser does (keeping its cookie); the form's token."""
        page = await self.page(number)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        if found is not None:
            return found.group(1)
        # no button on this phone: the token its buttons would carry, for this cookie
        key = csrf.signing_key(self.operator.config.admin_secret)
        return csrf.form_token(key, page.cookies[csrf.COOKIE], number)

    async def press(self, number: str, auth_req_id: str, decision: str,
                    token: str | None = None) -> httpx.Response:
        token = token if token is not None else await self.csrf(number)
        return await self.http.post(f"/handset/{number}/prompts/{auth_req_id}",
                                    data={"csrf": token, "decision": decision})

    async def feed(self, number: str) -> dict[str, Any]:
        """The phone as JSON, as the page's script reads it (with the link's cookie)."""
        await self.page(number)
        response = await self.http.get(f"/handset/{number}/messages")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def operator(clock: FakeClock) -> Iterator[Operator]:
    built = Operator.from_config(example_operator(), clock=clock, monotonic=clock)
    yield built
    built.close()


def make_interactive(operator: Operator, number: str) -> None:
    """Turn ``number``'s handset interactive, as the admin API's ``handset`` change does."""
    from operators.subscriber_base import ChangeKind

    operator.subscribers.record_change(number, ChangeKind.HANDSET, {"mode": "interactive"})


@pytest.fixture
async def live(operator: Operator, clock: FakeClock) -> AsyncIterator[Live]:
    key = new_key()
    operator.identity.register_client({
        "client_id": "shop", "client_name": "Corner <b>Shop</b>",
        "jwks": {"keys": [key.as_dict(private=False)]}, "grant_types": ALL_GRANTS,
        "scope": API_SCOPES, "purposes": [p.purpose for p in operator.config.purposes],
        "redirect_uris": ["https://shop.example/cb"],
    })
    app = App("shop", key, operator.identity, clock)
    transport = httpx.ASGITransport(app=create_operator_app(operator))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        yield Live(operator, http, app, clock)
