"""Developers sign in with their company account: the portal as an OpenID Connect relying party.

An organisation that federates its developers' sign-in names its corporate identity provider
(issuer, and the ``client_id``/``client_secret`` the provider gave the portal) on its trust
page. ``/portal/sign-in/corporate?org=...`` then runs the authorization code flow with PKCE
(S256), ``state`` and ``nonce``; the ID token that comes back is verified against the
provider's own keys (its JWKS, found through its discovery document, never a token header),
its ``iss``, ``aud``, ``exp``, ``iat`` and ``nonce``, and its ``email_verified`` must be true.
The developer is linked by ``sub`` (which is also their SCIM id) and created on their first
sign-in. A developer the provider has deprovisioned stays refused here even if the provider
still lets them in. The issuer and the endpoints its document names must be https (plain http
only on a loopback host): the client secret, codes and the keys that check tokens cross them.

The pending flow lives in a table keyed by a hash of ``state`` and is bound to the browser
that started it by a cookie holding ``state``: a callback arriving in another browser (a
login CSRF) or twice is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import Key

from ..identity import JwksCache, JwksError, KeySealing
from ..identity._jwt import (
    JwtRejectedError,
    audiences,
    number,
    read_header,
    string,
    verify_with_any,
)
from ..outbound_hosts import host_problem, scheme_problem
from ..storage import Database
from ..types import Clock
from .accounts import AccountError, DeveloperAccounts
from .developers import Developer

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_org_idps (
    org_id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_org_idps_issuer ON portal_org_idps (issuer);
CREATE TABLE IF NOT EXISTS portal_corporate_logins (
    state_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

CALLBACK_PATH = "/portal/sign-in/corporate/callback"
STATE_COOKIE = "ogsim_corporate_state"
LOGIN_LIFETIME = 600.0
"""Seconds a developer has to come back from the provider."""
SKEW = 10.0
"""Clock difference tolerated on ``exp`` (SECURITY.md: at most 10 s)."""
FUTURE_IAT = 60.0
METADATA_TTL = 300.0
MAX_METADATA_BYTES = 64 * 1024


class SignInRefusedError(Exception):
    """Why a corporate sign-in cannot go on; ``status`` is the page's status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class IdpSettings:
    """An organisation's corporate identity provider, as its admin configured it."""

    org_id: str
    issuer: str
    client_id: str
    client_secret: str
    updated_at: float


