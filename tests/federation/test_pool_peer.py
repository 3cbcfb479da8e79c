"""The client's address through ``--autoscale``'s pool: vouched for by the pool with an HMAC
under the operator's admin secret, believed by the replica only when it verifies.

Before, every request reached a replica from the pool's loopback address, so the operator saw
one client: the per-address limits counted everybody together (one client's ten password-reset
requests refused every member's) and no subscriber's own data connection was recognised."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from federation.pool_peer import HEADER, PoolPeer, vouched_headers
from operators import Operator, create_operator_app, example_operator
from operators.portal.password_reset import ASKS_PER_ADDRESS
from tests.operators.identity.conftest import FakeClock

SECRET = "the operator's admin secret"


@pytest.fixture
async def replica() -> AsyncIterator[tuple[Operator, httpx.AsyncClient]]:
    """An operator app as a replica serves it, reached (like the pool) from loopback."""
    config = example_operator().model_copy(update={"admin_secret": SECRET,
                                                    "ipv4_ranges": ("10.8.0.0/16",)})
    clock = FakeClock()
    operator = Operator.from_config(config, clock=clock, monotonic=clock)
    transport = httpx.ASGITransport(app=PoolPeer(create_operator_app(operator), SECRET),
                                    client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=operator.api_root) as http:
        yield operator, http
    operator.close()


def _from(address: str, secret: str = SECRET) -> dict[str, str]:
    """The peer header the pool adds for a client at ``address``."""
    ((name, value),) = vouched_headers([], secret, (address, 5555))
    return {name.decode(): value.decode()}


async def test_a_vouched_address_is_the_clients_and_a_forged_one_is_nobodys(
    replica: tuple[Operator, httpx.AsyncClient],
) -> None:
    operator, http = replica
    number = operator.subscribers.test_number("approves")
    subscriber = operator.subscribers.get(number)
    assert subscriber is not None and subscriber.ipv4 is not None
    own = await http.get(f"/handset/{number}", headers=_from(subscriber.ipv4))
    assert own.status_code == 200, "its own data connection opens the phone"
    for forged in (_from(subscriber.ipv4, "not the secret"),
                   {HEADER.decode(): subscriber.ipv4},
                   {HEADER.decode(): f"{subscriber.ipv4} "}):
        assert (await http.get(f"/handset/{number}", headers=forged)).status_code == 403


async def test_each_client_behind_the_pool_has_its_own_reset_limit(
    replica: tuple[Operator, httpx.AsyncClient],
) -> None:
    _, http = replica

    async def ask(address: str) -> int:
        form = await http.get("/portal/password/forgot", headers=_from(address))
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        asked = await http.post("/portal/password/forgot", headers=_from(address),
                                data={"csrf": csrf, "email": "someone@example.com"})
        return asked.status_code

    for _ in range(ASKS_PER_ADDRESS):
        assert await ask("198.51.100.1") == 200
    assert await ask("198.51.100.1") == 429
    assert await ask("198.51.100.2") == 200, "another client is not refused with the first"


def test_the_pool_replaces_whatever_peer_header_the_client_sent() -> None:
    sent = [(b"accept", b"*/*"), (HEADER, b"10.8.0.2 forged"), (b"X-OGSIM-PEER", b"again")]
    forwarded = vouched_headers(sent, SECRET, ("198.51.100.7", 1))
    assert [v for k, v in forwarded if k.lower() == HEADER] == [
        _from("198.51.100.7")[HEADER.decode()].encode()]
    assert (b"accept", b"*/*") in forwarded
    assert [k for k, _ in vouched_headers(sent, SECRET, None)] == [b"accept"]
