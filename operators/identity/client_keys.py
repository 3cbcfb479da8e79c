"""Where a client's verification keys come from: registered by value, or by reference.

A client registered with ``jwks`` is verified with those keys. A client registered with a
``jwks_uri`` (RFC 7591 §2) is verified with the keys its URL publishes, fetched through the
server's :class:`~operators.identity.jwks_cache.JwksCache`: cached for its TTL, refreshed
when a JWT names a ``kid`` not in the cache (at most once per ``min_refresh_interval`` per
client), so a client or a federation partner that rotates its key keeps working without
registering again.

Sync verification, async keys: client authentication and the grants are synchronous and do
no I/O; they read :meth:`ClientKeys.of`. :meth:`ClientKeys.prepare`, awaited by the HTTP face
before an endpoint runs, fetches what the JWTs of the request will need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from joserfc.jwk import Key

from . import _jwt
from .clients import Client, ClientRegistry
from .jwks_cache import JwksCache

JWT_PARAMETERS = ("client_assertion", "assertion", "request")
"""Request parameters that may carry a JWT signed by a client (its ``iss``)."""


class ClientKeys:
    """Each client's verification keys: its registered ``jwks``, or its ``jwks_uri``'s."""

    def __init__(self, clients: ClientRegistry, cache: JwksCache) -> None:
        self.clients = clients
        self.cache = cache

    def of(self, client: Client) -> tuple[Key, ...]:
        """The keys known now, without I/O."""
        if client.jwks_uri:
            return self.cache.cached_at(self._owner(client), client.jwks_uri)
        return tuple(client.keys())

    async def prepare(self, params: Mapping[str, str], names: Iterable[str] = JWT_PARAMETERS
                      ) -> None:
        """Fetch the keys of every enabled ``jwks_uri`` client whose JWT is in ``params``.

        Reads only the unverified ``iss`` and ``kid`` to know whose keys to fetch; never
        raises: a bad JWT is refused by the synchronous check that follows.
        """
        for name in names:
            token = params.get(name)
            if not token:
                continue
            try:
                header = _jwt.read_header(token)
                iss = _jwt.string(_jwt.unverified_claims(token), "iss")
            except _jwt.JwtRejectedError:
                continue
            client = self.clients.get(iss)
            if client is None or client.disabled or not client.jwks_uri:
                continue
            kid = header.get("kid")
            await self.cache.keys_at(self._owner(client), client.jwks_uri,
                                     kid if isinstance(kid, str) else None)

    async def warm(self, client_ids: Iterable[str]) -> None:
        """Fetch the keys of these ``jwks_uri`` clients now (at start-up, before any load), so
        their first JWT is not the one that waits for a fetch from a busy partner."""
        for client_id in client_ids:
            client = self.clients.get(client_id)
            if client is not None and client.jwks_uri and not client.disabled:
                await self.cache.keys_at(self._owner(client), client.jwks_uri)

    @staticmethod
    def _owner(client: Client) -> str:
        return f"client:{client.client_id}"
