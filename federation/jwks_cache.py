"""Public keys of trusted issuers, fetched from their JWKS and kept for a while.

Keys come only from the issuer's own discovery document (``jwks_uri``, same origin as the
issuer), never from a token's ``jku``/``x5u``/``jwk``/``x5c`` header: an attacker who could
name the key URL could sign anything. Fetching goes through an ``httpx.AsyncClient`` so the
same cache works over ASGI transports in one process and real HTTP between processes.

Keys are cached for ``ttl`` seconds; an unknown ``kid`` (the issuer rotated its key) triggers
a refresh, at most once per ``min_refresh_interval`` per issuer so a flood of tokens with
made-up ``kid`` values cannot turn the cache into a request amplifier. A failed refresh keeps
the keys already known: a partner's short outage must not cut off its valid assertions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from .types import Clock

ASYMMETRIC_KEY_TYPES = frozenset({"EC", "RSA", "OKP"})


class JwksError(Exception):
    """Keys of an issuer could not be fetched or were not an acceptable JWK Set."""


@dataclass
class _Entry:
    keys: tuple[Key, ...] = ()
    jwks_uri: str | None = None
    fetched_at: float | None = None
    attempted_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def parse_jwks(document: Any) -> tuple[Key, ...]:
    """Public asymmetric keys from a JWK Set; private or symmetric keys are refused outright."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("not a JWK Set")
    listed = document["keys"]
    if not all(isinstance(k, dict) for k in listed):
        raise JwksError("not a JWK Set")
    if any(k.get("kty") not in ASYMMETRIC_KEY_TYPES for k in listed):
        raise JwksError("only asymmetric public keys may be published")
    if any("d" in k for k in listed):
        raise JwksError("a JWKS must never publish private keys")
    try:
        keys = tuple(KeySet.import_key_set(document))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise JwksError(f"invalid JWK Set: {error}") from error
    return keys


class JwksCache:
    """JWKS by issuer URL: fetched on demand, cached with a TTL, refreshed on key rotation."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Clock = time.monotonic,
        ttl: float = 300.0,
        min_refresh_interval: float = 30.0,
    ) -> None:
        self.http = http
        self.clock = clock
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self._entries: dict[str, _Entry] = {}
        self.fetches = 0
        """How many JWKS documents were fetched (for tests and the demo's counters)."""

    def cached(self, issuer: str) -> tuple[Key, ...]:
        """The keys known now, without any I/O (what a synchronous verifier may use)."""
        entry = self._entries.get(issuer.rstrip("/"))
        return entry.keys if entry else ()

    def is_fresh(self, issuer: str) -> bool:
        entry = self._entries.get(issuer.rstrip("/"))
        return (entry is not None and entry.fetched_at is not None
                and self.clock() - entry.fetched_at < self.ttl)

    async def keys(self, issuer: str, kid: str | None = None) -> tuple[Key, ...]:
        """The issuer's keys, fetched when missing, stale, or lacking ``kid`` (rate-limited)."""
        issuer = issuer.rstrip("/")
        entry = self._entries.setdefault(issuer, _Entry())
        if self._needs_fetch(entry, kid):
            async with entry.lock:
                if self._needs_fetch(entry, kid):  # another task may have fetched meanwhile
                    await self._refresh(issuer, entry)
        return entry.keys

    def forget(self, issuer: str) -> None:
        """Drop an issuer's keys (its trust was revoked; nothing of it should linger)."""
        self._entries.pop(issuer.rstrip("/"), None)

    def _needs_fetch(self, entry: _Entry, kid: str | None) -> bool:
        now = self.clock()
        if entry.fetched_at is None or now - entry.fetched_at >= self.ttl:
            return entry.attempted_at is None or now - entry.attempted_at >= min(
                self.min_refresh_interval, self.ttl)
        if kid is not None and all(key.kid != kid for key in entry.keys):
            return entry.attempted_at is None or now - entry.attempted_at >= (
                self.min_refresh_interval)
        return False

    async def _refresh(self, issuer: str, entry: _Entry) -> None:
        entry.attempted_at = self.clock()
        try:
            if entry.jwks_uri is None:
                entry.jwks_uri = await self._discover(issuer)
            response = await self.http.get(entry.jwks_uri, follow_redirects=False)
            self.fetches += 1
            if response.status_code != 200:
                raise JwksError(f"JWKS of {issuer} answered {response.status_code}")
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError, JwksError):
            if entry.fetched_at is None:
                entry.keys = ()
            return  # keep the last good keys; the next attempt waits for the interval
        entry.keys = keys
        entry.fetched_at = self.clock()

    async def _discover(self, issuer: str) -> str:
        response = await self.http.get(issuer + "/.well-known/openid-configuration",
                                       follow_redirects=False)
        if response.status_code != 200:
            raise JwksError(f"discovery of {issuer} answered {response.status_code}")
        metadata = response.json()
        if not isinstance(metadata, dict) or str(metadata.get("issuer", "")).rstrip("/") != issuer:
            raise JwksError(f"discovery document of {issuer} names another issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(issuer):
            raise JwksError(f"jwks_uri of {issuer} is missing or on another origin")
        return jwks_uri
