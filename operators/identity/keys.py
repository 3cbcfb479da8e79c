"""The operator's signing keys: one active key, retired keys kept until their tokens expire.

Private keys are sealed at rest (AES-256-GCM, the row's ``kid`` as associated data) under a
key-encryption key from ``OGSIM_KEY_ENCRYPTION_KEY`` (:class:`KeySealing`). In memory, and
for a library caller that gives none, a development key derived from a public label seals
them; a process serving a database file refuses to start without a real one
(:meth:`KeySealing.for_database` with ``required``). Rows found in clear, or sealed with the
development key when a real one is given, are sealed again on open, with a logged line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from ..storage import Database
from ..types import Clock

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at REAL NOT NULL,
    retired_at REAL
);
"""


class KeyEncryptionKeyError(RuntimeError):
    """The signing keys cannot be sealed or opened: no key-encryption key, or the wrong one."""


class KeySealing:
    """Seals and opens private JWKs with AES-256-GCM under one key-encryption key."""

    ENV = "OGSIM_KEY_ENCRYPTION_KEY"
    """The environment variable holding the key: 32 random bytes, base64url (:meth:`generate`)."""
    PREFIX = "aesgcm:v1:"
    _DEVELOPMENT_LABEL = b"ogsim development key-encryption key (public: not for real keys)"

    def __init__(self, key: bytes, *, development: bool = False) -> None:
        if len(key) != 32:
            raise KeyEncryptionKeyError("a key-encryption key is 32 bytes")
        self._aead = AESGCM(key)
        self.development = development

    @staticmethod
    def generate() -> str:
        """A new key-encryption key as ``OGSIM_KEY_ENCRYPTION_KEY`` takes it."""
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    @classmethod
    def from_text(cls, text: str) -> KeySealing:
        try:
            key = base64.urlsafe_b64decode(text.strip().encode() + b"==")
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise KeyEncryptionKeyError(
                f"{cls.ENV} must be 32 random bytes in base64url, e.g. "
                "`python -c \"import base64, secrets; "
                "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\"`"
            )
        return cls(key)

    @classmethod
    def development_key(cls) -> KeySealing:
        """The derived key of the embedded default: in memory, the demo, tests."""
        return cls(hashlib.sha256(cls._DEVELOPMENT_LABEL).digest(), development=True)

    @classmethod
    def for_database(
        cls, path: str, environ: Mapping[str, str] | None = None, *, required: bool = False
    ) -> KeySealing:
        """The key from the environment; else the development key, unless ``required`` for a
        database file (a process serving one), which then refuses with a clear message."""
        text = (os.environ if environ is None else environ).get(cls.ENV, "")
        if text:
            return cls.from_text(text)
        if required and path != ":memory:":
            raise KeyEncryptionKeyError(
                f"{path} keeps the operator's signing keys, which are encrypted at rest: set "
                f"{cls.ENV} to a key-encryption key (32 random bytes, base64url; e.g. "
                "`export OGSIM_KEY_ENCRYPTION_KEY=$(python -c \"import base64, secrets; "
                "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\")`) and "
                "keep it: the same key opens the database next time. Without --storage the "
                "operator runs in memory and needs none."
            )
        return cls.development_key()

    @classmethod
    def is_sealed(cls, stored: str) -> bool:
        return stored.startswith(cls.PREFIX)

    def seal(self, kid: str, private_jwk: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, private_jwk.encode(), kid.encode())
        return self.PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, kid: str, stored: str) -> str:
        """The clear JWK of a sealed row; :class:`KeyEncryptionKeyError` for another key's."""
        raw = base64.urlsafe_b64decode(stored.removeprefix(self.PREFIX).encode())
        try:
            return self._aead.decrypt(raw[:12], raw[12:], kid.encode()).decode()
        except InvalidTag as error:
            raise KeyEncryptionKeyError(
                f"signing key {kid} was sealed with another key-encryption key: give the one "
                f"it was sealed with in {self.ENV}"
            ) from error


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


ID_TOKEN_ALG = "RS256"
"""ID tokens are signed with RS256: OIDC Core §3.1.3.7 makes it every relying party's default
(``id_token_signed_response_alg``) and Discovery 1.0 requires servers to offer it."""


