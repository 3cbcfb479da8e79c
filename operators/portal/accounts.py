"""Developer accounts: organisations, their developers, their applications, and the kill switch.

The records live in the serving party's database beside its client registry. An application is
a private_key_jwt client registered in the identity server's registry (the authority on keys,
grants, the ``environment`` and the ``disabled`` flag the gateway and ``/token`` read) plus a
portal row saying which organisation owns it and which developer created it. Everything a
developer may touch is looked up by organisation: another organisation's application is simply
not there (:meth:`DeveloperAccounts.owned_application` answers None).

:meth:`DeveloperAccounts.deactivate` is the kill switch: the developer is marked inactive, each
application they own is suspended and its client disabled in the registry, and its live tokens
are revoked; so are the live tokens of colleagues' applications whose keys they set, and the
console tokens they minted for any application (the portal notes who minted each until it is
no longer accepted). The identity server re-reads a token's grant whenever the version stamp of
the tokens or clients table moves (:meth:`Database.version`, kept by triggers across
connections), so the very next call with an existing token is refused, in every data centre
sharing the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from joserfc.jwk import ECKey

from ..billing.rating import ApplicationTerms
from ..camara import OPERATIONS
from ..errors import OAuthError
from ..identity import ClientRegistration, GrantType, IdentityServer
from ..storage import Database
from ..types import Clock
from .developers import Application, ApplicationStatus, Developer, Environment, Organisation
from .passwords import WeakPasswordError, check_strength, dummy_hash, hash_password
from .passwords import verify_password as _verify_password

if TYPE_CHECKING:
    from ..analytics.activity_log import ActivityLog
    from ..analytics.records import ActivityKind

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_organisations (
    org_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    idp_issuer TEXT
);
CREATE TABLE IF NOT EXISTS portal_developers (
    developer_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES portal_organisations (org_id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    external_subject TEXT,
    deactivated_at REAL,
    UNIQUE (org_id, external_subject)
);
CREATE TABLE IF NOT EXISTS portal_applications (
    client_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES portal_organisations (org_id),
    developer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_applications_org ON portal_applications (org_id);
CREATE INDEX IF NOT EXISTS portal_applications_developer ON portal_applications (developer_id);
CREATE TABLE IF NOT EXISTS portal_invitations (
    code_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES portal_organisations (org_id),
    expires_at REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS portal_console_tokens (
    jti TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_console_tokens_developer
    ON portal_console_tokens (developer_id);
CREATE TABLE IF NOT EXISTS portal_key_holders (
    client_id TEXT NOT NULL,
    developer_id TEXT NOT NULL,
    since REAL NOT NULL,
    until REAL
);
CREATE INDEX IF NOT EXISTS portal_key_holders_developer ON portal_key_holders (developer_id);
"""

INVITATION_LIFETIME = 7 * 24 * 3600.0
DAY = 24 * 3600.0
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{1,63}$")
API_NAMES = tuple(dict.fromkeys(op.api for op in OPERATIONS))
"""Every CAMARA API of the operation table, in table order."""


class AccountError(Exception):
    """A request the accounts store refuses; ``field`` names the form field at fault.

    ``status`` is what a page answers: 400 for bad input, 404 for something that is not the
    organisation's, 409 for a conflict (an email already signed up, a state that forbids it).
    """

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


class CorporateSignInOnlyError(AccountError):
    """The right password of a member whose organisation signs in through its identity
    provider: refused (403), though it is no guess for the sign-in throttle to count."""

    def __init__(self, organisation: str) -> None:
        super().__init__(403, "email", f"{organisation} signs in through its identity provider:"
                         " use its corporate sign-in.")


