"""What a conformance run needs from the implementation under test, and two ways to get it.

A :class:`Target` is an HTTP client on the API root, a :class:`TokenSource` that mints access
tokens for a scenario's needs, and an :class:`Environment` that maps CAMARA's
environment-specific ``Given`` steps ("the SIM has been swapped", "a network error prevents
...") onto documented test numbers and fault injection. Whatever a target cannot provide
raises :class:`Unsupported`, and the scenario is skipped with that reason instead of failing.

:class:`CommandTokens` runs a shell command per token (for any CAMARA implementation);
:class:`AdminEnvironment` speaks the ogsim operator admin API (test numbers, subscribers,
faults) and falls back to numbers given as JSON when there is no admin API.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

__all__ = [
    "AdminEnvironment",
    "CommandTokens",
    "Environment",
    "Target",
    "TokenNeed",
    "TokenSource",
    "Unsupported",
]


class Unsupported(Exception):  # noqa: N818 - reads as the verdict: the scenario is unsupported
    """The target cannot set up what a scenario assumes; the scenario is skipped with why."""


@dataclass(frozen=True)
class TokenNeed:
    """One access token a scenario asks for.

    Three-legged when ``phone_number`` is set (the token identifies that subscriber),
    two-legged otherwise; ``client`` names one of two distinct applications ("primary" or
    "secondary"); ``expired`` asks for a token whose ``exp`` has passed; ``network`` asks that
    the mobile network authenticated the subscriber (Number Verification's condition: a TS.43
    operator token or the authorization code flow, not a ``tel:`` hint).
    """

    scopes: tuple[str, ...]
    purpose: str
    phone_number: str | None = None
    client: str = "primary"
    expired: bool = False
    network: bool = False

    @property
    def scope(self) -> str:
        return " ".join((*self.scopes, self.purpose))


class TokenSource(Protocol):
    """Mints access tokens; raises :class:`Unsupported` for a kind it cannot produce."""

    async def token(self, need: TokenNeed) -> str: ...


class Environment(Protocol):
    """The implementation's test data and fault switches, as the scenarios' Givens need them."""

    async def test_number(self, role: str) -> str: ...

    async def unknown_number(self) -> str: ...

    async def subscriber(self, number: str) -> dict[str, Any]: ...

    async def change(self, number: str, kind: str, payload: dict[str, Any]) -> None: ...

    async def set_outage(self, function: str, outage: bool) -> None: ...


@dataclass
class Target:
    """An implementation under test: where it is, how to get tokens, how to set it up."""

    http: httpx.AsyncClient
    tokens: TokenSource
    environment: Environment
    device_in_token: bool = True
    """Whether "identified by the token or provided in the request body" picks the token."""
    apis: frozenset[str] | None = None
    """The APIs the implementation serves (folder names of the definitions); None: all."""
    notes: list[str] = field(default_factory=list)


class CommandTokens:
    """Tokens from a shell command: the scenario's need goes in as environment variables.

    ``OGSIM_TOKEN_KIND`` (``three-legged`` / ``two-legged``), ``OGSIM_SCOPE`` (API scopes and
    the ``dpv:`` purpose, space separated), ``OGSIM_PHONE_NUMBER`` (three-legged only),
    ``OGSIM_CLIENT`` (``primary`` / ``secondary``), ``OGSIM_EXPIRED`` (``1`` for an expired
    token) and ``OGSIM_NETWORK`` (``1``: the network must have authenticated the subscriber).
    The command prints the access token on stdout; a non-zero exit means "cannot"
    and skips the scenario with the command's stderr as the reason. Each refusal is kept in
    :attr:`refusals`, so that a command that never gives a token (a typo, a wrong key) is told
    apart from one that cannot give some kinds.
    """

    def __init__(self, command: str, timeout: float = 60.0) -> None:
        self.command = command
        self.timeout = timeout
        self._cache: dict[TokenNeed, str] = {}
        self.refusals: list[str] = []
        """Why the command gave no token, once per time it was run and refused."""

    @property
    def given(self) -> int:
        """How many distinct tokens the command has printed."""
        return len(self._cache)

    async def token(self, need: TokenNeed) -> str:
        if need in self._cache:
            return self._cache[need]
        env = {
            **os.environ,
            "OGSIM_TOKEN_KIND": "three-legged" if need.phone_number else "two-legged",
            "OGSIM_SCOPE": need.scope,
            "OGSIM_PHONE_NUMBER": need.phone_number or "",
            "OGSIM_CLIENT": need.client,
            "OGSIM_EXPIRED": "1" if need.expired else "0",
            "OGSIM_NETWORK": "1" if need.network else "0",
        }
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), self.timeout)
        token = out.decode().strip()
        if process.returncode != 0 or not token:
            why = err.decode().strip()[:200] or f"exit {process.returncode}"
            self.refusals.append(why)
            raise Unsupported(f"token command cannot provide {need.scope!r}: {why}")
        self._cache[need] = token
        return token


class AdminEnvironment:
    """Test numbers, subscriber records and faults through an ogsim operator's admin API.

    Without an admin secret only ``numbers`` (role → phone number) is known, and every step
    that would change the network is :class:`Unsupported`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        admin_secret: str | None = None,
        numbers: dict[str, str] | None = None,
        unknown: str = "+99999999999",
        issuer: str | None = None,
    ) -> None:
        self.http = http
        self.issuer = issuer
        """The operator's identity server (its consent API), when known."""
        self.admin_secret = admin_secret
        self.numbers = dict(numbers or {})
        self.unknown = unknown
        self._loaded = bool(numbers)

    def _headers(self) -> dict[str, str]:
        if self.admin_secret is None:
            raise Unsupported("no admin API: set OGSIM_ADMIN_SECRET to reach it")
        return {"Authorization": f"Bearer {self.admin_secret}"}

    async def test_number(self, role: str) -> str:
        if not self._loaded and self.admin_secret is not None:
            response = await self.http.get("/admin/test-numbers", headers=self._headers())
            if response.status_code == 200:
                self.numbers.update({t["role"]: t["phoneNumber"] for t in response.json()})
            self._loaded = True
        number = self.numbers.get(role)
        if number is None:
            raise Unsupported(f"no test number with role {role!r}")
        return number

    async def unknown_number(self) -> str:
        return self.unknown

    async def subscriber(self, number: str) -> dict[str, Any]:
        response = await self.http.get(f"/admin/subscribers/{number}", headers=self._headers())
        if response.status_code != 200:
            raise Unsupported(f"subscriber {number} unreadable: {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    async def change(self, number: str, kind: str, payload: dict[str, Any]) -> None:
        response = await self.http.post(
            f"/admin/subscribers/{number}/changes",
            json={"kind": kind, "payload": payload},
            headers=self._headers(),
        )
        if response.status_code != 201:
            raise Unsupported(f"cannot apply {kind} to {number}: {response.text[:200]}")

    async def set_outage(self, function: str, outage: bool) -> None:
        url = f"/admin/faults/{function}"
        headers = self._headers()
        if outage:
            response = await self.http.put(url, json={"outage": True}, headers=headers)
        else:
            response = await self.http.delete(url, headers=headers)
        if response.status_code != 200:
            raise Unsupported(f"cannot inject a fault into {function}: {response.status_code}")

    async def grant_consent(
        self, number: str, client_id: str, purpose: str, scopes: list[str], expires_in: int
    ) -> None:
        """Record a subscriber's consent as the operator's back office would."""
        if self.issuer is None:
            raise Unsupported("the operator's consent API is unknown here")
        response = await self.http.post(
            f"{self.issuer}/consents",
            json={"phoneNumber": number, "clientId": client_id, "purpose": purpose,
                  "scopes": scopes, "expiresIn": expires_in},
            headers=self._headers(),
        )
        if response.status_code != 201:
            raise Unsupported(f"cannot record consent for {number}: {response.text[:200]}")

    async def handset_code(self, number: str) -> str:
        """The latest one-time code the subscriber's simulated phone received."""
        response = await self.http.get(
            f"/admin/handsets/{number}/messages", headers=self._headers()
        )
        codes = [m["data"]["code"] for m in response.json() if m.get("kind") == "code"] if (
            response.status_code == 200) else []
        if not codes:
            raise Unsupported(f"no one-time code reached {number}'s phone")
        return str(codes[0])
