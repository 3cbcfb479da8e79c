"""Public keys held by reference: a JWK Set fetched from a URL and kept for a while.

Two kinds of owner share one cache: an *issuer* (a federation partner), whose ``jwks_uri``
comes only from its own discovery document on its own origin, and a *client* registered with
a ``jwks_uri`` (RFC 7591 §2), whose URL is the one it registered. Never from a token's
``jku``/``x5u``/``jwk``/``x5c`` header: an attacker who could name the key URL could sign
anything. Fetching goes through an ``httpx.AsyncClient`` so the same cache works over ASGI
transports in one process and real HTTP between processes.

Keys are cached for ``ttl`` seconds; an unknown ``kid`` (the owner rotated its key) triggers
a refresh, at most once per ``min_refresh_interval`` per owner, on the injected clock, so a
flood of tokens with made-up ``kid`` values cannot turn the cache into a request amplifier.
A failed refresh keeps the keys already known: a partner's short outage must not cut off its
valid assertions. A failed fetch is tried again sooner, with a backoff from
:data:`RETRY_AFTER_FAILURE` doubling up to ``min_refresh_interval``: the interval bounds how often
a made-up ``kid`` can make us fetch, and a fetch that failed (a partner still starting, a
timeout under load) answered nothing to bound. A document is read to at most
:data:`MAX_JWKS_BYTES`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from ..types import Clock

ASYMMETRIC_KEY_TYPES = frozenset({"EC", "RSA", "OKP"})
MAX_JWKS_BYTES = 64 * 1024
"""The largest key document (JWKS or discovery) read; a bigger one is refused unread."""


class JwksError(Exception):
    """Keys of an owner could not be fetched or were not an acceptable JWK Set."""


@dataclass
class _Entry:
    keys: tuple[Key, ...] = ()
    jwks_uri: str | None = None
    fetched_at: float | None = None
    attempted_at: float | None = None
    failures: int = 0
    """Failed fetches in a row (0 after a good one)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