class OrganisationIdps:
    """Which identity provider each organisation federates with (one at most).

    The client secret is sealed at rest like the party's signing keys (AES-GCM under
    ``OGSIM_KEY_ENCRYPTION_KEY``, the organisation id as associated data)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.sealing = KeySealing.for_database(db.path)
        db.ensure_schema(SCHEMA)

    def _settings(self, row: Any) -> IdpSettings:
        values = dict(row)
        values["client_secret"] = self.sealing.open(values["org_id"], values["client_secret"])
        return IdpSettings(**values)

    def get(self, org_id: str) -> IdpSettings | None:
        row = self.db.one("SELECT * FROM portal_org_idps WHERE org_id = ?", (org_id,))
        return None if row is None else self._settings(row)

    def for_issuer(self, issuer: str) -> list[IdpSettings]:
        rows = self.db.all("SELECT * FROM portal_org_idps WHERE issuer = ? ORDER BY org_id",
                           (issuer.rstrip("/"),))
        return [self._settings(row) for row in rows]

    def save(self, org_id: str, issuer: str, client_id: str, client_secret: str) -> IdpSettings:
        self.db.execute(
            "INSERT INTO portal_org_idps (org_id, issuer, client_id, client_secret, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (org_id) DO UPDATE SET issuer = excluded.issuer,"
            " client_id = excluded.client_id, client_secret = excluded.client_secret,"
            " updated_at = excluded.updated_at",
            (org_id, issuer.rstrip("/"), client_id, self.sealing.seal(org_id, client_secret),
             self.clock()))
        saved = self.get(org_id)
        assert saved is not None
        return saved

    def remove(self, org_id: str) -> None:
        self.db.execute("DELETE FROM portal_org_idps WHERE org_id = ?", (org_id,))


class IdpDirectory:
    """What the portal knows of identity providers: discovery documents and keys, cached.

    Fetched through ``http`` (an ASGI network in one process, real HTTP otherwise). Keys come
    only from the ``jwks_uri`` of the issuer's own discovery document, on its own origin, and
    are refreshed when a token names an unknown ``kid`` (rate-limited by the cache).
    """

    def __init__(self, http: httpx.AsyncClient | None, clock: Clock = time.monotonic, *,
                 fallback: Callable[[], httpx.AsyncClient | None] | None = None,
                 allowed_hosts: tuple[str, ...] | None = None) -> None:
        self.http = http
        self.clock = clock
        self.allowed_hosts = allowed_hosts
        """The hosts the endpoints a discovery document names may be on (``host_problem``)."""
        self.fallback = fallback
        """Asked on first use when ``http`` is None (the party's own client, set at start-up
        in a federation); a real-HTTP client is made when it has none either."""
        self.jwks = JwksCache(http, clock=clock)
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            given = self.fallback() if self.fallback is not None else None
            # A client of our own keeps no connection open between fetches (they are rare:
            # discovery and keys are cached), so nothing is left to close at shutdown.
            self.http = given if given is not None else httpx.AsyncClient(
                timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)
            )
            self.jwks.use_http(self.http)
        return self.http

    async def metadata(self, issuer: str) -> dict[str, Any]:
        """The issuer's discovery document (SignInRefusedError 502 when unusable)."""
        issuer = issuer.rstrip("/")
        cached = self._metadata.get(issuer)
        if cached is not None and self.clock() - cached[0] < METADATA_TTL:
            return cached[1]
        refused = scheme_problem(issuer)  # settings saved before the rule still hold one
        if refused is not None:
            raise SignInRefusedError(502, f"The identity provider's issuer {issuer} will not be"
                                          f" used: {refused}")
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = await self.client().get(url, follow_redirects=False)
            if response.status_code != 200:
                raise ValueError(f"it answered {response.status_code}")
            if len(response.content) > MAX_METADATA_BYTES:
                raise ValueError("the document is too large")
            document = json.loads(response.content)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, RecursionError) as error:
            raise SignInRefusedError(
                502, f"The identity provider's discovery document ({url}) could not be read: "
                     f"{error}") from error
        if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
            raise SignInRefusedError(502, f"{url} names another issuer than {issuer}.")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            try:
                parts = urlsplit(value) if isinstance(value, str) else None
            except ValueError:  # e.g. an unclosed IPv6 bracket
                parts = None
            if parts is None or parts.scheme not in ("http", "https"):
                raise SignInRefusedError(502, f"{url} has no usable {name}.")
            try:
                # The operator posts to the token endpoint and fetches the keys; it only sends
                # browsers to the authorization endpoint, which a list of hosts holds too (or
                # the portal would redirect anywhere). All three are held to the scheme rule:
                # a password, a code or the keys would cross them.
                fetched = name != "authorization_endpoint" or self.allowed_hosts is not None
                refused = ((host_problem(parts, self.allowed_hosts) if fetched else None)
                           or scheme_problem(parts))
            except ValueError:  # a port that is not a number
                refused = "its URL cannot be read"
            if refused is not None:
                article = "an" if name[0] in "aeiou" else "a"
                raise SignInRefusedError(502, f"{url} names {article} {name} the operator"
                                              f" will not use: {refused}")
        self._metadata[issuer] = (self.clock(), document)
        return document

    async def keys(self, issuer: str, kid: str | None) -> tuple[Key, ...]:
        """``issuer``'s keys (JwksError when they cannot be had): never over plain http off
        loopback, where a man in the middle could hand over his own."""
        refused = scheme_problem(issuer)
        if refused is not None:
            raise JwksError(f"{issuer}: {refused}")
        self.client()
        return await self.jwks.keys(issuer, kid)

    async def verify(self, token: str, issuer: str, *, typ: str) -> dict[str, Any]:
        """``token``'s claims once its signature verifies with one of ``issuer``'s keys and
        its ``typ`` header is ``typ`` (an ID token is never taken for a SET, nor the reverse).
        JwtRejectedError otherwise."""
        header = read_header(token)
        declared = header.get("typ")
        wanted = typ.lower()
        if declared is None and wanted == "jwt":
            pass  # an ID token's typ is optional (OIDC Core §2)
        elif not isinstance(declared, str) or declared.lower().removeprefix(
                "application/") != wanted:
            raise JwtRejectedError(f"'typ' must be {typ!r}")
        try:
            keys = await self.keys(issuer, header.get("kid"))
        except JwksError as error:
            raise JwtRejectedError(f"the issuer's keys could not be read: {error}") from error
        return verify_with_any(token, header, keys)


