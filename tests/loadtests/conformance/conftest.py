"""Fixtures: the CAMARA definitions folder and a world over a fixed response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.camara_definitions import camara_dir as default_camara_dir
from loadtests.conformance import Target, TokenNeed, load_spec
from loadtests.conformance.world import ApiUnderTest, World


@pytest.fixture(scope="session")
def camara_dir() -> Path:
    folder = default_camara_dir()
    if not folder.is_dir():
        pytest.skip(f"no CAMARA definitions at {folder}")
    return folder


class FixedTokens:
    """Hands out a recognisable token per need, and remembers what was asked."""

    def __init__(self) -> None:
        self.needs: list[TokenNeed] = []

    async def token(self, need: TokenNeed) -> str:
        self.needs.append(need)
        return "header.payload.signature"


class FixedEnvironment:
    async def test_number(self, role: str) -> str:
        return {"approves": "+34600000001", "never-swapped": "+34600000003"}.get(role, "+346000000")

    async def unknown_number(self) -> str:
        return "+99999999999"

    async def subscriber(self, number: str) -> dict[str, Any]:
        return {"msisdn": number}

    async def change(self, number: str, kind: str, payload: dict[str, Any]) -> None:
        return None

    async def set_outage(self, function: str, outage: bool) -> None:
        return None


@pytest.fixture
def make_world(camara_dir: Path) -> Any:
    """World(api, response): a scenario's state whose HTTP answers are ``response``."""

    def build(api: str, response: httpx.Response | None = None) -> World:
        folder = {"sim-swap": "sim-swap", "device-reachability-status": "device-status"}[api]
        spec = load_spec(
            camara_dir / folder / f"{api}.yaml",
            camara_dir / "commonalities" / "CAMARA_common.yaml",
        )
        answer = response or httpx.Response(200, json={})

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                answer.status_code,
                headers=answer.headers,
                content=answer.content,
                request=request,
            )

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://t")
        target = Target(http, FixedTokens(), FixedEnvironment())
        return World(ApiUnderTest(api, spec, None), target, {})

    return build
