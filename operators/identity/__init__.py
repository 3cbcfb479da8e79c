"""One operator's identity server: OAuth 2.0, OIDC, CIBA, JWT bearer, consent, JWKS.

Build an :class:`IdentityServer` from a config, a database, a subscriber base and a clock;
serve it with :func:`create_identity_app`. The gateway calls
:meth:`IdentityServer.verify_access_token` then :meth:`IdentityServer.token_context`.
"""

from .app import build_identity_router, create_identity_app, install_oauth_error_handlers
from .capture_pages import build_capture_router, sign_in_to_capture
from .ciba import Press, Prompt
from .client_keys import ClientKeys
from .clients import Client, ClientRegistration, ClientRegistry
from .consent import AuditEntry, Consent, ConsentRecords, ConsentStore, InMemoryConsentStore
from .consent_info import callback_refusal
from .errors import InvalidAccessTokenError, TokenContextError
from .grant_standing import GrantFacts, TokenContext, grant_refusal
from .handset import Verdict
from .jwks_cache import JwksCache, JwksError, parse_jwks
from .jwt_bearer import AssertionIssuer, AssertionIssuerPolicy, RegisteredClientIssuers
from .keys import KeyEncryptionKeyError, KeySealing
from .purposes import describe_purpose, objects_to
from .server import IdentityServer
from .subjects import SubjectResolver, UnknownSubjectError
from .tokens import AccessTokenClaims
from .types import PURPOSE_PREFIX, AuthMethod, GrantType

__all__ = [
    "PURPOSE_PREFIX",
    "AccessTokenClaims",
    "AssertionIssuer",
    "AssertionIssuerPolicy",
    "AuditEntry",
    "AuthMethod",
    "Client",
    "ClientKeys",
    "ClientRegistration",
    "ClientRegistry",
    "Consent",
    "ConsentRecords",
    "ConsentStore",
    "GrantFacts",
    "GrantType",
    "IdentityServer",
    "InMemoryConsentStore",
    "InvalidAccessTokenError",
    "JwksCache",
    "JwksError",
    "KeyEncryptionKeyError",
    "KeySealing",
    "Press",
    "Prompt",
    "RegisteredClientIssuers",
    "SubjectResolver",
    "TokenContext",
    "TokenContextError",
    "UnknownSubjectError",
    "Verdict",
    "build_capture_router",
    "build_identity_router",
    "callback_refusal",
    "create_identity_app",
    "describe_purpose",
    "grant_refusal",
    "install_oauth_error_handlers",
    "objects_to",
    "parse_jwks",
    "sign_in_to_capture",
]