class KeyRing:
    """Signing keys of one operator, persisted in its database: one active key per algorithm.

    ``alg`` signs access tokens and ``id_token_alg`` (RS256) ID tokens; when they differ the
    ring holds an active key of each, both published. For each algorithm the newest unretired
    key signs. ``rotate`` retires them and creates new ones; a retired key stays published
    (and accepted) for ``retention`` seconds, the longest life of a token it may have signed,
    so rotation never invalidates an issued token.
    """

    CACHE_TTL = 60.0
    """Seconds the verification key cache is trusted before the database is read again."""
    MIN_RELOAD_INTERVAL = 1.0
    """An unknown ``kid`` reloads at most this often, so made-up kids cannot load the database."""

    def __init__(
        self,
        db: Database,
        *,
        alg: str,
        clock: Clock,
        retention: float,
        sealing: KeySealing | None = None,
        id_token_alg: str = ID_TOKEN_ALG,
    ) -> None:
        self.db = db
        self.alg = alg
        self.id_token_alg = id_token_alg
        self.algs = tuple(dict.fromkeys((alg, id_token_alg)))
        self.clock = clock
        self.retention = retention
        self.sealing = sealing if sealing is not None else KeySealing.for_database(db.path)
        self._verification: dict[str, SigningKey] = {}
        self._keys: dict[str, Key] = {}  # opened private keys by kid: opened once, not per sign
        self._loaded_at = float("-inf")
        db.ensure_schema(SCHEMA)
        with db.transaction():
            self._seal_stored_keys()
            for each in self.algs:
                if self._active_row(each) is None:
                    self._create(each)

    def _seal_stored_keys(self) -> None:
        """Open every stored key now (a wrong key-encryption key refuses at start, not at the
        first token) and seal again what is in clear or under the development key."""
        resealed = 0
        development = KeySealing.development_key()
        for row in self.db.all("SELECT kid, private_jwk FROM identity_signing_keys"):
            kid, stored = row["kid"], row["private_jwk"]
            if not KeySealing.is_sealed(stored):
                clear = stored
            else:
                try:
                    self.sealing.open(kid, stored)
                    continue
                except KeyEncryptionKeyError:
                    if self.sealing.development:
                        raise
                    clear = development.open(kid, stored)  # raises: sealed with another key
            self.db.execute(
                "UPDATE identity_signing_keys SET private_jwk = ? WHERE kid = ?",
                (self.sealing.seal(kid, clear), kid),
            )
            resealed += 1
        if resealed:
            log.warning(
                "%s: %d signing key(s) were stored in clear or under the development key; "
                "encrypted them at rest with %s",
                self.db.path,
                resealed,
                "the development key" if self.sealing.development else KeySealing.ENV,
            )
        elif self.sealing.development and self.db.path != ":memory:":
            log.info("%s: signing keys sealed with the development key", self.db.path)

    def _active_row(self, alg: str) -> Any:
        return self.db.one(
            "SELECT * FROM identity_signing_keys WHERE retired_at IS NULL AND alg = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (alg,),
        )

    def _create(self, alg: str) -> SigningKey:
        key = _generate(alg)
        kid = key.thumbprint()
        now = self.clock()
        sealed = self.sealing.seal(kid, json.dumps(dict(key.as_dict(private=True))))
        self.db.insert(
            "INSERT INTO identity_signing_keys (kid, alg, private_jwk, created_at)"
            " VALUES (?, ?, ?, ?)",
            (kid, alg, sealed, now),
        )
        self._keys[kid] = key
        return SigningKey(kid, alg, key, now, None)

    def _load(self, row: Any) -> SigningKey:
        kid = row["kid"]
        key = self._keys.get(kid)
        if key is None:
            stored = row["private_jwk"]
            clear = self.sealing.open(kid, stored) if KeySealing.is_sealed(stored) else stored
            key = self._keys[kid] = JWKRegistry.import_key(json.loads(clear))
        return SigningKey(kid, row["alg"], key, row["created_at"], row["retired_at"])

    def active(self, alg: str | None = None) -> SigningKey:
        """The key that signs with ``alg`` now (by default the access tokens' algorithm)."""
        alg = alg or self.alg
        if alg not in self.algs:
            raise ValueError(f"this ring holds no {alg} key")
        row = self._active_row(alg)
        if row is None:  # only if someone retired every key behind our back
            with self.db.transaction():
                return self._create(alg)
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
        """Retire the active keys (still published for ``retention`` s) and start new ones;
        returns the new access-token key."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE identity_signing_keys SET retired_at = ? WHERE retired_at IS NULL",
                (self.clock(),),
            )
            self._loaded_at = float("-inf")
            created = [self._create(each) for each in self.algs]
        return created[0]

    def sign(self, claims: dict[str, Any], *, typ: str, alg: str | None = None) -> str:
        """A compact JWS of ``claims`` by the active key of ``alg`` (default: ``self.alg``)."""
        key = self.active(alg)
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])