def check_id_token(claims: dict[str, Any], settings: IdpSettings, nonce: str,
                   now: float) -> None:
    """OIDC Core §3.1.3.7: issuer, audience (only us), expiry, issue time, nonce, subject."""
    if string(claims, "iss").rstrip("/") != settings.issuer:
        raise JwtRejectedError("the ID token comes from another issuer")
    if audiences(claims) != [settings.client_id]:
        raise JwtRejectedError("the ID token is meant for another audience")
    azp = claims.get("azp")
    if azp is not None and azp != settings.client_id:
        raise JwtRejectedError("the ID token was issued to another party (azp)")
    exp = number(claims, "exp")
    iat = number(claims, "iat")
    assert exp is not None and iat is not None
    if exp <= now - SKEW:
        raise JwtRejectedError("the ID token has expired")
    if iat > now + FUTURE_IAT:
        raise JwtRejectedError("the ID token is issued in the future")
    given = claims.get("nonce")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
        raise JwtRejectedError("the ID token's nonce is not this sign-in's")
    subject = string(claims, "sub")
    if len(subject) > 255:
        raise JwtRejectedError("the ID token's subject is too long")


def require_verified_email(claims: dict[str, Any]) -> None:
    """Refuse (403) an ID token whose ``email_verified`` is not true (missing, false, or the
    string "true"): the e-mail address decides which developer account, in which organisation,
    the person gets, and a provider that lets users type any address would otherwise hand a
    colleague's to whoever claims it first (OIDC Core §5.1, §5.7)."""
    if claims.get("email_verified") is not True:
        raise SignInRefusedError(
            403, "Your organisation's identity provider has not verified this account's e-mail"
                 " address (its ID token does not say email_verified: true), and the address"
                 " decides which developer account you get. Ask your organisation to verify it,"
                 " then sign in again.")