def scopes_for(apis: Iterable[str]) -> list[str]:
    """Every scope the operation table accepts for operations of ``apis``."""
    wanted = set(apis)
    scopes = {scope for op in OPERATIONS if op.api in wanted
              for alternative in op.scopes for scope in alternative}
    return sorted(scopes)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def generate_key_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh EC P-256 key pair as (public JWK Set, private JWK), both with the same ``kid``."""
    key = ECKey.generate_key("P-256", auto_kid=True)
    private = {**dict(key.as_dict(private=True)), "alg": "ES256", "use": "sig"}
    public = {**dict(key.as_dict(private=False)), "alg": "ES256", "use": "sig"}
    return {"keys": [public]}, private


def _as_key_set(jwks: dict[str, Any]) -> dict[str, Any]:
    """Accept one JWK or a JWK Set; refuse private keys before anything is stored."""
    key_set = jwks if "keys" in jwks else {"keys": [jwks]}
    keys = key_set.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise AccountError(400, "jwk", "jwk: paste one public JWK or a JWK Set {\"keys\": [...]}.")
    if len(keys) > 5:
        raise AccountError(400, "jwk", "jwk: at most 5 keys.")
    for key in keys:
        if any(name in key for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise AccountError(400, "jwk", "jwk: that is a private (or symmetric) key; paste the "
                                           "public key only, and keep the private key secret.")
    return {"keys": [dict(k) for k in keys]}


def _with_kids(key_set: dict[str, Any]) -> dict[str, Any]:
    """Give every key a ``kid`` (its RFC 7638 thumbprint) so pages and assertions can name it."""
    from joserfc.jwk import KeySet

    try:
        imported = KeySet.import_key_set(key_set)  # type: ignore[arg-type]
    except Exception as error:  # joserfc raises several unrelated types for malformed keys
        raise AccountError(400, "jwk", f"jwk: not a valid public key ({error}).") from error
    keys = []
    for raw, key in zip(key_set["keys"], imported, strict=True):
        keys.append({**raw, "kid": raw.get("kid") or key.thumbprint()})
    return {"keys": keys}


def _row_developer(row: sqlite3.Row) -> Developer:
    return Developer(
        developer_id=row["developer_id"], org_id=row["org_id"], email=row["email"],
        name=row["name"], active=bool(row["active"]), created_at=row["created_at"],
        last_seen_at=row["last_seen_at"], external_subject=row["external_subject"],
        deactivated_at=row["deactivated_at"], external_issuer=row["external_issuer"],
        email_confirmed=bool(row["email_confirmed"]),
    )


@cache
def _api_scopes(api: str) -> frozenset[str]:
    return frozenset(scopes_for([api]))


def _created_for(scopes: str | None) -> tuple[str, ...]:
    """The APIs whose scopes a client holds (its ``scopes`` column), as the application
    pages list them: what the application was created for."""
    held = frozenset(json.loads(scopes)) if scopes else frozenset()
    return tuple(api for api in API_NAMES if _api_scopes(api) & held)


def application_terms(db: Database) -> ApplicationTerms:
    """:meth:`DeveloperAccounts.terms` of the portal's tables in ``db``, read as they are (a
    database without a portal, or written before applications' ends were kept, has none):
    each application's creation, end and the APIs it holds a plan for from its creation
    (its client's scopes in the registry beside it)."""
    columns = {row["name"] for row in db.all("PRAGMA table_info(portal_applications)")}
    if not {"client_id", "created_at"} <= columns:
        return ApplicationTerms()
    ended = "a.ended_at" if "ended_at" in columns else "NULL AS ended_at"
    registry = db.one("SELECT 1 AS found FROM sqlite_master WHERE name = 'identity_clients'")
    scopes, join = (
        ("c.scopes", " LEFT JOIN identity_clients c ON c.client_id = a.client_id")
        if registry is not None else ("NULL AS scopes", "")
    )
    rows = db.all(
        f"SELECT a.client_id, a.created_at, {ended}, {scopes} FROM portal_applications a{join}"
    )
    return ApplicationTerms(
        {row["client_id"]: float(row["created_at"]) for row in rows},
        {row["client_id"]: float(row["ended_at"]) for row in rows if row["ended_at"] is not None},
        {row["client_id"]: _created_for(row["scopes"]) for row in rows},
    )


def _row_application(row: sqlite3.Row) -> Application:
    return Application(
        client_id=row["client_id"], org_id=row["org_id"], developer_id=row["developer_id"],
        name=row["name"], environment=Environment(row["environment"]),
        status=ApplicationStatus(row["status"]), created_at=row["created_at"],
        ended_at=row["ended_at"],
    )


class DeveloperAccounts:
    """Organisations, developers and their applications, kept beside the client registry."""

    def __init__(self, db: Database, identity: IdentityServer, clock: Clock, *,
                 activity: ActivityLog | None = None) -> None:
        self.db = db
        self.identity = identity
        self.clock = clock
        self.activity = activity
        """Where the developers' milestones go for the analytics (None: nowhere)."""
        db.ensure_schema(SCHEMA)
        db.ensure_column("portal_applications", "ended_at", "REAL")
        db.ensure_column("portal_invitations", "created_by", "TEXT")
        db.ensure_column("portal_applications", "keys_by", "TEXT")  # NULL: its creator
        db.ensure_column("portal_developers", "external_issuer", "TEXT")
        self._voiders: dict[str, Callable[[str], None]] = {}
        self._add_email_confirmed()
        # links made before their issuer was kept were made through the organisation's own
        db.execute("UPDATE portal_developers SET external_issuer = (SELECT idp_issuer FROM"
                       " portal_organisations o WHERE o.org_id = portal_developers.org_id)"
                       " WHERE external_subject IS NOT NULL AND external_issuer IS NULL")

    def _add_email_confirmed(self) -> None:
        """The column, defaulting to unconfirmed (an insert that forgets it, such as a
        replica of the release before sharing the file, fails closed), with every member
        already there confirmed: they keep what they had. One transaction, so a second
        process adding it meanwhile waits and then finds it."""
        with self.db.transaction():
            columns = {row["name"] for row in self.db.all("PRAGMA table_info(portal_developers)")}
            if "email_confirmed" not in columns:
                self.db.execute("ALTER TABLE portal_developers ADD COLUMN email_confirmed"
                                " INTEGER NOT NULL DEFAULT 0")
                self.db.execute("UPDATE portal_developers SET email_confirmed = 1")

    def void_at_deactivation(self, name: str, voider: Callable[[str], None]) -> None:
        """Have ``voider(developer_id)`` run inside :meth:`deactivate`'s transaction: it spends
        the developer's links of its kind (``name``), which would otherwise work again if the
        developer were reactivated (SCIM ``active: true``)."""
        self._voiders[name] = voider

    def _note(self, kind: ActivityKind, developer_id: str, org_id: str, client_id: str = "",
              api: str = "", detail: str = "") -> None:
        if self.activity is not None:
            self.activity.note(kind, developer_id=developer_id, org_id=org_id,
                               client_id=client_id, api=api, detail=detail)

    def note_email_confirmed(self, developer: Developer) -> None:
        """The milestone of a member's address confirmed (by a mailed link), for funnels."""
        self._note("email_confirmed", developer.developer_id, developer.org_id)

    def _note_application(self, kind: ActivityKind, application: Application,
                          api: str = "", detail: str = "") -> None:
        self._note(kind, application.developer_id, application.org_id, application.client_id,
                   api, detail)

    # -- organisations and developers ----------------------------------------------------------

    def sign_up(self, org_name: str, email: str, name: str, password: str) -> Developer:
        """A new organisation with this developer as its first member."""
        org_name = org_name.strip()
        if not 1 <= len(org_name) <= 200:
            raise AccountError(400, "organisation", "organisation: give a name (1-200 characters).")
        password_hash = self._new_password_hash(email, name, password)
        with self.db.transaction():
            org_id = f"org-{secrets.token_hex(6)}"
            self.db.execute(
                "INSERT INTO portal_organisations (org_id, name, created_at) VALUES (?, ?, ?)",
                (org_id, org_name, self.clock()))
            developer = self._add_developer(org_id, email, name, password_hash=password_hash)
        self._note("signed_up", developer.developer_id, org_id)
        return developer

    def invite(self, org_id: str, *, by: str) -> str:
        """A one-use code a colleague joins ``org_id`` with; it expires after a week, and
        with its sender's access: it is only good while developer ``by`` is active."""
        organisation = self.organisation(org_id)
        if organisation is None:
            raise AccountError(404, "organisation", "No such organisation.")
        if organisation.idp_issuer is not None:
            raise AccountError(400, "invitation", "Your organisation signs in through its "
                               "identity provider: colleagues sign in there, uninvited.")
        code = secrets.token_urlsafe(18)
        with self.db.transaction():
            self._require_active(by, org_id)
            self.db.execute(
                "INSERT INTO portal_invitations (code_hash, org_id, expires_at, created_by)"
                " VALUES (?, ?, ?, ?)",
                (_digest(code), org_id, self.clock() + INVITATION_LIFETIME, by))
        return code

    def _require_active(self, developer_id: str, org_id: str) -> None:
        """Refuse an action of a developer cut off (or moved) since their request began: the
        kill switch may run while a form is still arriving."""
        developer = self.developer(developer_id)
        if developer is None or not developer.active or developer.org_id != org_id:
            raise AccountError(403, "developer", "Your access to this organisation has ended.")

    def join(self, org_id: str, email: str, name: str, password: str, *,
             invitation: str) -> Developer:
        """Join ``org_id`` with an unused, unexpired invitation code made for it, by a
        developer still active, unless the organisation signs in through its identity
        provider (whose SCIM could never deprovision a password account)."""
        organisation = self.organisation(org_id)
        if organisation is not None and organisation.idp_issuer is not None:
            raise AccountError(400, "invitation", f"{organisation.name} signs in through its "
                               "identity provider: use its sign-in, not an invitation.")
        password_hash = self._new_password_hash(email, name, password)
        with self.db.transaction():
            row = self.db.one(
                "SELECT * FROM portal_invitations WHERE code_hash = ? AND org_id = ?",
                (_digest(invitation), org_id))
            if row is None or row["used_at"] is not None or row["expires_at"] <= self.clock():
                raise AccountError(400, "invitation",
                                   "invitation: this code is unknown, used or expired.")
            sender = row["created_by"]
            inviter = None if sender is None else self.developer(sender)
            if sender is not None and (inviter is None or not inviter.active):
                raise AccountError(400, "invitation",
                                   "invitation: whoever sent this code has left the "
                                   "organisation; ask a colleague for a new one.")
            developer = self._add_developer(org_id, email, name, password_hash=password_hash)
            self.db.execute("UPDATE portal_invitations SET used_at = ? WHERE code_hash = ?",
                            (self.clock(), row["code_hash"]))
        self._note("signed_up", developer.developer_id, org_id)
        return developer

    def create_federated(self, org_id: str, external_subject: str, email: str,
                         name: str) -> Developer:
        """A developer who signs in through the organisation's identity provider (no password),
        linked to its subject at the organisation's current issuer.

        A member of the organisation with this (verified) address who is not linked to that
        issuer (one who joined by password before the organisation federated, or was linked at
        a provider it left) is linked instead of refused: before, they could never sign in
        through the provider, and its SCIM could never deprovision them."""
        organisation = self.organisation(org_id)
        if organisation is None:
            raise AccountError(404, "organisation", "No such organisation.")
        if not external_subject or len(external_subject) > 255:
            raise AccountError(400, "subject", "subject: the identity provider's subject is "
                                               "missing or too long.")
        with self.db.transaction():
            # read again inside: the admin may have stopped or moved corporate sign-in since
            # this sign-in began, and a member made then would have no password and no link
            row = self.db.one("SELECT idp_issuer FROM portal_organisations WHERE org_id = ?",
                              (org_id,))
            issuer = None if row is None else row["idp_issuer"]
            if issuer is None:
                raise AccountError(403, "organisation", f"{organisation.name} no longer signs "
                                   "in through an identity provider.")
            # a subject another provider gave the organisation once names nobody here now
            self.db.execute("UPDATE portal_developers SET external_subject = NULL,"
                            " external_issuer = NULL WHERE org_id = ? AND external_subject = ?"
                            " AND external_issuer IS NOT ?", (org_id, external_subject, issuer))
            linked = self.db.execute(
                "UPDATE portal_developers SET external_subject = ?, external_issuer = ?,"
                " password_hash = NULL, email_confirmed = 1 WHERE org_id = ? AND email = ?"
                " AND (external_subject IS NULL OR external_issuer IS NOT ?)",
                (external_subject, issuer, org_id, normalise_email(email), issuer))
            if linked:
                found = self.by_external_subject(org_id, external_subject)
                assert found is not None
                return found
            developer = self._add_developer(org_id, email, name,
                                            external_subject=external_subject,
                                            external_issuer=issuer)
        self._note("signed_up", developer.developer_id, org_id)
        return developer

    def _new_password_hash(self, email: str, name: str, password: str) -> str:
        """The hash a password member is created with, worked out before any transaction.

        scrypt takes tens of milliseconds and a transaction holds the database's lock (and
        SQLite's write lock) throughout: hashed inside one, each sign-up stalled every other
        request of the operator, and every replica's writes, for the hash's length. The cheap
        refusals come first (a bad address or name, an address already taken), so a sign-up
        bound to fail costs no hash; the transaction checks the address again."""
        _check_identity(email, name)
        if self.db.one("SELECT 1 FROM portal_developers WHERE email = ?",
                       (normalise_email(email),)):
            raise _address_taken()
        return strong_password_hash(password)

    def _add_developer(self, org_id: str, email: str, name: str, *,
                       password_hash: str | None = None,
                       external_subject: str | None = None,
                       external_issuer: str | None = None) -> Developer:
        email, name = _check_identity(email, name)
        now = self.clock()
        developer_id = f"dev-{secrets.token_hex(8)}"
        with self.db.transaction():
            if self.db.one("SELECT 1 FROM portal_developers WHERE email = ?", (email,)):
                raise _address_taken()
            if external_subject is not None and self.by_external_subject(org_id,
                                                                         external_subject):
                raise AccountError(409, "subject", "subject: this person already has an account.")
            # the identity provider vouched for its address (email_verified); a typed one is
            # confirmed by the link mailed to it
            confirmed = external_subject is not None
            self.db.execute(
                "INSERT INTO portal_developers (developer_id, org_id, email, name, password_hash,"
                " active, created_at, last_seen_at, external_subject, external_issuer,"
                " email_confirmed) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
                (developer_id, org_id, email, name, password_hash, now, now, external_subject,
                 external_issuer, int(confirmed)))
        developer = self.developer(developer_id)
        assert developer is not None
        return developer

    def authenticate(self, email: str, password: str) -> Developer | None:
        """The active developer with this email and password; None otherwise.

        An unknown email (or a federated account without a password) is checked against a dummy
        hash, so the answer takes as long as for a wrong password and tells nothing.
        """
        row = self.db.one("SELECT * FROM portal_developers WHERE email = ?",
                          (normalise_email(email),))
        stored = row["password_hash"] if row is not None else None
        if stored is None:
            _verify_password(password, dummy_hash())
            return None
        if not _verify_password(password, stored):
            return None
        developer = _row_developer(row)  # type: ignore[arg-type]
        if not developer.active:
            return None
        organisation = self.organisation(developer.org_id)
        if organisation is not None and organisation.idp_issuer is not None:
            # its provider's SCIM could never deprovision a password sign-in
            raise CorporateSignInOnlyError(organisation.name)
        return developer

    def developer(self, developer_id: str) -> Developer | None:
        row = self.db.one("SELECT * FROM portal_developers WHERE developer_id = ?",
                          (developer_id,))
        return None if row is None else _row_developer(row)

    def by_email(self, email: str) -> Developer | None:
        row = self.db.one("SELECT * FROM portal_developers WHERE email = ?",
                          (normalise_email(email),))
        return None if row is None else _row_developer(row)

    def by_external_subject(self, org_id: str, subject: str) -> Developer | None:
        """The member linked to ``subject`` at the organisation's current identity provider: a
        subject is only unique at its issuer, so one linked at a provider the organisation
        left is not found (another provider may give someone else the same subject)."""
        row = self.db.one(
            "SELECT d.* FROM portal_developers d JOIN portal_organisations o"
            " ON o.org_id = d.org_id AND d.external_issuer IS o.idp_issuer"
            " WHERE d.org_id = ? AND d.external_subject = ?",
            (org_id, subject))
        return None if row is None else _row_developer(row)

    def members(self, org_id: str) -> list[Developer]:
        rows = self.db.all("SELECT * FROM portal_developers WHERE org_id = ? ORDER BY rowid",
                           (org_id,))
        return [_row_developer(r) for r in rows]

    def organisation(self, org_id: str) -> Organisation | None:
        row = self.db.one("SELECT * FROM portal_organisations WHERE org_id = ?", (org_id,))
        if row is None:
            return None
        return Organisation(row["org_id"], row["name"], row["created_at"], row["idp_issuer"])

    def set_idp(self, org_id: str, issuer: str | None) -> None:
        """Federate (or stop federating) the organisation's sign-in with ``issuer``."""
        self.db.execute("UPDATE portal_organisations SET idp_issuer = ? WHERE org_id = ?",
                        (issuer, org_id))

    def touch(self, developer_id: str) -> None:
        """Note that the developer was seen now (the orphan report reads it)."""
        self.db.execute("UPDATE portal_developers SET last_seen_at = ? WHERE developer_id = ?",
                        (self.clock(), developer_id))

    # -- applications ----------------------------------------------------------------------------

    def applications(self, org_id: str) -> list[Application]:
        rows = self.db.all(
            "SELECT * FROM portal_applications WHERE org_id = ? ORDER BY rowid",
            (org_id,))
        return [_row_application(r) for r in rows]

    def owners(self) -> dict[str, str]:
        """Which organisation owns each portal application (client id -> org id), for
        invoices per organisation."""
        rows = self.db.all("SELECT client_id, org_id FROM portal_applications")
        return {row["client_id"]: row["org_id"] for row in rows}

    def terms(self) -> ApplicationTerms:
        """When each portal application began and, if cut off, ended: what invoices bill
        its plans' fees between, whoever draws them (the portal, the admin API, the CLI)."""
        return application_terms(self.db)

    def application(self, client_id: str) -> Application | None:
        row = self.db.one("SELECT * FROM portal_applications WHERE client_id = ?", (client_id,))
        return None if row is None else _row_application(row)

    def owned_application(self, org_id: str, client_id: str) -> Application | None:
        """The application when ``org_id`` owns it; None for another organisation's too."""
        application = self.application(client_id)
        return application if application is not None and application.org_id == org_id else None

    def _owned(self, org_id: str, client_id: str) -> Application:
        application = self.owned_application(org_id, client_id)
        if application is None:
            raise AccountError(404, "application", "No such application.")
        return application

    def create_application(
        self, developer: Developer, name: str, apis: list[str], purposes: list[str],
        jwks: dict[str, Any] | None,
    ) -> tuple[Application, dict[str, Any] | None]:
        """Register a sandbox private_key_jwt client for ``apis`` and ``purposes``.

        With ``jwks`` None a key pair is generated and its private JWK returned, once: it is
        never stored. Otherwise ``jwks`` (one public JWK or a JWK Set) is registered as given.
        """
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise AccountError(400, "name", "name: give the application a name (1-200 characters).")
        if not apis:
            raise AccountError(400, "apis", "apis: choose at least one API.")
        unknown = [api for api in apis if api not in API_NAMES]
        if unknown:
            raise AccountError(400, "apis", f"apis: {unknown[0]!r} is not an API of this party.")
        if not purposes:
            raise AccountError(400, "purposes", "purposes: choose at least one purpose.")
        for purpose in purposes:
            if self.identity.config.purpose(purpose) is None:
                raise AccountError(400, "purposes",
                                   f"purposes: {purpose!r} is not offered here.")
        current = self.developer(developer.developer_id)
        if current is None or not current.active:
            raise AccountError(403, "developer", "This account is no longer active.")
        public, private = self._keys(jwks)
        registration = ClientRegistration(
            client_name=name, jwks=public,
            grant_types=[GrantType.CLIENT_CREDENTIALS, GrantType.CIBA],
            scope=" ".join(scopes_for(apis)), purposes=sorted(set(purposes)),
        )
        try:
            client, _ = self.identity.clients.register(registration,
                                                       environment=Environment.SANDBOX.value)
        except OAuthError as refused:
            raise AccountError(400, "jwk", f"jwk: {refused.description}") from refused
        now = self.clock()
        self.db.execute(
            "INSERT INTO portal_applications (client_id, org_id, developer_id, name, environment,"
            " status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (client.client_id, current.org_id, current.developer_id, name,
             Environment.SANDBOX.value, ApplicationStatus.ACTIVE.value, now))
        application = self.application(client.client_id)
        assert application is not None
        self._note_application("application_created", application, detail=name)
        self._note_application("key_generated", application,
                               detail="generated" if private is not None else "uploaded")
        return application, private

    def _keys(self, jwks: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if jwks is None:
            return generate_key_pair()
        return _with_kids(_as_key_set(jwks)), None

    def keys(self, org_id: str, client_id: str) -> list[dict[str, Any]]:
        """The public keys the application's client holds now."""
        self._owned(org_id, client_id)
        client = self.identity.clients.get(client_id)
        return list(client.jwks.get("keys", [])) if client is not None else []

    def rotate_key(self, org_id: str, client_id: str, jwks: dict[str, Any] | None, *,
                   by: str | None = None) -> dict[str, Any] | None:
        """Replace the application's keys (generated, or the public JWK given) on developer
        ``by``'s word; the old key is refused from the next assertion on. Returns the new
        private JWK when generated. Whoever set the keys holds the private one, so the kill
        switch withdraws the keys they set, even on a colleague's application."""
        application = self._owned(org_id, client_id)
        if application.status in (ApplicationStatus.SUSPENDED, ApplicationStatus.DISABLED):
            raise AccountError(409, "application", f"This application is {application.status}.")
        public, private = self._keys(jwks)
        try:
            with self.db.transaction():
                if by is not None:
                    self._require_active(by, org_id)
                self.identity.clients.replace_keys(client_id, public)
                self.db.execute("UPDATE portal_applications SET keys_by = ? WHERE client_id = ?",
                                (by, client_id))
                self._hand_keys_to(client_id, by)
        except OAuthError as refused:
            raise AccountError(400, "jwk", f"jwk: {refused.description}") from refused
        self._note_application("key_generated", application,
                               detail="generated" if private is not None else "uploaded")
        return private

    def _hand_keys_to(self, client_id: str, developer_id: str | None) -> None:
        """Note who holds the application's private key from now on (None: nobody the kill
        switch knows of). The record outlives the next rotation: a rotation refuses the old
        key, but the tokens its holder took with it stay live until they expire, so the kill
        switch must still find them after a colleague rotated the key away."""
        now = self.clock()
        self.db.execute("UPDATE portal_key_holders SET until = ?"
                        " WHERE client_id = ? AND until IS NULL", (now, client_id))
        if developer_id is not None:
            self.db.execute("INSERT INTO portal_key_holders (client_id, developer_id, since)"
                            " VALUES (?, ?, ?)", (client_id, developer_id, now))

    def disable_application(self, org_id: str, client_id: str) -> None:
        """Turn the application off: its client is disabled and its live tokens revoked."""
        self._owned(org_id, client_id)
        self._cut_off(client_id, ApplicationStatus.DISABLED)

    def request_production(self, org_id: str, client_id: str, *, by: str) -> None:
        """Ask for production on behalf of developer ``by``, whose address must be confirmed:
        the operator's production customers are people it can reach."""
        application = self._owned(org_id, client_id)
        requester = self.developer(by)
        if requester is None or not requester.email_confirmed:
            raise AccountError(403, "email", "email: confirm your address (follow the link we "
                                             "sent you) before asking for production.")
        if application.environment is Environment.PRODUCTION:
            raise AccountError(409, "application", "This application is already in production.")
        if application.status is not ApplicationStatus.ACTIVE:
            raise AccountError(409, "application",
                               f"This application is {application.status}; only an active "
                               "sandbox application can ask for production.")
        self._move(client_id, ApplicationStatus.ACTIVE, ApplicationStatus.PENDING_PRODUCTION)
        self._note_application("production_requested", application)

    def pending_production(self) -> list[Application]:
        rows = self.db.all("SELECT * FROM portal_applications WHERE status = ?"
                           " ORDER BY rowid",
                           (ApplicationStatus.PENDING_PRODUCTION.value,))
        return [_row_application(r) for r in rows]

    def approve_production(self, client_id: str) -> None:
        """An operator admin's yes: the application may call about any number from now on."""
        application = self._pending(client_id)
        with self.db.transaction():
            self._move(client_id, ApplicationStatus.PENDING_PRODUCTION, ApplicationStatus.ACTIVE)
            self.db.execute("UPDATE portal_applications SET environment = ? WHERE client_id = ?",
                            (Environment.PRODUCTION.value, client_id))
            self.identity.clients.set_environment(client_id, Environment.PRODUCTION.value)
        self._note_application("production_approved", application)

    def plan_changed(self, application: Application, api: str, plan: str) -> None:
        """Note that ``application`` now calls ``api`` on ``plan`` (the analytics' upsells)."""
        self._note_application("plan_changed", application, api=api, detail=plan)

    def refuse_production(self, client_id: str) -> None:
        """An operator admin's no: the application stays an active sandbox application."""
        self._pending(client_id)
        self._move(client_id, ApplicationStatus.PENDING_PRODUCTION, ApplicationStatus.ACTIVE)

    def _pending(self, client_id: str) -> Application:
        application = self.application(client_id)
        if application is None or application.status is not ApplicationStatus.PENDING_PRODUCTION:
            raise AccountError(404, "application", "No such pending production request.")
        return application

    def _move(self, client_id: str, before: ApplicationStatus, after: ApplicationStatus) -> None:
        """``before`` -> ``after`` only if the application is still ``before``: the status was
        read outside this write, and the kill switch (another replica, or a request on this
        one) may have suspended it since; a suspended application must not come back."""
        moved = self.db.execute(
            "UPDATE portal_applications SET status = ? WHERE client_id = ? AND status = ?",
            (after.value, client_id, before.value))
        if not moved:
            raise AccountError(409, "application", "This application changed meanwhile "
                               "(suspended or disabled?): reload the page.")

    def _set_status(self, client_id: str, status: ApplicationStatus) -> None:
        self.db.execute("UPDATE portal_applications SET status = ? WHERE client_id = ?",
                        (status.value, client_id))

    def _cut_off(self, client_id: str, status: ApplicationStatus) -> None:
        """Disable the client and revoke its live tokens, together with the status change;
        its plans end then (the first cut-off counts: suspending a disabled one changes
        nothing), so no monthly fee runs on for an application nobody can use."""
        with self.db.transaction():
            self._set_status(client_id, status)
            self.db.execute("UPDATE portal_applications SET ended_at = COALESCE(ended_at, ?)"
                            " WHERE client_id = ?", (self.clock(), client_id))
            self.identity.clients.disable(client_id)
            # The token table is the identity server's; revoking here (rather than waiting for
            # expiry) makes introspection answer inactive at once, on top of the disabled client.
            self.identity.db.execute(
                "UPDATE identity_access_tokens SET revoked_at = ?"
                " WHERE client_id = ? AND revoked_at IS NULL", (self.clock(), client_id))

    def note_console_token(self, developer: Developer, jti: str, accepted_until: float) -> None:
        """Remember who minted a console token: it may be for a colleague's application,
        which stays live when they leave, so the kill switch revokes it by who minted it.

        ``accepted_until`` is when the token stops being accepted (its expiry plus the clock
        skew allowed); rows past theirs are dropped here, as nothing is left to revoke. If
        the kill switch reached ``developer`` since their request began, the token is revoked
        instead and :class:`AccountError` raised: the check and the note are one transaction,
        so the kill switch either finds the row or is seen here, in any data centre.
        """
        with self.db.transaction():
            current = self.developer(developer.developer_id)
            cut_off = (current is None or not current.active
                       or current.org_id != developer.org_id)
            if cut_off:
                self.identity.tokens.revoke_jti(jti)
            else:
                self.db.execute("DELETE FROM portal_console_tokens WHERE expires_at <= ?",
                                (self.clock(),))
                self.db.execute("INSERT OR REPLACE INTO portal_console_tokens"
                                " (jti, developer_id, expires_at) VALUES (?, ?, ?)",
                                (jti, developer.developer_id, accepted_until))
        if cut_off:  # raised after the commit, which the revocation must not be undone with
            raise AccountError(403, "developer", "Your access to this organisation has ended.")

    # -- the kill switch and the orphan report ----------------------------------------------

    def deactivate(self, developer_id: str) -> list[str]:
        """THE KILL SWITCH: the developer can no longer sign in, and every application they own
        is suspended (client disabled, live tokens revoked). Returns the suspended client ids.

        Applications their organisation had already disabled stay disabled (and are cut off
        again, idempotently); calling it twice changes nothing more.
        """
        before = self.developer(developer_id)
        suspended: list[Application] = []
        with self.db.transaction():
            self.db.execute(
                "UPDATE portal_developers SET active = 0,"
                " deactivated_at = COALESCE(deactivated_at, ?) WHERE developer_id = ?",
                (self.clock(), developer_id))
            self.db.execute(  # a leaver's unused invitations would let them back in
                "DELETE FROM portal_invitations WHERE created_by = ? AND used_at IS NULL",
                (developer_id,))
            for voider in self._voiders.values():
                voider(developer_id)
            self._withdraw_keys_set_by(developer_id)
            self._revoke_tokens_taken_with_keys_of(developer_id)
            self._revoke_console_tokens_of(developer_id)
            for row in self.db.all("SELECT * FROM portal_applications WHERE developer_id = ?"
                                   " ORDER BY rowid", (developer_id,)):
                application = _row_application(row)
                if application.status is ApplicationStatus.DISABLED:
                    self._cut_off(application.client_id, ApplicationStatus.DISABLED)
                    continue
                self._cut_off(application.client_id, ApplicationStatus.SUSPENDED)
                suspended.append(application)
        if before is not None and before.active:
            self._note("deactivated", developer_id, before.org_id)
        for application in suspended:
            if application.status is not ApplicationStatus.SUSPENDED:  # not already noted
                self._note_application("application_suspended", application)
        return [application.client_id for application in suspended]

    def _withdraw_keys_set_by(self, developer_id: str) -> None:
        """A colleague's application whose keys the leaver set (rotated) keeps running, but
        not on a key the leaver holds: its keys are withdrawn and its live tokens revoked
        until a colleague rotates them."""
        for row in self.db.all(
                "SELECT client_id FROM portal_applications WHERE keys_by = ?"
                " AND developer_id != ? AND status != ? ORDER BY rowid",
                (developer_id, developer_id, ApplicationStatus.DISABLED.value)):
            self.identity.clients.withdraw_keys(row["client_id"])
            self.identity.db.execute(
                "UPDATE identity_access_tokens SET revoked_at = ?"
                " WHERE client_id = ? AND revoked_at IS NULL", (self.clock(), row["client_id"]))

    def _revoke_tokens_taken_with_keys_of(self, developer_id: str) -> None:
        """Tokens a colleague's application was issued while the leaver held its key: the
        leaver may have taken them, even if a colleague has rotated the key since (which
        only refuses the key from the next assertion on). Tokens issued after that rotation
        are the colleague's and stay live."""
        now = self.clock()
        for row in self.db.all(
                "SELECT client_id, since, until FROM portal_key_holders WHERE developer_id = ?"
                " ORDER BY rowid", (developer_id,)):
            until = now if row["until"] is None else row["until"]
            self.identity.db.execute(
                "UPDATE identity_access_tokens SET revoked_at = ? WHERE client_id = ?"
                " AND revoked_at IS NULL AND expires_at > ? AND issued_at >= ?"
                " AND issued_at <= ?",
                (now, row["client_id"], now, row["since"], until))

    def _revoke_console_tokens_of(self, developer_id: str) -> None:
        """Tokens the leaver minted in the console, whatever application they are for: a
        colleague's stays live, and the leaver may have copied its token out of the page."""
        now = self.clock()
        for row in self.db.all("SELECT jti FROM portal_console_tokens"
                               " WHERE developer_id = ? AND expires_at > ?", (developer_id, now)):
            self.identity.tokens.revoke_jti(row["jti"])
        self.db.execute("DELETE FROM portal_console_tokens WHERE developer_id = ?",
                        (developer_id,))

    def reactivate(self, developer_id: str) -> None:
        """Let a developer sign in again; their suspended applications stay suspended until an
        admin looks at them (deliberately not undone here)."""
        self.db.execute("UPDATE portal_developers SET active = 1, deactivated_at = NULL"
                        " WHERE developer_id = ?", (developer_id,))

    def orphans(self, days: float) -> list[Orphan]:
        """Applications not disabled by their organisation that nobody is looking after: their
        owner is gone, deactivated, not seen for ``days``, or a member the organisation's
        identity provider does not know (a password member not yet linked, or one linked at a
        provider it left), whom its SCIM and RISC cannot deprovision when they leave."""
        cutoff = self.clock() - days * DAY
        kept = (ApplicationStatus.DISABLED.value,)
        # three reads whatever the number of applications (not three per application); an
        # owner deleted between them is reported gone, which they are by then
        applications = self.db.all(
            "SELECT * FROM portal_applications WHERE status != ? ORDER BY rowid", kept)
        owners = self.db.all(
            "SELECT * FROM portal_developers WHERE developer_id IN"
            " (SELECT developer_id FROM portal_applications WHERE status != ?)", kept)
        organisations = self.db.all(
            "SELECT org_id, idp_issuer FROM portal_organisations WHERE org_id IN"
            " (SELECT org_id FROM portal_developers WHERE developer_id IN"
            "  (SELECT developer_id FROM portal_applications WHERE status != ?))", kept)
        by_id = {row["developer_id"]: _row_developer(row) for row in owners}
        providers = {row["org_id"]: row["idp_issuer"] for row in organisations}
        report: list[Orphan] = []
        for application in map(_row_application, applications):
            owner = by_id.get(application.developer_id)
            if owner is None:
                report.append(Orphan(application, None, "owner gone"))
            elif not owner.active:
                report.append(Orphan(application, owner, "owner deactivated"))
            elif (provider := providers.get(owner.org_id)) is not None \
                    and owner.external_issuer != provider:
                report.append(Orphan(application, owner, "owner outside the identity provider"))
            elif owner.last_seen_at < cutoff:
                report.append(Orphan(application, owner, "owner inactive"))
        return report


class Orphan(NamedTuple):
    """An application of the orphan report, its owner (None: gone) and why it is listed."""

    application: Application
    owner: Developer | None
    reason: str


def _check_identity(email: str, name: str) -> tuple[str, str]:
    """The normalised address and trimmed name of a new member; AccountError naming the field."""
    email = normalise_email(email)
    name = name.strip()
    if not EMAIL.match(email) or len(email) > 254:
        raise AccountError(400, "email", "email: enter an address like ada@example.com.")
    if not 1 <= len(name) <= 200:
        raise AccountError(400, "name", "name: give your name (1-200 characters).")
    if any(ch < " " or ch == "\x7f" for ch in name):  # it heads mail sent to the address
        raise AccountError(400, "name", "name: no line breaks or control characters.")
    return email, name


def _address_taken() -> AccountError:
    return AccountError(409, "email", "email: an account with this address exists; "
                                      "sign in instead.")


def strong_password_hash(password: str) -> str:
    """The hash of a password strong enough; AccountError naming ``password`` otherwise."""
    try:
        check_strength(password)
    except WeakPasswordError as weak:
        raise AccountError(400, "password", str(weak)) from weak
    return hash_password(password)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
