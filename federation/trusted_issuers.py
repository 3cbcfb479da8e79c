"""Federation partners as JWT-bearer assertion issuers, trusted through the trust graph.

:class:`TrustedIssuers` is an ``AssertionIssuerPolicy`` for one operator's identity server.
An assertion whose ``iss`` names a federation party (its id or its issuer URL) is accepted
only while the trust graph says this operator trusts that party, verified with the keys of
the party's JWKS, and issued to the client the party is registered as here (its id), so its
scopes and purposes stay under this operator's control. Audience (this token endpoint),
lifetime (≤ 300 s) and single use (the ``jti`` replay guard) are the grant's own checks, run
for every issuer. Any other ``iss`` falls back to the default policy (registered clients with
their own keys); a federation party never does, so a revocation cannot be bypassed.

Sync grant, async keys: the identity server's grant is synchronous and must not do I/O, so the
policy answers ``resolve`` from the JWKS cache only, and :meth:`TrustedIssuers.prepare` —
awaited before the grant runs — fetches or refreshes the issuer's keys (unknown ``kid``).
:class:`PrepareAssertions` is an ASGI middleware that does that await for an unchanged
operator app; an operator whose token route awaits ``prepare`` itself does not need it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operators.identity import (
    AssertionIssuer,
    AssertionIssuerPolicy,
    ClientRegistration,
    ClientRegistry,
    GrantType,
    IdentityServer,
    RegisteredClientIssuers,
)

from .jwks_cache import JwksCache
from .trust import TrustGraph
from .trust_revocations import TrustRevocations
from .types import Clock

JWT_BEARER = GrantType.JWT_BEARER.value
MAX_FORM_BYTES = 64 * 1024


def _segment(token: str, index: int) -> dict[str, Any]:
    """One JSON segment of a compact JWS, unverified; empty when malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[index] + "=" * (-len(parts[index]) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


class TrustedIssuers:
    """Assertion issuers for ``relying_party``: trusted federation parties, then the fallback."""

    def __init__(
        self,
        relying_party: str,
        trust: TrustGraph,
        jwks: JwksCache,
        clients: ClientRegistry,
        *,
        fallback: AssertionIssuerPolicy | None = None,
    ) -> None:
        self.relying_party = relying_party
        self._trust = trust
        self.jwks = jwks
        self.clients = clients
        self.fallback = fallback if fallback is not None else RegisteredClientIssuers(clients)
        self.revocations: TrustRevocations | None = None
        """Where this party's revocations are kept for every process serving it; None: only
        in this process's graph (one process, the tests)."""

    @property
    def trust(self) -> TrustGraph:
        """The graph, brought up to the revocations any process serving this party made."""
        if self.revocations is not None:
            self.revocations.sync(self._trust)
        return self._trust

    @classmethod
    def for_identity(
        cls, operator_id: str, identity: IdentityServer, trust: TrustGraph, jwks: JwksCache
    ) -> TrustedIssuers:
        return cls(operator_id, trust, jwks, identity.clients,
                   fallback=RegisteredClientIssuers(identity.clients, identity.client_keys))

    def install(self, identity: IdentityServer) -> None:
        """Make this the policy of an identity server that was built without it.

        A stopgap while ``Operator.from_config`` takes no ``issuer_policy``: it replaces the
        grant's strategy on the live object, which the grant reads on every exchange.
        """
        identity.jwt_bearer.issuers = self
        identity.ciba.told_who_is_served = lambda client_id: self.party_of(client_id) is not None

    def party_of(self, iss: str) -> str | None:
        """The federation party an ``iss`` names, or None for an ordinary application."""
        party = self.trust.party_for_issuer(iss)
        return None if party == self.relying_party else party

    def resolve(self, iss: str) -> AssertionIssuer | None:
        trust = self.trust  # brought up to date once per question
        party = trust.party_for_issuer(iss)
        if party is None:
            return self.fallback.resolve(iss)
        if party == self.relying_party or not trust.trusts(self.relying_party, party):
            return None
        client = self.clients.get(party)
        if client is None or client.disabled:
            return None
        issuer_url = trust.issuer_url(party)
        keys = self.jwks.cached(issuer_url) if issuer_url else ()
        return AssertionIssuer(client, keys) if keys else None

    async def prepare(self, assertion: str) -> None:
        """Fetch the keys a trusted party's assertion needs, before the synchronous grant.

        Does nothing for untrusted or unknown issuers (no request on an attacker's behalf)
        and never raises: a bad assertion is refused by the grant itself.
        """
        header, claims = _segment(assertion, 0), _segment(assertion, 1)
        iss = claims.get("iss")
        if not isinstance(iss, str):
            return
        party = self.party_of(iss)
        if party is None or not self.trust.trusts(self.relying_party, party):
            return
        issuer_url = self.trust.issuer_url(party)
        kid = header.get("kid")
        if issuer_url:
            await self.jwks.keys(issuer_url, kid if isinstance(kid, str) else None)

    async def warm(self, parties: Iterable[str] | None = None) -> None:
        """Fetch the keys of every trusted party now (at start-up), so no call waits for them."""
        for party in parties if parties is not None else self.trust.trusted_by(
                self.relying_party):
            issuer_url = self.trust.issuer_url(party)
            if issuer_url:
                await self.jwks.keys(issuer_url)

    def is_trusted_client(self, client_id: str) -> bool:
        """Whether tokens issued to ``client_id`` may still be honoured (for the gateway).

        True for ordinary applications; for a federation party, only while it is trusted, so
        a revocation also stops the tokens it obtained before.
        """
        trust = self.trust
        party = trust.party_for_issuer(client_id)
        return party is None or party == self.relying_party or trust.trusts(
            self.relying_party, party)


def party_registration(
    party: str, jwks: dict[str, Any] | None = None, *, scope: str, purposes: Iterable[str],
    ciba: bool = False, jwks_uri: str | None = None, redirect_uris: Iterable[str] = (),
) -> ClientRegistration:
    """How an operator registers a federation party as a client: its id, JWT bearer grant.

    Give the party's ``jwks_uri`` (what members do): its keys are then fetched, cached and
    refreshed on an unknown ``kid``, so a key rotation needs no re-registration, for client
    authentication (``private_key_jwt`` for client credentials and, with ``ciba``, CIBA on
    behalf of the party's applications) as for its assertions, which are verified with the
    keys of its published JWKS in any case. ``jwks`` registers keys by value instead.
    With ``redirect_uris`` (an aggregator's callback) the party may also run the
    authorization code flow, for the Number Verification it relays from a device.
    """
    grants = [GrantType.JWT_BEARER, GrantType.CLIENT_CREDENTIALS]
    if ciba:
        grants.append(GrantType.CIBA)
    uris = list(redirect_uris)
    if uris:
        grants.append(GrantType.AUTHORIZATION_CODE)
    return ClientRegistration(
        client_id=party, client_name=f"federation party {party}", jwks=jwks, jwks_uri=jwks_uri,
        grant_types=grants, scope=scope, purposes=list(purposes), redirect_uris=uris,
    )


def issue_assertion(
    identity: IdentityServer,
    *,
    party: str,
    audience: str,
    subject: str,
    scope: str,
    clock: Clock | None = None,
    lifetime: int = 60,
) -> str:
    """An RFC 7523 assertion signed with a party's own identity keys (its published JWKS).

    ``party`` is the ``iss`` (the client id it is registered under at the audience),
    ``audience`` the serving operator's token endpoint, ``subject`` ``tel:+…``, ``scope``
    the API scopes and the one purpose. Short-lived and with a fresh ``jti``: single use.
    """
    now = int((clock or identity.clock)())
    claims = {"iss": party, "sub": subject, "aud": audience, "iat": now, "exp": now + lifetime,
              "jti": secrets.token_urlsafe(16), "scope": scope}
    return identity.keys.sign(claims, typ="JWT")


class PrepareAssertions:
    """ASGI middleware: awaits ``policy.prepare(assertion)`` before a JWT-bearer token request.

    Reads the form body of ``POST`` to one of ``token_paths`` (bounded), lets the policy fetch
    keys, then replays the body untouched to the app.
    """

    def __init__(self, app: ASGIApp, *, policy: TrustedIssuers, token_paths: Iterable[str]
                 ) -> None:
        self.app = app
        self.policy = policy
        self.token_paths = frozenset(p.rstrip("/") for p in token_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"].rstrip("/") not in self.token_paths):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= MAX_FORM_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if not more:
            try:
                form = dict(parse_qsl(body.decode("utf-8")))
            except (UnicodeDecodeError, ValueError):
                form = {}
            if form.get("grant_type") == JWT_BEARER and form.get("assertion"):
                await self.policy.prepare(form["assertion"])
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)
