"""RFC 9068 access tokens: issued, recorded, verified, introspected and revoked.

Every token is a JWT (header ``typ: at+jwt``) signed by the operator's key ring, and a row
in the operator's database mapping its ``jti`` to the subscriber, the purpose and the consent
it was issued under. ``sub`` is a pairwise pseudonym (HMAC of client and number under an
operator secret), never the phone number; a two-legged token's ``sub`` is the client id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import OperatorConfig
from ..storage import Database
from ..subscriber_base import SubscriberBase
from ..types import Clock
from . import _jwt
from .clients import ClientRegistry
from .consent import ConsentStore
from .errors import InvalidAccessTokenError, TokenContextError
from .grant_standing import GrantFacts, TokenContext, grant_refusal
from .keys import KeyRing
from .purposes import ScopeRequest
from .types import ACCESS_TOKEN_TYP, OPENID, PURPOSE_PREFIX, GrantType

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_access_tokens (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    msisdn TEXT,
    purpose TEXT,
    scopes TEXT NOT NULL,
    grant_type TEXT NOT NULL,
    grant_ref TEXT,
    consent_id TEXT,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS identity_access_tokens_grant ON identity_access_tokens (grant_ref);
"""

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


@dataclass(frozen=True)
class AccessTokenClaims:
    """The verified claims of one of this operator's access tokens."""

    iss: str
    sub: str
    aud: tuple[str, ...]
    exp: float
    iat: float
    jti: str
    client_id: str
    scope: tuple[str, ...]
    kid: str
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    jti: str
    id_token: str | None = None

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.id_token:
            body["id_token"] = self.id_token
        return body


