"""The operator's signing keys: one active key, retired keys kept until their tokens expire."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from ..storage import Database
from ..types import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at REAL NOT NULL,
    retired_at REAL
);
"""


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring with the single algorithm it may ever be used with (pinned)."""

    kid: str
    alg: str
    key: Key
    created_at: float
    retired_at: float | None

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False, kid=self.kid, alg=self.alg, use="sig"))


def _generate(alg: str) -> Key:
    if alg.startswith("ES"):
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
        return ECKey.generate_key(curve, private=True)
    return RSAKey.generate_key(2048, private=True)


class KeyRing:
    """Signing keys of one operator, persisted in its database.

    The newest unretired key signs. ``rotate`` retires it and creates a new one; a retired key
    stays published (and accepted) for ``retention`` seconds, the longest life of a token it
    may have signed, so rotation never invalidates an issued token.
    """

    CACHE_TTL = 60.0
    """Seconds the verification key cache is trusted before the database is read again."""
    MIN_RELOAD_INTERVAL = 1.0
    """An unknown ``kid`` reloads at most this often, so made-up kids cannot load the database."""

    def __init__(self, db: Database, *, alg: str, clock: Clock, retention: float) -> None:
        self.db = db
        self.alg = alg
        self.clock = clock
        self.retention = retention
        self._verification: dict[str, SigningKey] = {}
        self._loaded_at = float("-inf")
        db.ensure_schema(SCHEMA)
        with db.transaction():
            if self._active_row() is None:
                self._create()

    def _active_row(self) -> Any:
        return self.db.one(
            "SELECT * FROM identity_signing_keys WHERE retired_at IS NULL"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1"
        )

    def _create(self) -> SigningKey:
        key = _generate(self.alg)
        kid = key.thumbprint()
        now = self.clock()
        self.db.insert(
            "INSERT INTO identity_signing_keys (kid, alg, private_jwk, created_at)"
            " VALUES (?, ?, ?, ?)",
            (kid, self.alg, json.dumps(dict(key.as_dict(private=True))), now),
        )
        return SigningKey(kid, self.alg, key, now, None)

    @staticmethod
    def _load(row: Any) -> SigningKey:
        key = JWKRegistry.import_key(json.loads(row["private_jwk"]))
        return SigningKey(row["kid"], row["alg"], key, row["created_at"], row["retired_at"])

    def active(self) -> SigningKey:
        row = self._active_row()
        if row is None:  # only if someone retired every key behind our back
            with self.db.transaction():
                return self._create()
        return self._load(row)

    def published(self) -> list[SigningKey]:
        """The active key and every retired key whose tokens may still be alive."""
        horizon = self.clock() - self.retention
        rows = self.db.all(
            "SELECT * FROM identity_signing_keys WHERE retired_at IS NULL OR retired_at >= ?"
            " ORDER BY created_at DESC, rowid DESC",
            (horizon,),
        )
        return [self._load(row) for row in rows]

    def find(self, kid: str) -> SigningKey | None:
        """A published key by ``kid``; ``kid`` is only ever a lookup key, never a path or SQL.

        Served from a cache of the published keys, read again from the database when it is
        older than :attr:`CACHE_TTL` or on an unknown ``kid`` (a key rotated in by another
        replica sharing the database); a retired key leaves it once past its retention.
        """
        now = self.clock()
        key = self._verification.get(kid)
        stale = now - self._loaded_at > self.CACHE_TTL
        unknown_may_reload = key is None and now - self._loaded_at >= self.MIN_RELOAD_INTERVAL
        if stale or unknown_may_reload:
            self._verification = {k.kid: k for k in self.published()}
            self._loaded_at = now
            key = self._verification.get(kid)
        if key is None or (key.retired_at is not None and key.retired_at < now - self.retention):
            return None
        return key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [k.public_jwk() for k in self.published()]}

    def rotate(self) -> SigningKey:
        """Retire the active key (still published for ``retention`` s) and start a new one."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE identity_signing_keys SET retired_at = ? WHERE retired_at IS NULL",
                (self.clock(),),
            )
            self._loaded_at = float("-inf")
            return self._create()

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        key = self.active()
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])
