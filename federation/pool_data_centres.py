"""Data-centre failures through a replica pool: one switch, applied by every replica.

Each replica of a pooled operator runs its own :class:`~federation.data_centres.
LoadBalancedFront` with its own in-process sites. A ``POST /admin/data-centres/{name}/fail``
that the pool forwarded like any request would reach one replica, so only its calls would
see the site go down while its siblings kept serving it. The pool instead sends each switch
to every replica it runs, and remembers the switches it sent: a replica started later (scaled
up or healed), or one that missed a switch, is brought to the same state before it enters the
rotation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Protocol

import httpx

from .data_centres import ADMIN_PREFIX

__all__ = ["SiteSwitches", "switch_of"]

ACTIONS = ("fail", "recover")


class Member(Protocol):
    """What the switches need of a replica: where it listens, and what it has applied."""

    number: int
    sites_version: int

    @property
    def origin(self) -> str: ...


def switch_of(method: str, path: str) -> tuple[str, str] | None:
    """``(data centre, action)`` when the request is a data-centre switch, else None."""
    if method != "POST" or not path.startswith(ADMIN_PREFIX + "/"):
        return None
    parts = path.removeprefix(ADMIN_PREFIX).strip("/").split("/")
    if len(parts) != 2 or parts[1] not in ACTIONS or not parts[0]:
        return None
    return parts[0], parts[1]


class SiteSwitches:
    """The data-centre switches a pool sent, in order, and which replicas applied them all."""

    def __init__(self, admin_secret: str) -> None:
        self.admin_secret = admin_secret
        self.last: dict[str, str] = {}
        """Per data centre, the last action every replica is to have applied."""
        self.version = 0
        """Bumped at each switch; a replica whose ``sites_version`` differs is behind."""

    def behind(self, replica: Member) -> bool:
        return replica.sites_version != self.version

    async def broadcast(
        self, http: httpx.AsyncClient, replicas: Sequence[Member], name: str, action: str,
        authorization: str,
    ) -> tuple[int, bytes]:
        """Send the switch to every replica; the answer for the caller (the first replica's,
        with how many applied it). Recorded only when a replica accepted it (an unknown data
        centre is each replica's 404, and nothing to replay)."""
        answers = await asyncio.gather(
            *(self._send(http, r, name, action, authorization) for r in replicas)
        )
        answered = [(r, a) for r, a in zip(replicas, answers, strict=True) if a is not None]
        if not answered:
            return 503, json.dumps({"status": 503, "code": "UNAVAILABLE",
                                    "message": "no replica answered the switch"}).encode()
        status, body = answered[0][1]
        if status != 200:
            return status, body
        self.last[name] = action
        self.version += 1
        applied = 0
        for replica, (code, _) in answered:
            if code == 200:
                applied += 1
                if not self.last.keys() - {name} or replica.sites_version == self.version - 1:
                    replica.sites_version = self.version
        document = json.loads(body)
        document["replicas"] = {"applied": applied, "of": len(replicas)}
        return 200, json.dumps(document).encode()

    async def sync(self, http: httpx.AsyncClient, replica: Member) -> bool:
        """Apply every remembered switch to a replica that is behind; True once it is level."""
        version = self.version
        for name, action in list(self.last.items()):
            answer = await self._send(http, replica, name, action, f"Bearer {self.admin_secret}")
            if answer is None or answer[0] != 200:
                return False
        replica.sites_version = version
        return True

    @staticmethod
    async def _send(http: httpx.AsyncClient, replica: Member, name: str, action: str,
                    authorization: str) -> tuple[int, bytes] | None:
        try:
            response = await http.post(
                f"{replica.origin}{ADMIN_PREFIX}/{name}/{action}",
                headers={"authorization": authorization},
            )
        except httpx.HTTPError:
            return None
        return response.status_code, response.content