class TokenService:
    """Issues and checks this operator's access tokens; knows no other operator's keys."""

    def __init__(
        self,
        config: OperatorConfig,
        db: Database,
        keys: KeyRing,
        *,
        clients: ClientRegistry,
        consents: ConsentStore,
        subscribers: SubscriberBase,
        clock: Clock,
        audience: str,
    ) -> None:
        self.config = config
        self.db = db
        self.keys = keys
        self.clients = clients
        self.consents = consents
        self._contexts: dict[tuple[str, str, str], tuple[tuple[int, ...], float, GrantFacts]] = {}
        self.subscribers = subscribers
        self.clock = clock
        self.audience = audience
        db.ensure_schema(SCHEMA)
        # columns a database from before aggregators' parties, or before TS.43 tokens, lacks
        db.ensure_column("identity_access_tokens", "consent_party", "TEXT")
        db.ensure_column("identity_access_tokens", "by_network", "INTEGER NOT NULL DEFAULT 0")
        self._pairwise_secret = self._secret("pairwise")

    def _secret(self, name: str) -> bytes:
        with self.db.transaction():
            row = self.db.one("SELECT value FROM identity_secrets WHERE name = ?", (name,))
            if row is None:
                value = secrets.token_hex(32)
                self.db.insert(
                    "INSERT INTO identity_secrets (name, value) VALUES (?, ?)", (name, value)
                )
                return bytes.fromhex(value)
        return bytes.fromhex(row["value"])

    def pairwise_sub(self, client_id: str, msisdn: str) -> str:
        """The subscriber's pseudonym for this client: stable, unlinkable across clients."""
        mac = hmac.new(self._pairwise_secret, f"{client_id}\x00{msisdn}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")

    # -- issue -----------------------------------------------------------------------------

    def issue(
        self,
        client_id: str,
        request: ScopeRequest,
        *,
        grant: GrantType,
        msisdn: str | None = None,
        grant_ref: str | None = None,
        consent_id: str | None = None,
        nonce: str | None = None,
        auth_time: float | None = None,
        consent_party: str | None = None,
        by_network: bool = False,
    ) -> IssuedToken:
        now = self.clock()
        lifetime = self.config.lifetimes.access_token
        sub = self.pairwise_sub(client_id, msisdn) if msisdn else client_id
        jti = secrets.token_urlsafe(18)
        scope = " ".join(request.scopes)
        claims = {
            "iss": self.config.issuer_url,
            "sub": sub,
            "aud": self.audience,
            "exp": int(now + lifetime),
            "iat": int(now),
            "nbf": int(now),
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
        }
        access_token = self.keys.sign(claims, typ=ACCESS_TOKEN_TYP)
        id_token = None
        if msisdn and request.openid:
            id_claims: dict[str, Any] = {
                "iss": self.config.issuer_url,
                "sub": sub,
                "aud": client_id,
                "exp": int(now + lifetime),
                "iat": int(now),
                "auth_time": int(auth_time if auth_time is not None else now),
                "amr": ["nbm"],
            }
            if nonce:
                id_claims["nonce"] = nonce
            id_token = self.keys.sign(id_claims, typ="JWT", alg=self.keys.id_token_alg)
        self.db.insert(
            "INSERT INTO identity_access_tokens (jti, client_id, sub, msisdn, purpose, scopes,"
            " grant_type, grant_ref, consent_id, issued_at, expires_at, consent_party,"
            " by_network) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                jti,
                client_id,
                sub,
                msisdn,
                request.purpose.purpose if request.purpose else None,
                json.dumps(request.scopes),
                grant.value,
                grant_ref,
                consent_id,
                now,
                int(now + lifetime),
                consent_party if consent_party != client_id else None,
                int(by_network),
            ),
        )
        return IssuedToken(access_token, lifetime, scope, jti, id_token)

    # -- verify ----------------------------------------------------------------------------

    def verify(self, token: str) -> AccessTokenClaims:
        """Check a bearer token as a resource server must (RFC 9068 §4, RFC 8725).

        Size cap before parsing; ``alg: none``, ``crit``, ``jku``/``x5u``/``jwk``/``x5c``
        refused; ``kid`` only looked up among this operator's published keys and the
        algorithm pinned to that key (so HS256-with-the-public-key cannot pass); ``typ``
        must be ``at+jwt``; ``iss``, ``aud``, required claims and times checked against the
        injected clock with the configured skew. Raises :class:`InvalidAccessTokenError`.
        """
        try:
            header = _jwt.read_header(token)
            if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
                raise _jwt.JwtRejectedError("typ is not at+jwt")
            kid = header.get("kid")
            key = self.keys.find(kid) if isinstance(kid, str) else None
            if key is None:
                raise _jwt.JwtRejectedError("unknown signing key")
            claims = _jwt.verify(token, key.key, key.alg)
            for name in REQUIRED_CLAIMS:
                if name not in claims:
                    raise _jwt.JwtRejectedError(f"missing '{name}'")
            if claims["iss"] != self.config.issuer_url:
                raise _jwt.JwtRejectedError("wrong issuer")
            aud = _jwt.audiences(claims)
            if self.audience not in aud:
                raise _jwt.JwtRejectedError("wrong audience")
            now, skew = self.clock(), self.config.lifetimes.clock_skew
            exp = _jwt.number(claims, "exp")
            iat = _jwt.number(claims, "iat")
            nbf = _jwt.number(claims, "nbf", required=False)
            assert exp is not None and iat is not None
            if exp <= now - skew:
                raise _jwt.JwtRejectedError("token expired")
            if iat > now + skew or (nbf is not None and nbf > now + skew):
                raise _jwt.JwtRejectedError("token not yet valid")
            sub, jti = _jwt.string(claims, "sub"), _jwt.string(claims, "jti")
            client_id = _jwt.string(claims, "client_id")
            scope = claims.get("scope", "")
            if not isinstance(scope, str):
                raise _jwt.JwtRejectedError("malformed 'scope'")
        except _jwt.JwtRejectedError as error:
            raise InvalidAccessTokenError(str(error)) from error
        return AccessTokenClaims(
            iss=claims["iss"],
            sub=sub,
            aud=tuple(aud),
            exp=exp,
            iat=iat,
            jti=jti,
            client_id=client_id,
            scope=tuple(scope.split()),
            kid=key.kid,
            raw=claims,
        )

    _GRANT_TABLES = (
        "identity_access_tokens",
        "identity_consents",
        "identity_clients",
        "subscriber_changes",
    )

    def context(self, claims: AccessTokenClaims) -> TokenContext:
        """Whether a verified token may still be honoured, and on whose behalf.

        A revocation (of the token, of the consent behind it, a legitimate-interest opt-out,
        a disabled client) takes effect on the very next check. Raises
        :class:`TokenContextError` (the rule is :func:`grant_refusal`).
        """
        facts = self.facts(claims)
        refusal = grant_refusal(facts, self.clock())
        if refusal is not None:
            raise refusal
        return facts.token

    def facts(self, claims: AccessTokenClaims) -> GrantFacts:
        """The grant behind a verified token as the database shows it now.

        Read again only when a table they come from may have changed (a write by this handle
        or a commit by another connection, see :meth:`Database.version`) or the subscriber's
        next scheduled change is due; the consent's own expiry is the rule's to check.
        """
        stamp = self.db.version(*self._GRANT_TABLES)
        now = self.clock()
        key = (claims.jti, claims.client_id, claims.sub)
        cached = self._contexts.get(key)
        if cached is not None and cached[0] == stamp and now < cached[1]:
            return cached[2]
        facts, valid_until = self._facts(claims, now)
        if len(self._contexts) >= 100_000:
            self._contexts.clear()
        self._contexts[key] = (stamp, valid_until, facts)
        return facts

    def _facts(self, claims: AccessTokenClaims, now: float) -> tuple[GrantFacts, float]:
        row = self.db.one("SELECT * FROM identity_access_tokens WHERE jti = ?", (claims.jti,))
        if row is None or row["client_id"] != claims.client_id or row["sub"] != claims.sub:
            unknown = TokenContext(
                claims.client_id, None, None, (), claims.jti, claims.sub,
                GrantType.CLIENT_CREDENTIALS, None,
            )
            return GrantFacts(unknown, issued_here=False), float("inf")
        client = self.clients.get(row["client_id"])
        purpose = row["purpose"]
        msisdn = row["msisdn"]
        consent_id = row["consent_id"]
        token = TokenContext(
            client_id=row["client_id"],
            msisdn=msisdn,
            purpose=purpose,
            scopes=tuple(
                s
                for s in json.loads(row["scopes"])
                if s != OPENID and not s.startswith(PURPOSE_PREFIX)
            ),
            jti=row["jti"],
            sub=row["sub"],
            grant_type=GrantType(row["grant_type"]),
            consent_id=consent_id,
            party=row["consent_party"],
            by_network=bool(row["by_network"]),
        )
        valid_until = float("inf")
        if msisdn is not None:
            due = self.subscribers.next_change_after(msisdn, now)
            if due is not None:
                valid_until = due
        facts = GrantFacts(
            token,
            revoked=row["revoked_at"] is not None,
            client_active=client is not None and not client.disabled,
            policy=self.config.purpose(purpose) if purpose else None,
            consent=self.consents.get(consent_id) if consent_id else None,
            subscriber=self.subscribers.get(msisdn) if msisdn is not None else None,
            sandbox=client is not None and client.environment == "sandbox",
        )
        return facts, valid_until

    def refusal_of(self, issued: IssuedToken) -> TokenContextError | None:
        """Why a token just issued would be refused at its first call, or None: the grant
        behind it may have lapsed between the flow's start and its end (the subscriber opted
        out, left, or withdrew consent meanwhile); the rule is the gateway's own."""
        return grant_refusal(self.facts(self.verify(issued.access_token)), self.clock())

    # -- revoke and introspect ---------------------------------------------------------------

    def owner(self, token: str) -> str | None:
        """The client a token was issued to, if the token is ours (signature checked)."""
        try:
            claims = self.verify(token)
        except InvalidAccessTokenError:
            return None
        return claims.client_id

    def revoke_jti(self, jti: str) -> None:
        self.db.execute(
            "UPDATE identity_access_tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL",
            (self.clock(), jti),
        )

    def revoke_grant(self, grant_ref: str) -> int:
        """Revoke every token issued from one grant (a replayed authorization code)."""
        return self.db.execute(
            "UPDATE identity_access_tokens SET revoked_at = ?"
            " WHERE grant_ref = ? AND revoked_at IS NULL",
            (self.clock(), grant_ref),
        )

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 answer: ``active`` only when the token verifies and still stands."""
        try:
            claims = self.verify(token)
            context = self.context(claims)
        except (InvalidAccessTokenError, TokenContextError):
            return {"active": False}
        return {
            "active": True,
            "iss": claims.iss,
            "sub": claims.sub,
            "aud": list(claims.aud),
            "exp": int(claims.exp),
            "iat": int(claims.iat),
            "jti": claims.jti,
            "client_id": claims.client_id,
            "scope": " ".join(claims.scope),
            "token_type": "Bearer",
            "purpose": context.purpose,
        }