class CorporateSignIn:
    """The authorization code flow from the portal's side, for one serving party."""

    def __init__(self, accounts: DeveloperAccounts, idps: OrganisationIdps,
                 directory: IdpDirectory, *, origin: str, clock: Clock) -> None:
        self.accounts = accounts
        self.idps = idps
        self.directory = directory
        self.origin = origin.rstrip("/")
        self.clock = clock
        self.db = accounts.db

    @property
    def redirect_uri(self) -> str:
        """What the organisation registers at its provider as the portal's redirect URI."""
        return f"{self.origin}{CALLBACK_PATH}"

    def sign_in_url(self, org_id: str) -> str:
        """The link an organisation's developers start from."""
        return f"{self.origin}/portal/sign-in/corporate?{urlencode({'org': org_id})}"

    def settings(self, org_id: str) -> IdpSettings:
        settings = self.idps.get(org_id) if org_id else None
        if settings is None:
            raise SignInRefusedError(
                404, "This organisation does not sign in with a corporate identity provider.")
        return settings

    async def start(self, org_id: str) -> tuple[str, str]:
        """Where to send the browser, and the ``state`` its cookie must hold on return."""
        settings = self.settings(org_id)
        metadata = await self.directory.metadata(settings.issuer)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        now = self.clock()
        self.db.execute("DELETE FROM portal_corporate_logins WHERE created_at < ?",
                        (now - LOGIN_LIFETIME,))
        self.db.execute(
            "INSERT INTO portal_corporate_logins (state_hash, org_id, nonce, code_verifier,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (_digest(state), org_id, nonce, verifier, now))
        query = urlencode({
            "response_type": "code", "client_id": settings.client_id,
            "redirect_uri": self.redirect_uri, "scope": "openid email profile",
            "state": state, "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        })
        endpoint = str(metadata["authorization_endpoint"])
        separator = "&" if urlsplit(endpoint).query else "?"
        return f"{endpoint}{separator}{query}", state

    async def finish(self, params: dict[str, str], cookie_state: str | None) -> Developer:
        """The callback: check ``state``, redeem the code, verify the ID token, find or create
        the developer. SignInRefusedError says why not."""
        state = params.get("state", "")
        if not state or len(state) > 200:
            raise SignInRefusedError(400, "The identity provider's answer carries no state.")
        with self.db.transaction():
            row = self.db.one("SELECT * FROM portal_corporate_logins WHERE state_hash = ?",
                              (_digest(state),))
            self.db.execute("DELETE FROM portal_corporate_logins WHERE state_hash = ?",
                            (_digest(state),))
        if row is None or row["created_at"] < self.clock() - LOGIN_LIFETIME:
            raise SignInRefusedError(400, "This sign-in is unknown, used or expired; start again.")
        if not cookie_state or not hmac.compare_digest(cookie_state.encode(), state.encode()):
            raise SignInRefusedError(
                400, "This sign-in was started in another browser; start again here.")
        if "error" in params:
            reason = params.get("error_description") or params["error"]
            raise SignInRefusedError(403, f"The identity provider refused: {reason[:200]}")
        code = params.get("code", "")
        if not code:
            raise SignInRefusedError(400, "The identity provider's answer carries no code.")
        settings = self.settings(str(row["org_id"]))
        if "iss" in params and params["iss"].rstrip("/") != settings.issuer:
            raise SignInRefusedError(400, "The answer comes from another identity provider "
                                          "(RFC 9207 iss).")
        id_token = await self._redeem(settings, code, str(row["code_verifier"]))
        try:
            claims = await self.directory.verify(id_token, settings.issuer, typ="JWT")
            check_id_token(claims, settings, str(row["nonce"]), self.clock())
        except JwtRejectedError as error:
            raise SignInRefusedError(401, f"The identity provider's ID token was refused: "
                                          f"{error}") from error
        return self._developer(settings, claims)

    async def _redeem(self, settings: IdpSettings, code: str, verifier: str) -> str:
        metadata = await self.directory.metadata(settings.issuer)
        try:
            response = await self.directory.client().post(
                str(metadata["token_endpoint"]),
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": self.redirect_uri, "code_verifier": verifier},
                auth=(settings.client_id, settings.client_secret),
                follow_redirects=False,
            )
            body = response.json()
        except (httpx.HTTPError, ValueError, RecursionError) as error:
            raise SignInRefusedError(502, f"The identity provider's token endpoint could not "
                                          f"be used: {error}") from error
        if response.status_code != 200 or not isinstance(body, dict):
            error_code = body.get("error") if isinstance(body, dict) else None
            raise SignInRefusedError(
                401, f"The identity provider did not give a token ({response.status_code}"
                     f"{', ' + str(error_code) if error_code else ''}).")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefusedError(401, "The identity provider's answer has no ID token.")
        return id_token

    def _developer(self, settings: IdpSettings, claims: dict[str, Any]) -> Developer:
        subject = str(claims["sub"])
        developer = self.accounts.by_external_subject(settings.org_id, subject)
        if developer is None:
            # only where the address picks the account: a developer already linked by ``sub``
            # signs in whatever the claim says (Entra ID, for one, omits it by default)
            require_verified_email(claims)
            email, name = claims.get("email"), claims.get("name")
            if not isinstance(email, str):
                raise SignInRefusedError(
                    400, "The identity provider shared no e-mail address for this account.")
            if not isinstance(name, str) or not name.strip():
                name = email.split("@", 1)[0]
            try:
                developer = self.accounts.create_federated(settings.org_id, subject, email, name)
            except AccountError as refused:
                raise SignInRefusedError(refused.status, refused.message) from refused
        if not developer.active:
            raise SignInRefusedError(
                403, "This account was deactivated by your organisation's identity provider.")
        return developer


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
