"""The client registry: applications, their public keys, and what each is allowed to ask for."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import OperatorConfig
from ..errors import OAuthError
from ..storage import Database
from ..types import Clock
from ._jwt import registrable_key_problem
from .types import OPENID, PURPOSE_PREFIX, AuthMethod, GrantType

SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    jwks TEXT NOT NULL,
    jwks_uri TEXT,
    secret_hash TEXT,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    purposes TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    tooling INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    environment TEXT NOT NULL DEFAULT 'production'
);
"""

_PBKDF2_ITERATIONS = 60_000
_SCOPE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.")


class ClientRegistration(BaseModel):
    """What the admin API accepts to register an application (RFC 7591 field names)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._~-]{3,64}$")
    client_name: str = Field(min_length=1, max_length=200)
    token_endpoint_auth_method: AuthMethod = AuthMethod.PRIVATE_KEY_JWT
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = Field(
        default=None, max_length=2000,
        description="where the client publishes its JWK Set (RFC 7591 §2): never with jwks")
    grant_types: list[GrantType] = Field(default_factory=lambda: [GrantType.CLIENT_CREDENTIALS])
    scope: str = Field(default="", description="space-separated API scopes the client may ask")
    purposes: list[str] = Field(default_factory=list)
    redirect_uris: list[str] = Field(default_factory=list)
    tooling: bool = Field(
        default=False, description="operator tooling: the only clients allowed a client secret"
    )


@dataclass(frozen=True)
class Client:
    """A registered application as the authorization server sees it."""

    client_id: str
    name: str
    auth_method: AuthMethod
    jwks: dict[str, Any]
    grant_types: frozenset[GrantType]
    scopes: frozenset[str]
    purposes: frozenset[str]
    redirect_uris: tuple[str, ...]
    tooling: bool
    disabled: bool
    created_at: float
    jwks_uri: str | None = None
    """Keys by reference (RFC 7591): fetched through the server's cache, never ``jwks``."""
    environment: str = "production"
    """``sandbox`` (a developer portal application: documented test numbers only) or
    ``production`` (admin-registered clients, and portal applications an admin approved)."""

    def keys(self) -> list[Key]:
        """The client's registered public keys by value (``jwks``); none for a ``jwks_uri``
        client, whose keys :class:`~operators.identity.client_keys.ClientKeys` fetches."""
        return list(KeySet.import_key_set(self.jwks)) if self.jwks.get("keys") else []  # type: ignore[arg-type]

    def public_view(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_name": self.name,
            "token_endpoint_auth_method": self.auth_method.value,
            **({"jwks_uri": self.jwks_uri} if self.jwks_uri else {"jwks": self.jwks}),
            "grant_types": sorted(g.value for g in self.grant_types),
            "scope": " ".join(sorted(self.scopes)),
            "purposes": sorted(self.purposes),
            "redirect_uris": list(self.redirect_uris),
            "tooling": self.tooling,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }


def _metadata_error(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description, 400)