RETRY_AFTER_FAILURE = 1.0
"""Seconds before a failed fetch is tried again (doubling with each failure in a row)."""


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
    """JWK Sets by owner: fetched on demand, cached with a TTL, refreshed on key rotation.

    ``http`` may be None: a real-HTTP client is then made on the first fetch (a standalone
    ``ogsim serve``); a federation member gives its own (ASGI in process, HTTP under
    ``ogsim up``) with :meth:`use_http`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None,
        *,
        clock: Clock = time.monotonic,
        ttl: float = 300.0,
        min_refresh_interval: float = 30.0,
    ) -> None:
        self.http = http
        self.clock = clock
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self._entries: dict[tuple[str, str], _Entry] = {}
        self.fetches = 0
        """How many JWKS documents were fetched (for tests and the demo's counters)."""

    def use_http(self, http: httpx.AsyncClient) -> None:
        self.http = http

    # -- issuers: the JWKS their discovery document names ------------------------------------

    def cached(self, issuer: str) -> tuple[Key, ...]:
        """The issuer's keys known now, without any I/O (what a synchronous verifier uses)."""
        entry = self._entries.get(("issuer", issuer.rstrip("/")))
        return entry.keys if entry else ()

    def is_fresh(self, issuer: str) -> bool:
        entry = self._entries.get(("issuer", issuer.rstrip("/")))
        return (entry is not None and entry.fetched_at is not None
                and self.clock() - entry.fetched_at < self.ttl)

    async def keys(self, issuer: str, kid: str | None = None) -> tuple[Key, ...]:
        """The issuer's keys, fetched when missing, stale, or lacking ``kid`` (rate-limited)."""
        issuer = issuer.rstrip("/")
        entry = self._entries.setdefault(("issuer", issuer), _Entry())
        return await self._ensure(issuer, entry, kid)

    def forget(self, issuer: str) -> None:
        """Drop an issuer's keys (its trust was revoked; nothing of it should linger)."""
        self._entries.pop(("issuer", issuer.rstrip("/")), None)

    # -- owners that registered a jwks_uri ---------------------------------------------------

    def cached_at(self, owner: str, jwks_uri: str) -> tuple[Key, ...]:
        """The keys last fetched from ``owner``'s registered ``jwks_uri``, without I/O."""
        entry = self._entries.get(("uri", owner))
        return entry.keys if entry is not None and entry.jwks_uri == jwks_uri else ()

    async def keys_at(self, owner: str, jwks_uri: str, kid: str | None = None
                      ) -> tuple[Key, ...]:
        """``owner``'s keys from ``jwks_uri``: fetched when missing, stale or lacking ``kid``,
        at most once per ``min_refresh_interval`` for that owner."""
        entry = self._entries.get(("uri", owner))
        if entry is None or entry.jwks_uri != jwks_uri:
            entry = self._entries[("uri", owner)] = _Entry(jwks_uri=jwks_uri)
        return await self._ensure(owner, entry, kid)

    def forget_owner(self, owner: str) -> None:
        self._entries.pop(("uri", owner), None)

    # -- workings ----------------------------------------------------------------------------

    async def _ensure(self, name: str, entry: _Entry, kid: str | None) -> tuple[Key, ...]:
        if self._needs_fetch(entry, kid):
            async with entry.lock:
                if self._needs_fetch(entry, kid):  # another task may have fetched meanwhile
                    await self._refresh(name, entry)
                    if entry.failures and not entry.keys:
                        # Nothing known yet (a partner still starting, a fetch timed out under
                        # load): one more try for this request before it is refused.
                        await asyncio.sleep(RETRY_AFTER_FAILURE / 2)
                        await self._refresh(name, entry)
        return entry.keys

    def _needs_fetch(self, entry: _Entry, kid: str | None) -> bool:
        now = self.clock()
        stale = entry.fetched_at is None or now - entry.fetched_at >= self.ttl
        unknown = kid is not None and all(key.kid != kid for key in entry.keys)
        if not (stale or unknown):
            return False
        if entry.attempted_at is None:
            return True
        wait = min(self.min_refresh_interval, self.ttl) if stale else self.min_refresh_interval
        if entry.failures:
            # While no key is known at all, every request needs one: retry each second.
            doubling = RETRY_AFTER_FAILURE * 2 ** (entry.failures - 1) if entry.keys else 0.0
            wait = min(wait, max(RETRY_AFTER_FAILURE, doubling))
        return now - entry.attempted_at >= wait

    async def _refresh(self, issuer: str, entry: _Entry) -> None:
        entry.attempted_at = self.clock()
        try:
            if entry.jwks_uri is None:
                entry.jwks_uri = await self._discover(issuer)
            status, document = await self._get_json(entry.jwks_uri)
            self.fetches += 1
            if status != 200:
                raise JwksError(f"JWKS of {issuer} answered {status}")
            keys = parse_jwks(document)
        except (httpx.HTTPError, ValueError, JwksError):
            entry.failures += 1
            if entry.fetched_at is None:
                entry.keys = ()
            return  # keep the last good keys; the next attempt waits for the backoff
        entry.keys = keys
        entry.fetched_at = self.clock()
        entry.failures = 0

    async def _get_json(self, url: str) -> tuple[int, Any]:
        """GET ``url`` without following redirects; its JSON body, read to the size bound."""
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=5.0)
        async with self.http.stream("GET", url, follow_redirects=False) as response:
            if response.status_code != 200:
                return response.status_code, None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
        try:
            return 200, json.loads(bytes(body))
        except RecursionError as error:
            raise JwksError(f"{url} answered JSON nested too deeply") from error

    async def _discover(self, issuer: str) -> str:
        status, metadata = await self._get_json(issuer + "/.well-known/openid-configuration")
        if status != 200:
            raise JwksError(f"discovery of {issuer} answered {status}")
        if not isinstance(metadata, dict) or str(metadata.get("issuer", "")).rstrip("/") != issuer:
            raise JwksError(f"discovery document of {issuer} names another issuer")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(issuer):
            raise JwksError(f"jwks_uri of {issuer} is missing or on another origin")
        return jwks_uri
