"""The parties of ``ogsim up`` answer their apps' lifespans themselves: their shutdown must
still stop what the apps' own lifespans would have, the developer portals' password threads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from federation.config import default_federation
from federation.launcher import build_party, localize
from federation.pool_peer import PoolPeer
from operators.portal import DeveloperPortal


def _portals(app: Any) -> list[DeveloperPortal]:
    """The portal of a party's app: the aggregator's, or each data centre's of an operator
    (behind the PoolPeer that takes a vouched client address)."""
    if isinstance(app, PoolPeer):
        app = app.app
    apps = [site.app for site in app.sites.values()] if hasattr(app, "sites") else [app]
    return [each.state.developer_portal for each in apps]


async def _lifespan(app: Any, *messages: str) -> None:
    pending = [{"type": f"lifespan.{message}"} for message in messages]

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(_: dict[str, Any]) -> None:
        return None

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)


@pytest.mark.parametrize("kind", ["operator", "aggregator"])
async def test_a_party_stops_its_portals_password_threads(tmp_path: Path, kind: str) -> None:
    """Before, ``ogsim up`` never ran the apps' lifespans, so nothing shut the pools down."""
    config = localize(default_federation(), base_port=47100)
    party = config.operators[0].id if kind == "operator" else config.aggregators[0].id
    built = build_party(config, party, tmp_path, httpx.AsyncClient())
    portals = _portals(built.app)
    assert portals
    workers: list[threading.Thread] = []
    for portal in portals:
        await portal.passwords.run(lambda: workers.append(threading.current_thread()))
    assert all(worker.is_alive() for worker in workers)
    await _lifespan(built, "startup", "shutdown")
    for worker in workers:
        worker.join(timeout=60)  # bounded; they end as soon as the pool is shut down
    assert not any(worker.is_alive() for worker in workers)