def _hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, _PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${_PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def _check_secret(secret: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
        candidate = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt),
                                        int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def _public_jwks(value: dict[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {"keys": []}
    listed = value.get("keys")
    if not isinstance(listed, list) or not all(isinstance(k, dict) for k in listed):
        raise _metadata_error("jwks must be a JWK Set: {\"keys\": [...]}")
    if any(k.get("kty") not in ("EC", "RSA", "OKP") for k in listed):
        raise _metadata_error("only asymmetric keys (EC, RSA, OKP) may be registered")
    try:
        key_set = KeySet.import_key_set(value)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise _metadata_error(f"jwks is not a valid JWK Set: {error}") from error
    keys = []
    for key in key_set:
        if key.key_type not in ("EC", "RSA", "OKP"):
            raise _metadata_error("only asymmetric keys (EC, RSA, OKP) may be registered")
        if key.is_private:
            raise _metadata_error("register the public key only, never the private key")
        refused = registrable_key_problem(key)
        if refused is not None:
            raise _metadata_error(refused)
        keys.append(dict(key.as_dict(private=False)))
    kids = [key["kid"] for key in keys if "kid" in key]
    if len(kids) != len(set(kids)):
        raise _metadata_error("two keys have the same kid: an assertion could not name its key")
    return {"keys": keys}


def _check_jwks_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise _metadata_error(f"jwks_uri {uri!r} must be an absolute http(s) URL, no fragment")
    if parts.username or parts.password:
        raise _metadata_error("jwks_uri must not carry credentials")


class ClientRegistry:
    """Registers, reads and disables clients; secrets are stored hashed, never in clear."""

    def __init__(self, config: OperatorConfig, db: Database, *, clock: Clock) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        db.ensure_schema(SCHEMA)
        # columns a database from before keys by reference, or the developer portal, lacks
        db.ensure_column("identity_clients", "jwks_uri", "TEXT")
        db.ensure_column("identity_clients", "environment", "TEXT NOT NULL DEFAULT 'production'")

    def register(
        self, registration: ClientRegistration | dict[str, Any], *,
        environment: str = "production",
    ) -> tuple[Client, str | None]:
        """Create a client; returns it and its client secret (shown once) for tooling clients.

        ``environment`` is ``sandbox`` for the developer portal's self-service applications."""
        _check_environment(environment)
        if not isinstance(registration, ClientRegistration):
            try:
                registration = ClientRegistration.model_validate(registration)
            except ValidationError as error:
                raise _metadata_error(_first_error(error)) from error
        reg = registration
        jwks = _public_jwks(reg.jwks)
        if reg.jwks_uri is not None:
            if reg.jwks is not None:
                raise _metadata_error("jwks and jwks_uri must not both be given (RFC 7591)")
            _check_jwks_uri(reg.jwks_uri)
        secret: str | None = None
        if reg.token_endpoint_auth_method is AuthMethod.CLIENT_SECRET_BASIC:
            if not reg.tooling:
                raise _metadata_error("client_secret_basic is reserved for operator tooling")
            secret = secrets.token_urlsafe(32)
        elif not jwks["keys"] and reg.jwks_uri is None:
            raise _metadata_error("private_key_jwt needs a jwks_uri or a public key in jwks")
        scopes = frozenset(reg.scope.split())
        for scope in scopes:
            if scope.startswith(PURPOSE_PREFIX) or not set(scope) <= _SCOPE_CHARS:
                raise _metadata_error(f"scope {scope!r} is not an API scope")
        for purpose in reg.purposes:
            if self.config.purpose(purpose) is None:
                raise _metadata_error(f"purpose {purpose!r} is not offered by this operator")
        for uri in reg.redirect_uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
                raise _metadata_error(f"redirect_uri {uri!r} must be an absolute URL, no fragment")
        if GrantType.AUTHORIZATION_CODE in reg.grant_types and not reg.redirect_uris:
            raise _metadata_error("authorization_code needs at least one redirect_uri")
        client_id = reg.client_id or f"app-{secrets.token_hex(8)}"
        client = Client(
            client_id=client_id,
            name=reg.client_name,
            auth_method=reg.token_endpoint_auth_method,
            jwks=jwks,
            grant_types=frozenset(reg.grant_types),
            scopes=scopes | {OPENID},
            purposes=frozenset(reg.purposes),
            redirect_uris=tuple(reg.redirect_uris),
            tooling=reg.tooling,
            disabled=False,
            created_at=self.clock(),
            jwks_uri=reg.jwks_uri,
            environment=environment,
        )
        with self.db.transaction():
            if self.db.one("SELECT 1 FROM identity_clients WHERE client_id = ?", (client_id,)):
                raise _metadata_error(f"client_id {client_id!r} is already registered")
            self.db.insert(
                "INSERT INTO identity_clients (client_id, name, auth_method, jwks, jwks_uri,"
                " secret_hash, grant_types, scopes, purposes, redirect_uris, tooling, created_at,"
                " environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client.client_id, client.name, client.auth_method.value, json.dumps(jwks),
                    client.jwks_uri,
                    _hash_secret(secret) if secret else None,
                    json.dumps(sorted(g.value for g in client.grant_types)),
                    json.dumps(sorted(client.scopes)), json.dumps(sorted(client.purposes)),
                    json.dumps(list(client.redirect_uris)), int(client.tooling),
                    client.created_at, client.environment,
                ),
            )
        return client, secret

    def get(self, client_id: str) -> Client | None:
        row = self.db.one("SELECT * FROM identity_clients WHERE client_id = ?", (client_id,))
        return None if row is None else _client(row)

    def all(self) -> list[Client]:
        return [_client(r) for r in self.db.all("SELECT * FROM identity_clients ORDER BY rowid")]

    def disable(self, client_id: str) -> Client | None:
        self.db.execute("UPDATE identity_clients SET disabled = 1 WHERE client_id = ?",
                        (client_id,))
        return self.get(client_id)

    def enable(self, client_id: str) -> Client | None:
        self.db.execute("UPDATE identity_clients SET disabled = 0 WHERE client_id = ?",
                        (client_id,))
        return self.get(client_id)

    def set_environment(self, client_id: str, environment: str) -> Client | None:
        """Move a client between ``sandbox`` and ``production`` (an admin's approval)."""
        _check_environment(environment)
        self.db.execute("UPDATE identity_clients SET environment = ? WHERE client_id = ?",
                        (environment, client_id))
        return self.get(client_id)

    def replace_keys(self, client_id: str, jwks: dict[str, Any]) -> Client | None:
        """Hold ``jwks`` (public keys, checked as at registration) as the client's only keys:
        an assertion signed by a key it held before is refused from now on."""
        public = _public_jwks(jwks)
        if not public["keys"]:
            raise _metadata_error("private_key_jwt needs a public key in jwks")
        self.db.execute("UPDATE identity_clients SET jwks = ?, jwks_uri = NULL"
                        " WHERE client_id = ?", (json.dumps(public), client_id))
        return self.get(client_id)

    def withdraw_keys(self, client_id: str) -> None:
        """Hold no key for the client: no assertion verifies until new keys are given (someone
        who no longer should may hold the private key)."""
        self.db.execute("UPDATE identity_clients SET jwks = ?, jwks_uri = NULL"
                        " WHERE client_id = ?", (json.dumps({"keys": []}), client_id))

    def refer_keys(self, client_id: str, jwks_uri: str) -> Client | None:
        """Hold a client's keys by reference from now on (a partner registered by value
        before); its registered ``jwks`` is dropped, so only the URL's keys count."""
        _check_jwks_uri(jwks_uri)
        self.db.execute("UPDATE identity_clients SET jwks_uri = ?, jwks = ? WHERE client_id = ?",
                        (jwks_uri, json.dumps({"keys": []}), client_id))
        return self.get(client_id)

    def check_secret(self, client_id: str, secret: str) -> bool:
        row = self.db.one("SELECT secret_hash FROM identity_clients WHERE client_id = ?",
                          (client_id,))
        if row is None or row["secret_hash"] is None:
            _check_secret(secret, _hash_secret("timing-equaliser"))
            return False
        return _check_secret(secret, row["secret_hash"])


def _client(row: Any) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        auth_method=AuthMethod(row["auth_method"]),
        jwks=json.loads(row["jwks"]),
        grant_types=frozenset(GrantType(g) for g in json.loads(row["grant_types"])),
        scopes=frozenset(json.loads(row["scopes"])),
        purposes=frozenset(json.loads(row["purposes"])),
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        tooling=bool(row["tooling"]),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        jwks_uri=row["jwks_uri"],
        environment=row["environment"],
    )


ENVIRONMENTS = ("sandbox", "production")


def _check_environment(environment: str) -> None:
    if environment not in ENVIRONMENTS:
        raise _metadata_error(f"environment {environment!r} is not one of {ENVIRONMENTS}")


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
